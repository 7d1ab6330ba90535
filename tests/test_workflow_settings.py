"""avcmr.workflow.settings: the per-dataset settings and what rules read from them."""

import re

import pytest
from workflow_configs import RANDOM, run_config, synthetic

from avcmr.config import ConfigError
from avcmr.workflow import settings


def full_match(pattern: str, name: str) -> bool:
    return re.fullmatch(pattern, name) is not None


def test_each_dataset_gets_the_global_sections_under_its_own_and_is_checked(tmp_path):
    config = run_config({"a": synthetic(features={"shard_size": 7}), "b": synthetic()})
    loaded = settings.load_settings(config)
    assert list(loaded) == ["a", "b"]
    assert loaded["a"]["name"] == "a"
    assert loaded["a"]["features"]["shard_size"] == 7  # its own
    assert loaded["b"]["features"]["shard_size"] == config["features"]["shard_size"]  # the global one
    assert loaded["a"]["features"]["pca_dim"] == config["features"]["pca_dim"]
    with pytest.raises(ConfigError, match=r"dataset 'mine': folder root '.*nope' does not exist"):
        settings.load_settings(run_config({"mine": {"kind": "folder", "root": str(tmp_path / "nope"),
                                                    "allow_random_weights": True}}))
    with pytest.raises(ConfigError, match=r"method_params\.cca\.depth: cca has no parameter 'depth'"):
        settings.load_settings(run_config({"a": synthetic()}, method_params={"cca": {"depth": 3}}))


def test_name_patterns_match_exactly_the_datasets_they_select():
    config = run_config({
        "syn": synthetic(features={"keep_decoded_frames": True}),
        "vg": {"kind": "vegas", "manifest": "v.csv", "allow_random_weights": True, "backbone_weights": RANDOM},
        "arch": {"kind": "folder", "archive": "x.zip", "layout": "{label}/{clip}.mp4", "allow_random_weights": True,
                 "backbone_weights": RANDOM},
    })
    loaded = settings.load_settings(config)
    assert full_match(settings.names_of_kind(loaded, "synthetic"), "syn")
    assert not full_match(settings.names_of_kind(loaded, "synthetic"), "vg")
    assert full_match(settings.youtube_names(loaded), "vg") and not full_match(settings.youtube_names(loaded), "syn")
    assert settings.archive_names(loaded) == "arch"
    assert settings.frames_kept_names(loaded, True) == "syn"
    assert settings.frames_kept_names(loaded, False) == "vg|arch"
    # None of a kind: a pattern that matches nothing, not even the empty name.
    nothing = settings.names_of_kind(loaded, "features")
    assert nothing == "(?!)" and not any(full_match(nothing, name) for name in ("", "syn", "vg"))


def test_method_params_take_the_datasets_own_over_the_global_ones():
    config = run_config({"a": synthetic(budget="paper", method_params={"cca": {"reg": 0.5}}), "b": synthetic()},
                        budget="quick")
    loaded = settings.load_settings(config)
    assert settings.method_params(config, loaded["a"], "cca") == {"budget": "paper", "n_components": 10, "reg": 0.5}
    assert settings.method_params(config, loaded["b"], "cca") == {"budget": "quick", "n_components": 10,
                                                                  "reg": 1.0e-4}
    # A method's own `budget:` key wins over the dataset's.
    config = run_config({"a": synthetic(budget="paper", method_params={"cca": {"budget": "quick"}})})
    assert settings.method_params(config, settings.load_settings(config)["a"], "cca")["budget"] == "quick"


def test_a_real_valued_row_shares_its_hashing_rows_fit_only_when_configured_alike():
    config = run_config({"a": synthetic(evaluation={"methods": ["ugach", "ugach_real", "cca"]})})
    spec = settings.load_settings(config)["a"]
    assert settings.shared_fit_models(config, spec, "ugach_real", [0, 1]) == [
        "results/a/models/ugach_seed0.joblib", "results/a/models/ugach_seed1.joblib"]
    assert settings.shared_fit_models(config, spec, "cca", [0]) == []  # not a variant
    apart = run_config({"a": synthetic(evaluation={"methods": ["ugach", "ugach_real"]},
                                       method_params={"ugach_real": {"n_bits": 32}})})
    assert settings.shared_fit_models(apart, settings.load_settings(apart)["a"], "ugach_real", [0]) == []
    alone = run_config({"a": synthetic(evaluation={"methods": ["ugach_real"]})})
    assert settings.shared_fit_models(alone, settings.load_settings(alone)["a"], "ugach_real", [0]) == []


def test_one_training_rule_per_job_shape_the_global_one_named_fit_evaluate():
    config = run_config({
        "a": synthetic(),
        "b": synthetic(evaluation={"seeds": [3, -4]}),
        "c": synthetic(evaluation={"fit_jobs": "per_seed"}),
        "d": synthetic(),
    }, evaluation={"seeds": [0, 1, 2]})
    rules = settings.training_rules(config, settings.load_settings(config))
    assert rules == [
        ("fit_evaluate", "per_method", (0, 1, 2), "a|d"),
        ("fit_evaluate_seeds_3_m4", "per_method", (3, -4), "b"),
        ("fit_evaluate_per_seed", "per_seed", (), "c"),
    ]
    assert settings.training_rules(config, {}) == []


def test_threads_model_context_media_folder_and_figure_defaults():
    config = run_config({"a": synthetic(evaluation={"threads_per_fit": 3}, features={"backbone_threads": 1},
                                        media_dir="clips")})
    spec = settings.load_settings(config)["a"]
    assert settings.fit_threads(spec) == 3 and settings.backbone_threads(spec) == 1
    assert settings.media_dir(spec) == "clips/a"
    context = settings.model_context(spec)
    assert context["dataset"] == "a" and context["feature_source"] == "extracted"
    assert context["backbone_weights"] == spec["backbone_weights"]
    assert "inference_precision" not in context["features"]  # float32, the default, is left out
    assert settings.figure_settings(config)["tsne_max_points"] == 2000
    assert settings.figure_settings({"figures": {"tsne_max_points": 10}})["tsne_max_points"] == 10
    assert settings.retrieval_page_settings({})["top_k"] == 10
    assert settings.gpus_of("ours") == 1 and settings.gpus_of("cca") == 0


def test_unknown_official_weight_files_are_one_config_error():
    assert set(settings.official_weights({})) == {"vggish_checkpoint", "vggish_pca_params", "inception"}
    with pytest.raises(ConfigError, match=r"official_weights names unknown files \['bogus'\]"):
        settings.official_weights({"official_weights": {"bogus": {"path": "x"}}})

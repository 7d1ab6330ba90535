"""avcmr.workflow.targets: the files each dataset's results, report and rules ask for."""

import pytest
from workflow_configs import RANDOM, run_config, synthetic

from avcmr.config import ConfigError
from avcmr.routes import Resolution
from avcmr.workflow import targets
from avcmr.workflow.settings import load_settings

RESULTS = ["map.tsv", "failures.parquet", "acquisition.tsv", "table3.tsv", "job_costs.tsv"]


def loaded(datasets, **top):
    config = run_config(datasets, **top)
    return config, load_settings(config)


def test_default_targets_have_table2_and_table4_only_where_their_methods_are_configured():
    config, settings = loaded({
        "all": synthetic(evaluation={"methods": ["random", "cca", "ours", "explicit"]}),
        "ablation": synthetic(evaluation={"methods": ["explicit", "implicit"]}),
        "baselines": synthetic(evaluation={"methods": ["random", "cca"]}),
    })
    files = targets.default_targets(config, settings, Resolution())
    for dataset in settings:
        assert {f"results/{dataset}/{name}" for name in RESULTS} <= set(files)
        assert f"results/{dataset}/report/run_summary.rst" in files
    assert {"results/all/table2.tsv", "results/all/table4.tsv"} <= set(files)
    assert "results/ablation/table2.tsv" not in files and "results/ablation/table4.tsv" in files
    assert "results/baselines/table2.tsv" in files and "results/baselines/table4.tsv" not in files  # random alone
    assert len(files) == len(set(files))


def test_a_default_dataset_without_a_route_or_an_entry_is_one_config_error():
    config, settings = loaded({"a": synthetic()})
    missing = Resolution(missing={"vegas": "dataset 'vegas': no route present"})
    with pytest.raises(ConfigError, match="^dataset 'vegas': no route present$"):
        targets.default_targets({**config, "default_datasets": ["vegas"]}, settings, missing)
    with pytest.raises(ConfigError, match="default_datasets names 'b', which is not under datasets:"):
        targets.default_targets({**config, "default_datasets": ["b"]}, settings, Resolution())


def test_evaluation_targets_take_a_subset_of_the_methods_over_every_seed():
    _, settings = loaded({"a": synthetic(evaluation={"methods": ["random", "cca", "ours"], "seeds": [0, 5]})})
    a = settings["a"]
    assert targets.evaluation_targets(a) == [f"results/a/eval/{m}_seed{s}.parquet" for m in ("random", "cca", "ours")
                                             for s in (0, 5)]
    assert targets.evaluation_targets(a, only=["ours", "explicit"]) == [
        "results/a/eval/ours_seed0.parquet", "results/a/eval/ours_seed5.parquet"]
    assert targets.evaluation_targets(a, exclude=("random", "cca")) == targets.evaluation_targets(a, only=["ours"])


def test_failure_and_benchmark_tables_follow_the_kind_and_the_training_jobs():
    _, settings = loaded({
        "a": synthetic(evaluation={"methods": ["cca", "ours"], "seeds": [0, 1]}),
        "b": synthetic(evaluation={"methods": ["cca"], "seeds": [0, 1], "fit_jobs": "per_seed"}),
    })
    a, b = settings["a"], settings["b"]
    assert targets.failure_tables(a, [0, 1]) == [f"results/a/failures/{stage}/shard{shard}.parquet"
                                                 for stage in ("decode", "logmel", "vggish", "inception")
                                                 for shard in (0, 1)]
    assert targets.failure_tables({"name": "f", "kind": "features"}, []) == []
    files = targets.benchmark_files(a, [0])
    assert files["decode"] == ["results/a/benchmarks/decode/shard0.tsv"]
    assert files["fit_evaluate"] == ["results/a/benchmarks/fit_evaluate/cca.tsv",
                                     "results/a/benchmarks/fit_evaluate/ours.tsv"]
    assert targets.benchmark_files(b, [0])["fit_evaluate"] == [
        "results/b/benchmarks/fit_evaluate/cca_seed0.tsv", "results/b/benchmarks/fit_evaluate/cca_seed1.tsv"]
    folder = {**a, "kind": "folder"}  # index has a failures table but no benchmark
    assert "index" not in targets.benchmark_files(folder, [0])


def test_backbone_files_are_none_for_random_weights_and_a_checkpoints_files(tmp_path):
    spec = {"backbone_weights": RANDOM, "features": {"vggish_postprocess": True}}
    assert targets.backbone_weight_files(spec, "vggish") == []
    for name in ("vggish.ckpt.index", "vggish.ckpt.data-00000-of-00001"):
        (tmp_path / name).write_bytes(b"w")
    official = {"backbone_weights": {"vggish": {"checkpoint": str(tmp_path / "vggish.ckpt"),
                                                "pca_params": str(tmp_path / "pca.npz")},
                                     "inception": str(tmp_path / "inception.h5")},
                "features": {"vggish_postprocess": True}}
    assert targets.backbone_weight_files(official, "vggish") == [
        str(tmp_path / "vggish.ckpt.data-00000-of-00001"), str(tmp_path / "vggish.ckpt.index"),
        str(tmp_path / "pca.npz")]  # a missing file is listed, for its fetch rule
    assert targets.backbone_weight_files(official, "inception") == [str(tmp_path / "inception.h5")]


def test_report_items_follow_the_methods_and_the_figures_section():
    config, settings = loaded({"a": synthetic(evaluation={"methods": ["random", "cca"], "seeds": [0, 1]}),
                               "r": synthetic(evaluation={"methods": ["random"]})})
    a = settings["a"]
    assert targets.seed_paths("{dataset}/{method}_{seed}", a) == ["a/random_0", "a/random_1", "a/cca_0", "a/cca_1"]
    assert targets.seed_paths("{dataset}/{method}_{seed}", a, first_seed_only=True) == ["a/random_0", "a/cca_0"]
    assert "results/a/figures/fig8_tsne.png" in targets.figure_targets(config, a)
    assert not any("fig8" in path for path in targets.figure_targets(config, settings["r"]))  # no embeddings
    assert targets.table_views(config, a) == ["results/a/report/acquisition.html", "results/a/report/table2.html",
                                              "results/a/report/table3.html"]
    assert targets.alpha_beta_targets(config, a)[0] == "results/a/alpha_beta/ours_alpha0_beta0_seed0.parquet"
    assert targets.report_targets(config, a) == ["results/a/report/run_summary.rst"] + targets.report_items(config, a)
    grid = {"figures": {"include_alpha_beta": True, "alpha_beta_grid": [0, 1e-5], "alpha_beta_seeds": [2]}}
    config, settings = loaded({"a": synthetic(evaluation={"methods": ["cca", "ours"]})}, **grid)
    assert "results/a/report/alpha_beta.html" in targets.table_views(config, settings["a"])
    assert "results/a/figures/fig7_alpha_beta.pdf" in targets.figure_targets(config, settings["a"])
    assert targets.alpha_beta_targets(config, settings["a"]) == [
        f"results/a/alpha_beta/ours_alpha{alpha}_beta{beta}_seed2.parquet"
        for alpha in ("0", "1e-05") for beta in ("0", "1e-05")]


def test_a_split_from_the_list_reads_the_listing():
    assert targets.listed_split_input({"name": "v", "split": {"from_manifest": True}}) == {
        "listing": "results/v/listing.parquet"}
    assert targets.listed_split_input({"name": "v", "split": {}}) == {}


def test_fetch_archives_targets_the_member_table_of_each_archive_dataset():
    settings = {"v": {"name": "v", "archive": "V.zip"}, "s": {"name": "s"}}
    assert targets.archive_targets(settings) == ["resources/archives/v/members.parquet"]

"""avcmr.workflow.provenance: a table's config hash changes with what decides it, and only with that."""

import pytest
from workflow_configs import RANDOM, run_config, synthetic

from avcmr.config import config_hash
from avcmr.routes import ChosenRoute, Resolution, Route
from avcmr.workflow import provenance
from avcmr.workflow.settings import load_settings


def hashes(**spec) -> dict:
    """config_hash at each level (and of one training job's method) for dataset `a` with ``spec``."""
    config = run_config({"a": synthetic(**spec)})
    a = load_settings(config)["a"]
    levels = {level: provenance.table_provenance(level, config, a)["config_hash"] for level in provenance.LEVELS}
    levels["cca job"] = provenance.table_provenance("evaluation", config, a, "cca")["config_hash"]
    levels["ours job"] = provenance.table_provenance("evaluation", config, a, "ours")["config_hash"]
    return levels


def changed(base: dict, other: dict) -> set:
    return {level for level in base if base[level] != other[level]}


def test_each_level_hashes_what_can_change_its_tables():
    base = hashes()
    everything = set(base)
    assert changed(base, hashes(features={"pca_dim": 8})) == everything
    assert changed(base, hashes(split={"seed": 5})) == everything - {"extraction"}
    # A method's parameters: the evaluation tables, and that method's own training job only.
    assert changed(base, hashes(method_params={"cca": {"reg": 0.5}})) == {"evaluation", "cca job"}
    # Execution settings change no table.
    assert changed(base, hashes(features={"backbone_threads": 1})) == set()
    assert changed(base, hashes(evaluation={"threads_per_fit": 1, "fit_jobs": "per_seed"})) == set()


def test_the_provenance_names_the_dataset_and_its_backbone_weights():
    config = run_config({"a": synthetic()})
    record = provenance.table_provenance("extraction", config, load_settings(config)["a"])
    assert record["dataset"] == "a" and record["random_weights"] is True
    assert record["backbone_weights"] == {"vggish": "random(seed=0)", "inception": "random(seed=0)"}
    with pytest.raises(ValueError, match="provenance level"):
        provenance.table_provenance("training", config, load_settings(config)["a"])


def vegas(**spec) -> dict:
    return {"name": "vg", "kind": "vegas", "manifest": "v.csv", "backbone_weights": RANDOM,
            "features": {"shard_size": 10}, "split": {"seed": 0}, **spec}


def test_download_pacing_changes_neither_the_listing_nor_the_extraction():
    paced = vegas(download={"url_template": "u/{youtube_id}", "sleep_s": 1.0, "attempts": 3})
    faster = vegas(download={"url_template": "u/{youtube_id}", "sleep_s": 0.0, "attempts": 1})
    elsewhere = vegas(download={"url_template": "w/{youtube_id}", "sleep_s": 1.0, "attempts": 3})
    assert provenance.download_content(paced) == {"url_template": "u/{youtube_id}"}
    assert provenance.listing_provenance(paced) == provenance.listing_provenance(faster)
    assert provenance.listing_provenance(paced) != provenance.listing_provenance(elsewhere)
    # The listing depends on the list and the shard size, not on the split unless a seeded draw.
    assert provenance.listing_spec(vegas(split={"seed": 3})) == provenance.listing_spec(vegas())
    assert provenance.listing_spec(vegas(max_clips=5, split={"seed": 3}))["split"] == {"seed": 3}


def test_the_archive_hash_covers_the_archive_settings_only():
    spec = {"name": "v", "kind": "folder", "archive": "V.zip", "layout": "{label}/{clip}.mp4", "split": {"seed": 1}}
    assert provenance.archive_settings(spec) == {"archive": "V.zip", "layout": "{label}/{clip}.mp4"}
    assert provenance.archive_provenance(spec) == {"dataset": "v", "config_hash": config_hash(
        {"archive": "V.zip", "layout": "{label}/{clip}.mp4"})}
    assert provenance.archive_provenance({**spec, "split": {"seed": 2}}) == provenance.archive_provenance(spec)


def test_map_header_names_dataset_weights_hash_and_the_chosen_route():
    config = run_config({"a": synthetic()})
    a = load_settings(config)["a"]
    lines = provenance.map_header(config, a, Resolution())
    assert lines[0] == "dataset: a (synthetic)"
    assert lines[1] == "backbone weights: vggish=random(seed=0); inception=random(seed=0)"
    assert lines[2] == f"config hash: {provenance.table_provenance('evaluation', config, a)['config_hash']}"
    assert lines[-1].startswith("WARNING: random backbone weights")
    assert provenance.acquisition_header(a) == []  # the synthetic set has no route
    route = Route("config/vegas.yaml", "vegas", {"kind": "vegas"}, "manifest", ("m.tsv",))
    chosen = Resolution(chosen={"vg": ChosenRoute("vg", route, (route,))})
    spec = {**vegas(), "manifest": "m.tsv"}
    header = provenance.route_header(spec, chosen)
    assert header[0] == provenance.acquisition_header(spec)[0] and "m.tsv" in header[0]
    assert header[1].startswith("route chosen: manifest (settings: config/vegas.yaml), the first present of")

"""The real Snakemake DAG on a tiny synthetic config (and a folder of a user's clips) in a temp dir
(the run shared with the report, query and cluster tests)."""

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from report_run import REPO, SNAKEMAKE, tiny_report_run

from avcmr.io.parquet import read_metadata, read_table


def is_tiny_ours_label(label: str) -> bool:
    """tests/data/tiny_config.yaml's `ours`: the schedule key it overrides, then its departures from
    the published defaults (in the merged config's key order)."""
    head, _, names = label.partition(" (config sets epochs, ")
    return head == "quick" and set(names.rstrip(")").split(", ")) == {
        "audio_hidden", "visual_hidden", "explicit_dim", "batch_size", "cca_components", "validation_fraction"}

pytestmark = pytest.mark.slow


def read_map(path: Path) -> tuple[list[str], pd.DataFrame]:
    lines = path.read_text().splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")]
    return header, pd.read_csv(path, sep="\t", comment="#")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The shared run of the default target: the tiny synthetic dataset and ``mine``, a folder of a
    user's clips with a corrupt file and a video without audio (tests/report_run.py)."""
    return tiny_report_run(tmp_path_factory.getbasetemp())


def test_map_table_has_cca_clearly_above_random(tiny_run):
    workdir, _ = tiny_run
    header, table = read_map(workdir / "results/tiny/map.tsv")
    assert list(table.columns) == ["method", "seed", "map_a2v", "map_v2a", "map_avg", "n_train", "n_test",
                                   "fit_seconds", "device", "budget", "epochs_run", "steps_run"]
    # The tiny config sets `epochs: 3` for ours, and narrow layers, a batch of 16 and others: the
    # quick budget's label names the schedule key it overrode, then every departure from the defaults.
    assert is_tiny_ours_label(table.set_index("method").loc["ours", "budget"])
    assert table.set_index("method").loc["cca", "budget"] == "closed-form"
    rows = table.set_index("method")
    assert rows.loc["cca", "map_avg"] > rows.loc["random", "map_avg"] + 0.2
    assert (rows["n_train"] == 27).all() and (rows["n_test"] == 9).all()
    assert any("random(seed=0)" in line for line in header)
    assert any(line.startswith("WARNING: random backbone weights") for line in header)


def test_tables_2_3_4_list_the_configured_methods(tiny_run):
    workdir, _ = tiny_run
    table2 = pd.read_csv(workdir / "results/tiny/table2.tsv", sep="\t", comment="#").set_index("method")
    table3 = pd.read_csv(workdir / "results/tiny/table3.tsv", sep="\t", comment="#").set_index("method")
    table4 = pd.read_csv(workdir / "results/tiny/table4.tsv", sep="\t", comment="#").set_index("method")
    assert list(table2.index) == ["random", "cca", "ours"]  # ablation-only `explicit` is not a baseline
    assert list(table4.index) == ["random", "explicit", "ours"]
    assert set(table3.index) == {"random", "cca", "ours", "explicit"}
    _, runs = read_map(workdir / "results/tiny/map.tsv")
    ours = runs.set_index("method").loc["ours"]
    assert table2.loc["ours", "map_avg_mean"] == pytest.approx(ours["map_avg"], abs=1e-4)
    assert 0 <= table2.loc["cca", "p_value_vs_ours"] <= 1
    assert table3.loc["ours", "n_parameters"] > table3.loc["cca", "n_parameters"] > 0
    history = read_table(workdir / "results/tiny/training/ours_seed0.parquet").to_pandas()
    assert list(history["epoch"]) == [1, 2, 3] and {"total", "corr", "dis", "cons"} <= set(history.columns)
    assert {"grad_corr", "grad_dis", "grad_cons", "steps"} <= set(history.columns)
    assert is_tiny_ours_label(table2.loc["ours", "budget"])
    assert table2.loc["ours", "epochs"] == 3
    assert "Wilcoxon" in (workdir / "results/tiny/table2.md").read_text()


def test_random_weights_are_recorded_in_every_downstream_table(tiny_run):
    workdir, _ = tiny_run
    for relative in ["vggish/shard0.parquet", "inception/shard1.parquet", "visual_pca.parquet",
                     "features.parquet", "eval/cca_seed0.parquet"]:
        meta = read_metadata(workdir / "results/tiny" / relative)
        assert meta["random_weights"] is True, relative
        assert meta["backbone_weights"]["inception"] == "random(seed=0)"


def test_features_table_has_the_documented_schema(tiny_run):
    workdir, _ = tiny_run
    table = read_table(workdir / "results/tiny/features.parquet")
    assert table.column_names == ["clip_id", "label", "split", "audio", "visual"]
    assert table.schema.field("audio").type.list_size == 128
    assert table.schema.field("visual").type.list_size == 16
    assert sorted(set(table["split"].to_pylist())) == ["test", "train"]
    manifest = read_table(workdir / "results/tiny/manifest.parquet")
    assert {"clip_id", "path", "label", "duration_s"} <= set(manifest.column_names)
    assert manifest.num_rows == 36


def test_bad_clips_of_a_user_folder_are_recorded_and_the_run_goes_on(tiny_run):
    workdir, _ = tiny_run
    failures = read_table(workdir / "results/mine/failures.parquet").to_pandas().set_index("clip_id")
    corrupt = failures.filter(like="corrupt", axis=0)
    silent = failures.filter(like="silent", axis=0)
    assert corrupt["stage"].tolist() == ["index"] and "unreadable media" in corrupt["reason"].iloc[0]
    assert silent["stage"].tolist() == ["decode"] and silent["reason"].iloc[0] == "no audio stream"
    _, table = read_map(workdir / "results/mine/map.tsv")
    assert (table["n_train"] + table["n_test"] == 12).all()


def test_second_run_has_nothing_to_do(tiny_run):
    _, command = tiny_run
    result = subprocess.run(command + ["--dry-run"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_backbone_threads_are_an_execution_setting_that_reruns_nothing(tiny_run):
    # Threads per VGGish / InceptionV3 job change how fast, not what (the features are the same):
    # changing them leaves every table up to date; only the report's page that lists the run's
    # settings is written again.
    workdir, command = tiny_run
    override = workdir / "backbone_threads.yaml"
    override.write_text(yaml.safe_dump({"features": {"backbone_threads": 1},
                                        "datasets": {"tiny": {"features": {"backbone_threads": 2}}}}))
    at = command.index("--configfile") + 1
    changed = command[:at + 1] + [str(override)] + command[at + 1:]
    result = subprocess.run(changed + ["--dry-run"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = result.stdout.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    assert dict(re.findall(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)) == {"run_summary": "2", "all": "1", "total": "3"}


def test_snakemake_lint_is_clean():
    result = subprocess.run(SNAKEMAKE + ["--lint", "--directory", str(REPO)], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

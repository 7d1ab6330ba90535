"""Interruption-safe runs, proven on the real DAG (tiny synthetic dataset, every registered method).

The reference is the uninterrupted run the end-to-end tests share (tests/report_run.py: the tiny
dataset with `random`, `cca`, `ours` and `explicit`). A second run of the same config, with every
other registered method added (narrow layers, one epoch), is killed with SIGKILL (its whole process
group, as when a machine or an allocation dies) while an InceptionV3 shard job runs, then resumed
exactly as README.md says ("Interrupted runs"): `snakemake --unlock` with the same arguments, then
the same command again.

Checked: every Parquet table both runs made is equal (values; wall-clock columns aside), map.tsv's
rows of the shared methods are equal (same seeds ⇒ same MAP on CPU, from two separate runs), every
registered method has its row, and the resume redid only the interrupted work: files finished
before the kill are untouched and the jobs run before plus after the kill add up to the run's plan.
That a fit of every method is repeatable in a fresh interpreter is checked in
tests/test_stages_fit_seeds.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from report_run import ONE_THREAD_BACKBONES, SNAKEMAKE, narrow_params, tiny_report_run

from avcmr.io.parquet import read_table
from avcmr.methods import available_methods

TARGET = "results/tiny/map.tsv"
INTERRUPTED_JOB = ("logs/tiny/inception/shard0.log", "results/tiny/inception/shard0.parquet")
# Wall-clock measurements differ between any two runs; every other value must be identical.
WALL_CLOCK_COLUMNS = {"fit_seconds", "seconds", "epoch_seconds", "wall_s", "elapsed_s"}

pytestmark = pytest.mark.slow


def every_method_config(reference_config: dict) -> dict:
    """The reference run's config with every registered method: the reference's own parameters
    for its methods, narrow layers and one epoch for the others."""
    config = {**reference_config, "evaluation": {**reference_config["evaluation"], "methods": available_methods()}}
    config["method_params"] = {method: reference_config["method_params"].get(method, narrow_params(method))
                               for method in available_methods()}
    return config


def command(workdir: Path) -> list[str]:
    return SNAKEMAKE + ONE_THREAD_BACKBONES + ["--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
                                               "--cores", "2", TARGET]


def finished_jobs(log: str) -> int:
    return len(re.findall(r"^Finished jobid: \d+", log, re.MULTILINE))


def planned_jobs(log: str) -> int:
    match = re.search(r"^total\s+(\d+)$", log, re.MULTILINE)
    assert match, log[-3000:]
    return int(match.group(1))


def result_files(workdir: Path) -> dict[str, int]:
    """{relative path: mtime_ns} of the finished files under results/ (not atomic-write temp files)."""
    return {str(path.relative_to(workdir)): path.stat().st_mtime_ns for path in (workdir / "results").rglob("*")
            if path.is_file() and not path.name.startswith(".")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    reference, _ = tiny_report_run(tmp_path_factory.getbasetemp())
    killed = tmp_path_factory.mktemp("interrupt") / "interrupted"
    killed.mkdir()
    reference_config = yaml.safe_load((reference / "config.yaml").read_text())
    (killed / "config.yaml").write_text(yaml.safe_dump(every_method_config(reference_config)))
    log_path = killed.parent / "interrupted.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command(killed), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started, output = killed / INTERRUPTED_JOB[0], killed / INTERRUPTED_JOB[1]
        deadline = time.monotonic() + 900
        while not (started.exists() and not output.exists()) and process.poll() is None:
            assert time.monotonic() < deadline, "the shard job never started"
            time.sleep(0.1)
        assert process.poll() is None, "the run ended before the shard job could be interrupted"
        time.sleep(2)  # the job is well under way (TensorFlow loading or extracting)
        assert not output.exists(), "the shard job finished before it could be interrupted"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    before_resume = result_files(killed)
    # README, "Interrupted runs": unlock with the same arguments, then the same command.
    unlock = subprocess.run(command(killed) + ["--unlock"], capture_output=True, text=True, timeout=600)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    resumed = subprocess.run(command(killed), capture_output=True, text=True, timeout=1800)
    if resumed.returncode != 0 and "IncompleteFilesException" in resumed.stderr:
        # README: when Snakemake reports incomplete files, the same command with --rerun-incomplete.
        resumed = subprocess.run(command(killed) + ["--rerun-incomplete"], capture_output=True, text=True,
                                 timeout=1800)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    return {"reference": reference, "reference_methods": reference_config["evaluation"]["methods"],
            "killed": killed, "killed_log": log_path.read_text(), "resume_log": resumed.stderr,
            "before_resume": before_resume}


def column_values(table: pa.Table, name: str) -> np.ndarray:
    """A column's values as one flat array (vector columns flattened)."""
    column = table[name].combine_chunks()
    while pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False)


def read_map(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#")


def test_the_kill_hit_a_running_shard_job(runs):
    assert runs["killed_log"].count("rule inception:") >= 1
    assert INTERRUPTED_JOB[1] not in runs["before_resume"]
    assert "Finished jobid" in runs["killed_log"]  # some work was done before the kill


def test_resume_redid_only_the_interrupted_work(runs):
    # No job finished before the kill ran again: the jobs before and after add up to the run's plan.
    done_before = finished_jobs(runs["killed_log"])
    assert done_before + planned_jobs(runs["resume_log"]) == planned_jobs(runs["killed_log"])
    assert finished_jobs(runs["resume_log"]) == planned_jobs(runs["resume_log"])
    # Files present before the resume were rewritten only as outputs of the jobs the resume ran
    # (the interrupted ones and those that had not started).
    rerun_outputs = {path for line in re.findall(r"^ +output: (.*)$", runs["resume_log"], re.MULTILINE)
                     for path in line.split(", ")}
    after = result_files(runs["killed"])
    changed = {path for path, mtime in runs["before_resume"].items() if after.get(path) != mtime}
    assert changed <= rerun_outputs, sorted(changed - rerun_outputs)
    assert INTERRUPTED_JOB[1] in rerun_outputs and INTERRUPTED_JOB[1] in after


def test_every_parquet_table_equals_the_uninterrupted_runs(runs):
    reference, killed = runs["reference"], runs["killed"]
    tables = sorted(str(p.relative_to(killed)) for p in (killed / "results").rglob("*.parquet"))
    shared = [relative for relative in tables if (reference / relative).exists()]
    # Only the added methods' files are the interrupted run's own; every stage before training is shared.
    added = set(available_methods()) - set(runs["reference_methods"])
    own = set(tables) - set(shared)
    assert own and all(re.match(rf"({'|'.join(added)})_seed", Path(relative).name) for relative in own), sorted(own)
    for stage in ("manifest", "split", "features", "visual_pca", "vggish/shard0", "inception/shard0"):
        assert f"results/tiny/{stage}.parquet" in shared, stage
    for relative in shared:
        left, right = read_table(reference / relative), read_table(killed / relative)
        assert left.schema.equals(right.schema), relative
        for name in left.column_names:
            if name not in WALL_CLOCK_COLUMNS:
                # Values compared exactly, NaN equal to NaN (e.g. the PCA table's mean row).
                np.testing.assert_array_equal(column_values(left, name), column_values(right, name),
                                              err_msg=f"{relative}: {name}")


def test_same_seed_gives_the_same_map_in_two_runs_on_cpu(runs):
    reference = read_map(runs["reference"] / TARGET).set_index("method")
    resumed = read_map(runs["killed"] / TARGET).set_index("method")
    assert sorted(resumed.index) == available_methods()
    assert set(resumed["device"]) == {"cpu"} and (resumed["n_test"] > 0).all()
    assert list(reference.index) == runs["reference_methods"]
    pd.testing.assert_frame_equal(reference.drop(columns="fit_seconds"),
                                  resumed.loc[reference.index].drop(columns="fit_seconds"))
    # The header's lines are equal but for the config hash (the configs differ in their methods).
    headers = [[line for line in (runs[run] / TARGET).read_text().splitlines()
                if line.startswith("#") and not line.startswith("# config hash:")] for run in ("reference", "killed")]
    assert headers[0] == headers[1] and len(headers[0]) >= 3

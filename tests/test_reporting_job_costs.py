"""The per-rule job cost table, from benchmark files written by Snakemake's own writer."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from snakemake.benchmark import BenchmarkRecord, write_benchmark_records

from avcmr.reporting.job_costs import job_cost_table, write_job_costs

# (wall s, max RSS MB, CPU s) of each job; None: Snakemake sampled nothing (a job shorter than its
# sampling interval: the file has the wall time and NA for the rest).
JOBS = {
    "decode": [(12.5, 310.0, 11.0), (7.5, 290.5, 6.0), (10.0, None, None)],
    "fit_evaluate": [(40.0, 1200.0, 75.0)],
    "vggish": [],
}


def benchmark_file(folder, name, seconds, rss, cpu):
    record = BenchmarkRecord(running_time=seconds, max_rss=rss, cpu_time=cpu)
    record.data_collected = rss is not None
    path = folder / f"{name}.tsv"
    write_benchmark_records([record], str(path), extended_fmt=False)
    return path


@pytest.fixture
def files(tmp_path):
    return {rule: [benchmark_file(tmp_path, f"{rule}{i}", *job) for i, job in enumerate(jobs)]
            for rule, jobs in JOBS.items()}


def test_table_sums_each_rule_from_the_benchmark_files(files):
    table = job_cost_table(files).set_index("rule")
    assert list(table.index) == ["decode", "fit_evaluate"]  # a rule without jobs has no row
    for rule in table.index:
        seconds = [job[0] for job in JOBS[rule]]
        rss = [job[1] for job in JOBS[rule] if job[1] is not None]
        row = table.loc[rule]
        assert row["jobs"] == len(seconds)
        assert row["total_s"] == pytest.approx(sum(seconds))
        assert row["mean_s"] == pytest.approx(sum(seconds) / len(seconds))
        assert row["max_s"] == pytest.approx(max(seconds))
        assert row["max_rss_mb"] == pytest.approx(max(rss))
        assert row["cpu_s"] == pytest.approx(sum(job[2] for job in JOBS[rule] if job[2] is not None))


def test_written_table_has_the_header_lines_and_reads_back(files, tmp_path):
    out = tmp_path / "out/job_costs.tsv"
    write_job_costs(files, out, ["dataset: tiny"])
    assert out.read_text().splitlines()[0] == "# dataset: tiny"
    back = pd.read_csv(out, sep="\t", comment="#")
    assert list(back["rule"]) == ["decode", "fit_evaluate"] and back["jobs"].sum() == 4
    assert math.isclose(back.loc[0, "total_s"], 30.0)


def test_a_file_that_is_not_a_benchmark_is_an_error(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("x\ty\n1\t2\n")
    with pytest.raises(ValueError, match="not a Snakemake benchmark file"):
        job_cost_table({"decode": [bad]})

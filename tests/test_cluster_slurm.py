"""The tiny synthetic DAG through ``--profile profiles/slurm`` on a real single-node SLURM.

The fixture brings up munged + MariaDB + slurmdbd + slurmctld + slurmd on 127.0.0.1 with all
state in a temp dir (tests/slurm/setup.sh; Debian's packages are installed when missing and we are
root), and stops them by their pid files at the end, pass or fail (tests/slurm/teardown.sh).
Accounting runs through slurmdbd, so the executor plugin polls ``sacct`` exactly as on a real
cluster, and the test reads sacct's records of what ran where.

The only command-line additions to the profile are test-speed knobs: the plugin's first status
check after 2 s instead of 40 s, and keeping the SLURM logs for the failure message.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from report_run import REPO, tiny_report_run

SLURM_SCRIPTS = REPO / "tests" / "slurm"
TARGET = "results/tiny/map.tsv"
SNAKEMAKE_TIMEOUT_S = 1800

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def snakemake(workdir: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    # A hung Snakemake ignores SIGTERM: `timeout -k` follows up with SIGKILL.
    command = ["timeout", "-k", "10", str(SNAKEMAKE_TIMEOUT_S), sys.executable, "-m", "snakemake",
               "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(workdir / "config.yaml"), *args, TARGET]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)


def tiny_workdir(tmp_path_factory, name: str) -> Path:
    """The tiny config as it is: `ours` and `explicit` train with torch (routed to the GPU
    partition); random and cca do not (CPU partition)."""
    workdir = tmp_path_factory.mktemp(name)
    shutil.copy(REPO / "tests/data/tiny_config.yaml", workdir / "config.yaml")
    return workdir


def local_rules() -> set[str]:
    """The rules the Snakefile's `localrules:` directive names."""
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", (REPO / "Snakefile").read_text(), re.MULTILINE)
    return set(re.findall(r"\w+", block.group(1)))


def job_stats(dry_run_output: str) -> Counter:
    """Rule → job count from the 'Job stats' table of a dry-run."""
    table = dry_run_output.split("Job stats:", 1)[1].split("total", 1)[0]
    return Counter({rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)})


def read_map(path: Path) -> tuple[list[str], pd.DataFrame]:
    lines = path.read_text().splitlines()
    return [line for line in lines if line.startswith("#")], pd.read_csv(path, sep="\t", comment="#")


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    """Environment (SLURM_CONF) of a running single-node SLURM; daemons stopped afterwards."""
    state = tmp_path_factory.mktemp("slurm")
    try:
        setup = subprocess.run(["bash", str(SLURM_SCRIPTS / "setup.sh"), str(state)], capture_output=True,
                               text=True, timeout=900)
        if setup.returncode == 3:  # no packages and no way to install them: not this machine's job
            pytest.skip(setup.stderr.strip())
        assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-4000:]
        env = dict(os.environ)
        env.update(line.split("=", 1) for line in (state / "env").read_text().splitlines())
        yield env
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPTS / "teardown.sh"), str(state)], timeout=120)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the run of the same tiny dataset on this machine that the workflow, report
    and query tests share (tests/report_run.py)."""
    return tiny_report_run(tmp_path_factory.getbasetemp())[0]


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory, slurm_env):
    workdir = tiny_workdir(tmp_path_factory, "cluster")
    args = ["--profile", str(REPO / "profiles/slurm"), "--slurm-init-seconds-before-status-checks", "2",
            "--slurm-keep-successful-logs"]
    planned = snakemake(workdir, *args, "--dry-run", env=slurm_env)
    assert planned.returncode == 0, planned.stderr[-3000:]
    started = time.monotonic()
    result = snakemake(workdir, *args, env=slurm_env)
    wall_s = time.monotonic() - started
    log = result.stdout + result.stderr
    if result.returncode != 0:
        slurm_logs = sorted((workdir / ".snakemake/slurm_logs").rglob("*.log"))
        tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in slurm_logs[-3:])
        pytest.fail(f"snakemake --profile profiles/slurm failed (rc {result.returncode}):\n{log[-5000:]}\n{tails}")
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    print(f"\nSLURM run: {len(job_ids)} jobs submitted (ids {', '.join(job_ids)}), wall {wall_s:.0f} s")
    return {"workdir": workdir, "log": log, "job_ids": job_ids, "run_id": run_id, "env": slurm_env,
            "wall_s": wall_s, "planned": job_stats(planned.stdout)}


def sacct(env, job_ids, fields: str, allocations_only: bool) -> pd.DataFrame:
    command = ["sacct", "--parsable2", "--noheader", "--starttime", "2000-01-01T00:00", "--format", fields,
               "--jobs", ",".join(job_ids)] + (["--allocations"] if allocations_only else [])
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True, timeout=60).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    return pd.DataFrame(rows, columns=fields.split(","))


def megabytes(value: str) -> float:
    """sacct's sizes ('219792K', '3000M', '1.5G') in MB; '' (not sampled) as 0."""
    if not value:
        return 0.0
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
    return float(value[:-1]) * units[value[-1]] if value[-1] in units else float(value) / 2**20


def test_every_job_went_through_slurm_and_completed(slurm_run):
    job_ids = slurm_run["job_ids"]
    jobs = sacct(slurm_run["env"], job_ids, "JobIDRaw,JobName,State,Partition,AllocTRES,Comment", True)
    # sacct knows exactly the jobs the Snakemake log reports, named by the plugin's run id.
    assert sorted(jobs["JobIDRaw"]) == sorted(job_ids)
    assert set(jobs["JobName"]) == {slurm_run["run_id"]}
    assert set(jobs["State"]) == {"COMPLETED"}
    # The plugin's comment names the job: `rule_<rule>_wildcards_<values>` for a single job and
    # `rule_<group>_<its rules>` for a group job. The per-shard chain ran as one job per shard (2),
    # sized by its widest rule (8 CPUs for InceptionV3), not by the sum of its rules; no per-shard rule
    # ran as a job of its own.
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    planned = slurm_run["planned"]
    grouped = {rule: n for rule, n in planned.items() if rule in profile["groups"]}
    group_comment = "rule_shard_" + "_".join(sorted(grouped))
    groups = jobs[jobs["Comment"] == group_comment]
    assert len(groups) == 2 == planned["decode"] and set(grouped.values()) == {2}, (grouped, jobs["Comment"])
    assert groups["AllocTRES"].str.contains(r"\bcpu=8,").all(), groups
    # The Snakefile's bookkeeping `localrules` ran where Snakemake ran; every other rule as a job of its own.
    singles = Counter(re.fullmatch(r"rule_(\w+?)_wildcards_\w+", c).group(1)
                      for c in jobs["Comment"] if c != group_comment)
    local = local_rules()
    assert {"manifest", "split", "map_table"} <= set(planned) & local
    assert singles == {rule: n for rule, n in planned.items() if rule not in grouped.keys() | local and rule != "all"}
    for rule in set(planned) & local:
        assert re.search(rf"^localrule {rule}:", slurm_run["log"], re.MULTILINE), rule
    # Training of the torch methods went to the GPU partition with one GPU; everything else (cca and
    # random training included) to the CPU partition, without a GPU.
    from avcmr.methods.registry import uses_torch

    torch_training = jobs[jobs["Comment"].map(
        lambda c: bool(m := re.fullmatch(r"rule_fit_evaluate_wildcards_tiny_(\w+?)(?:_\d+)?", c))
        and uses_torch(m.group(1)))]
    assert len(torch_training) == 2, jobs["Comment"]  # `ours` and `explicit` (one job each over its seeds)
    assert set(torch_training["Partition"]) == {"gpu"}
    assert torch_training["AllocTRES"].str.contains("gres/gpu=1").all()
    others = jobs.loc[~jobs.index.isin(torch_training.index)]
    assert set(others["Partition"]) == {"main"} and not others["AllocTRES"].str.contains("gpu").any()


def test_declared_memory_covers_what_the_jobs_used(slurm_run):
    """The rules' mem_mb (+ Snakemake's own processes in the job) held on the real cluster."""
    steps = sacct(slurm_run["env"], slurm_run["job_ids"], "JobIDRaw,JobName,MaxRSS,ReqMem", False)
    steps["job"] = steps["JobIDRaw"].str.split(".").str[0]
    requested = steps[~steps["JobIDRaw"].str.contains(r"\.")].set_index("job")["ReqMem"].map(megabytes)
    used = steps[steps["JobIDRaw"].str.contains(r"\.")].assign(rss=lambda d: d["MaxRSS"].map(megabytes))
    # The batch step (the job's Snakemake) runs beside one rule step at a time.
    batch = used[used["JobIDRaw"].str.endswith(".batch")].set_index("job")["rss"]
    rule_steps = used[~used["JobIDRaw"].str.endswith((".batch", ".extern"))].groupby("job")["rss"].max()
    peak = batch.add(rule_steps, fill_value=0)
    assert (peak > 0).all(), "sacct sampled no memory use"
    over = peak[peak > requested.loc[peak.index]]
    assert over.empty, f"jobs above their mem_mb: {dict(over)} vs {dict(requested.loc[over.index])}"


def test_map_table_equals_the_local_run(slurm_run, local_run):
    header_cluster, cluster = read_map(slurm_run["workdir"] / TARGET)
    header_local, local = read_map(local_run / TARGET)
    assert header_cluster == header_local
    assert list(cluster["method"]) == list(local["method"]) == ["random", "cca", "ours", "explicit"]
    # A trained network depends on the job's thread count (the order of float reductions), which
    # differs between the two runs; the closed-form methods do not. fit_seconds is a wall time;
    # everything else (MAP values, counts, device, budget) of the closed-form rows must be identical.
    closed_form = cluster["method"].isin(["random", "cca"])
    pd.testing.assert_frame_equal(cluster[closed_form].drop(columns="fit_seconds"),
                                  local[closed_form].drop(columns="fit_seconds"))
    assert (cluster["map_avg"] > 0).all()

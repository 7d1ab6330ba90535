"""What the DAG asks for, read from Snakemake's own dry-run on a tiny config in a temp dir: backbone
weights are declared inputs (a missing official file is fetched first, a replaced one re-runs the
extraction), ffmpeg is needed only by the jobs that run it, GPUs only by the torch methods."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / "tests/data/tiny_config.yaml").read_text())
CHECKPOINT = "resources/weights/vggish_model.ckpt"  # the official file's default place
TARGET = "results/tiny/vggish/shard0.parquet"


def snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml"), "--cores", "1", *args],
        capture_output=True, text=True, timeout=600, cwd=workdir, env=env)


def planned(result: subprocess.CompletedProcess) -> Counter:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Counter(re.findall(r"^(?:local)?rule (\w+):$", result.stdout, re.MULTILINE))


def outputs(result: subprocess.CompletedProcess) -> list[str]:
    return [path for line in re.findall(r"^ +output: (.*)$", result.stdout, re.MULTILINE) for path in line.split(", ")]


@pytest.fixture
def workdir(tmp_path):
    config = {**TINY, "datasets": {"tiny": {**TINY["datasets"]["tiny"], "backbone_weights": {
        "vggish": {"checkpoint": CHECKPOINT}, "inception": "random", "seed": 0}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_a_missing_weights_file_is_fetched_and_a_replaced_one_reruns_the_extraction(workdir):
    first = snakemake(workdir, "--dry-run", TARGET)
    assert planned(first)["fetch_weights_vggish_checkpoint"] == 1  # missing: its fetching rule is in the DAG
    assert planned(first)["vggish"] == 1
    # The file lands (by hand here), and every job of the DAG has run: nothing left to do.
    checkpoint = workdir / CHECKPOINT
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"first release")
    old = time.time() - 3600
    os.utime(checkpoint, (old, old))
    for path in outputs(first):
        if path == CHECKPOINT:
            continue
        target = workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if "." in target.name:
            target.write_bytes(b"")
        else:  # a directory output (the synthetic shard's media folder)
            target.mkdir(exist_ok=True)
    done = snakemake(workdir, "--dry-run", TARGET)
    assert planned(done) == Counter(), done.stdout[-2000:]
    # Replacing the checkpoint re-runs the VGGish extraction, and nothing upstream of it.
    checkpoint.write_bytes(b"another release")
    rerun = snakemake(workdir, "--dry-run", TARGET)
    assert planned(rerun) == Counter({"vggish": 1}), rerun.stdout[-2000:]
    assert "fetch_weights_vggish_checkpoint" not in rerun.stdout


def test_random_weights_need_no_file(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["datasets"]["tiny"]["backbone_weights"] = {"vggish": "random", "inception": "random", "seed": 0}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = planned(snakemake(workdir, "--dry-run", "results/tiny/vggish/shard0.parquet",
                             "results/tiny/inception/shard0.parquet"))
    assert jobs["vggish"] == jobs["inception"] == 1 and not any(rule.startswith("fetch") for rule in jobs)


def path_without_ffmpeg(folder: Path) -> str:
    """A PATH with every program of the current one except ffmpeg and ffprobe."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for program in Path(directory).glob("*") if Path(directory).is_dir() else []:
            link = folder / program.name
            if program.name not in ("ffmpeg", "ffprobe") and not link.exists():
                link.symlink_to(program)
    return str(folder)


def test_ffmpeg_is_needed_only_by_the_jobs_that_run_it(workdir, tmp_path):
    env = {**os.environ, "PATH": path_without_ffmpeg(tmp_path / "bin")}
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["datasets"]["tiny"]["backbone_weights"] = {"vggish": "random", "inception": "random", "seed": 0}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # The whole DAG parses and plans without ffmpeg (training and report jobs never need it) ...
    assert planned(snakemake(workdir, "--dry-run", env=env))["fit_evaluate"] == 4
    # ... and a job that runs ffmpeg stops with one line saying what is missing and how to get it.
    failed = snakemake(workdir, "results/tiny/clips/shard0.parquet", env=env)
    assert failed.returncode != 0
    log = (workdir / "logs/tiny/synthesize/shard0.log").read_text().strip().splitlines()
    assert log[-1].startswith("rule synthesize_shard: ffmpeg and ffprobe not found on PATH: install ffmpeg")
    assert not any("Traceback" in line for line in log)


def test_a_training_job_covers_a_method_over_its_seeds_unless_per_seed_jobs_are_asked(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["evaluation"] = {"methods": ["random", "cca"], "seeds": [0, 1, 2]}
    tiny = config["datasets"]["tiny"]
    config["datasets"] = {
        "tiny": tiny,                                                        # the global seeds, per method
        "other_seeds": {**tiny, "evaluation": {"seeds": [5, 6]}},            # a rule of its own
        "per_seed": {**tiny, "evaluation": {"fit_jobs": "per_seed"}},        # one job per (method, seed)
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--dry-run", *(f"results/{name}/map.tsv" for name in config["datasets"]))
    jobs = planned(result)
    assert jobs["fit_evaluate"] == 2 and jobs["fit_evaluate_seeds_5_6"] == 2 and jobs["fit_evaluate_per_seed"] == 6
    # Outputs stay per (method, seed): a per-method job lists every seed's files of every kind.
    written = set(outputs(result))
    for dataset, seeds in (("tiny", [0, 1, 2]), ("other_seeds", [5, 6]), ("per_seed", [0, 1, 2])):
        for method in ("random", "cca"):
            for seed in seeds:
                stem = f"{method}_seed{seed}"
                assert {f"results/{dataset}/eval/{stem}.parquet", f"results/{dataset}/eval/{stem}.precision.parquet",
                        f"results/{dataset}/eval/{stem}.embeddings.parquet", f"results/{dataset}/training/{stem}.parquet",
                        f"results/{dataset}/models/{stem}.joblib"} <= written
    cca_job = re.search(r"^rule fit_evaluate:\n(?:    .*\n)*?    output: (.*)\n(?:    .*\n)*?    wildcards: "
                        r"dataset=tiny, method=cca$", result.stdout, re.MULTILINE)
    assert cca_job and sorted(re.findall(r"eval/cca_seed(\d)\.parquet", cca_job.group(1))) == ["0", "1", "2"]


def test_a_real_valued_row_evaluates_its_hashing_rows_fit_when_configured_alike(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["evaluation"] = {"methods": ["ugach", "ugach_real", "agah_real"], "seeds": [0, 1]}
    config["method_params"] = {"ugach": {"hidden_dim": 64}, "ugach_real": {"hidden_dim": 64}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))

    def inputs_of(method: str) -> str:
        result = snakemake(workdir, "--dry-run", "results/tiny/map.tsv")
        assert result.returncode == 0, result.stderr[-3000:]
        job = re.search(r"^rule fit_evaluate:\n    input: (.*)\n(?:    .*\n)*?    wildcards: dataset=tiny, "
                        rf"method={method}$", result.stdout, re.MULTILINE)
        return job.group(1)

    shared = "results/tiny/models/ugach_seed0.joblib, results/tiny/models/ugach_seed1.joblib"
    assert inputs_of("ugach_real").endswith(shared)
    assert "models/" not in inputs_of("agah_real")  # agah is not configured: agah_real trains
    config["method_params"]["ugach_real"] = {"hidden_dim": 32}  # configured otherwise: it trains
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    assert "models/" not in inputs_of("ugach_real")


def test_kept_frames_are_decoded_first_and_dropped_ones_when_inception_can_take_them(workdir):
    """Decoding ahead of the backbones lets one-thread jobs pair up on the cores; where the frames
    are temporary that would hold every shard's frames on disk at once, so those decodes keep the
    default priority."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())

    def decode_priority(keep: bool) -> tuple[str, int]:
        config["datasets"]["tiny"]["features"] = {**config["datasets"]["tiny"].get("features", {}),
                                                  "keep_decoded_frames": keep}
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        result = snakemake(workdir, "--dry-run", "--forceall", TARGET.replace("vggish", "inception"))
        assert result.returncode == 0, result.stderr[-3000:]
        job = re.search(r"^rule (decode\w*):\n((?:    .*\n)*)", result.stdout, re.MULTILINE)
        priority = re.search(r"^    priority: (\d+)$", job.group(2), re.MULTILINE)
        return job.group(1), int(priority.group(1)) if priority else 0

    assert decode_priority(True) == ("decode", 2)
    assert decode_priority(False) == ("decode_dropping_frames", 0)

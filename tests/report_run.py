"""Shared by the end-to-end tests (workflow, report, query, cluster): one tiny Snakemake run of the
default target with every report item, and a headless Chromium to look at the report.

The run is made once per pytest process (every module that asks for it gets the same one) in
pytest's temp folder: two datasets, the tiny synthetic one of ``tests/data/tiny_config.yaml`` and
``mine``, a folder of a user's clips with a corrupt file and a video without audio.
"""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
# Tiny shards make the backbone jobs mostly TensorFlow's start-up: one thread each lets two run at
# once on 2 cores (Snakemake's own --set-threads; what a user with small shards would do too).
ONE_THREAD_BACKBONES = ["--set-threads", "vggish=1", "inception=1"]
DATASET = "tiny"
# The report's landing page depends on this target: every figure and table view of the dataset.
SUMMARY_TARGET = f"results/{DATASET}/report/run_summary.rst"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_RUNS: dict[Path, tuple[Path, list[str]]] = {}


def narrow_params(method: str) -> dict:
    """Parameters that make a method's fit on a tiny dataset quick: narrow layers and one epoch,
    from the constructor's own parameters (so a new method is covered without listing it here)."""
    from avcmr.methods import method_class

    params = {}
    for name, parameter in inspect.signature(method_class(method).__init__).parameters.items():
        if "hidden" in name and isinstance(parameter.default, list | tuple):
            params[name] = [32] * len(parameter.default)
        elif name in ("hidden_dim", "feature_dim"):
            params[name] = 32
        elif name == "epochs":
            params[name] = 1
    return params


def make_user_folder(root: Path) -> None:
    """Three labels of real clips, plus a corrupt file and a video without audio."""
    from avcmr.data.synthetic import SyntheticSpec, plan_clips, write_clips

    spec = SyntheticSpec(n_classes=3, n_clips=12, min_duration_s=3, max_duration_s=4, hard_fraction=0,
                         mislabeled_fraction=0, width=96, height=72, seed=11)
    clips = write_clips(plan_clips(spec), spec, root / "_tmp")
    for clip in clips.itertuples():
        (root / clip.label).mkdir(parents=True, exist_ok=True)
        shutil.move(clip.path, root / clip.label / f"{clip.clip_id}.mp4")
    shutil.rmtree(root / "_tmp")
    first_label = sorted(p for p in root.iterdir())[0]
    (first_label / "corrupt.mp4").write_bytes(b"\x00\x01garbage" * 500)
    source = next(first_label.glob("syn*.mp4"))
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-an", "-c", "copy", str(first_label / "silent.mp4")],
                   check=True)


def tiny_report_run(base: Path) -> tuple[Path, list[str]]:
    """(workdir, snakemake command) of a finished run of the default target (the tiny dataset with
    its report items, and the ``mine`` folder dataset)."""
    if base in _RUNS:
        return _RUNS[base]
    workdir = base / "report_run"
    workdir.mkdir(parents=True, exist_ok=True)
    make_user_folder(workdir / "my_clips")
    config = yaml.safe_load((REPO / "tests/data/tiny_config.yaml").read_text())
    config["figures"] = {"tsne_max_points": 500, "tsne_seed": 0}
    config["datasets"]["mine"] = {
        "kind": "folder", "root": str(workdir / "my_clips"), "allow_random_weights": True,
        "backbone_weights": {"vggish": "random", "inception": "random", "seed": 0},
        "features": {"pca_dim": 8, "shard_size": 20},
    }
    config["default_datasets"] = [DATASET, "mine"]
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = SNAKEMAKE + ONE_THREAD_BACKBONES + ["--directory", str(workdir), "--configfile", str(config_path),
                                                  "--cores", "2"]
    result = subprocess.run(command + ["all", SUMMARY_TARGET], capture_output=True, text=True, timeout=2400)
    assert result.returncode == 0, result.stderr[-4000:]
    _RUNS[base] = (workdir, command)
    return _RUNS[base]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt-get when it is missing (root only; else a skip)."""
    path = find_chromium()
    if path:
        return path
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("chromium is not installed and this test can only install it as root with apt-get "
                    "(run: apt-get install -y chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]
    for command in (["apt-get", *wait_for_lock, "update"], ["apt-get", *wait_for_lock, "install", "-y", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        if result.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed: {result.stderr[-2000:]}")
    path = find_chromium()
    if path is None:
        pytest.fail("apt-get installed chromium but no chromium executable is on PATH")
    return path


def chromium(executable: str, profile: Path, *arguments: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile folder."""
    command = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":  # `python tests/report_run.py`: install Chromium ahead of the tests
    print(ensure_chromium())

"""Shared by the report and query end-to-end tests: one tiny Snakemake run with every report item,
and a headless Chromium to look at the report.

The run is made once per pytest process (both test modules ask for it) in pytest's temp folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
DATASET = "tiny"
# The report's landing page depends on this target: every figure and table view of the dataset.
SUMMARY_TARGET = f"results/{DATASET}/report/run_summary.rst"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_RUNS: dict[Path, tuple[Path, list[str]]] = {}


def tiny_report_run(base: Path) -> tuple[Path, list[str]]:
    """(workdir, snakemake command) of a finished tiny run that built the report's items."""
    if base in _RUNS:
        return _RUNS[base]
    workdir = base / "report_run"
    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO / "tests/data/tiny_config.yaml").read_text())
    config["figures"] = {"tsne_max_points": 500, "tsne_seed": 0}
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = SNAKEMAKE + ["--directory", str(workdir), "--configfile", str(config_path), "--cores", "2"]
    result = subprocess.run(command + [SUMMARY_TARGET, f"results/{DATASET}/map.tsv"], capture_output=True,
                            text=True, timeout=2400)
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

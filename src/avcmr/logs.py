"""Logging set-up for workflow jobs: everything a job prints goes to its rule's log file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def log_to_file(path: str | os.PathLike) -> None:
    """Send Python logging *and* the process's stdout/stderr file descriptors to ``path``.

    Redirecting the descriptors also captures what native libraries (TensorFlow, ffmpeg) print, and
    the traceback of an uncaught exception, so a failed job's log says why it failed.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def start_job(snakemake) -> None:
    """First call of every workflow script: log to the rule's log file, and keep native thread
    pools (OpenBLAS, OpenMP, torch) within the rule's ``threads`` so parallel jobs don't
    oversubscribe the cores (that made BLAS 10–20× slower on a busy 2-core machine)."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(snakemake.threads))
    # Spinning OpenMP workers slowed small torch networks 5–10× when jobs share cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    log_to_file(snakemake.log[0])

"""Per-rule cost of a run from Snakemake's `benchmark:` files: wall time and peak memory (RSS).

Snakemake writes one TSV per job (columns ``s``, ``h:m:s``, ``max_rss``, ``max_vms``, ``max_uss``,
``max_pss``, ``io_in``, ``io_out``, ``mean_load``, ``cpu_time``; memory in MB, ``-`` or ``NA``
where it could not measure). The table sums them per rule: how many jobs, their total, mean and
longest wall time, the largest peak RSS and the CPU time, so one can size a cluster's requests
(the rules' ``mem_mb``/``runtime``) from a real run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from avcmr.io.parquet import atomic_path

log = logging.getLogger(__name__)

COLUMNS = ["rule", "jobs", "total_s", "mean_s", "max_s", "max_rss_mb", "cpu_s"]


def read_benchmark(path: str | Path) -> dict[str, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds of one job (NaN where Snakemake measured none)."""
    table = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
    if table.empty or "s" not in table.columns:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column or no row)")
    row = table.iloc[-1]  # a rule run with `benchmark: repeat(...)` has one row per repeat
    return {"s": float(row["s"]), "max_rss": float(row.get("max_rss", math.nan)),
            "cpu_time": float(row.get("cpu_time", math.nan))}


def job_cost_table(files_by_rule: Mapping[str, Sequence[str | Path]]) -> pd.DataFrame:
    """One row per rule (in the given order): jobs, total/mean/max wall seconds, max RSS, CPU seconds."""
    rows = []
    for rule, files in files_by_rule.items():
        if not files:
            continue
        jobs = pd.DataFrame([read_benchmark(path) for path in files])
        rows.append({
            "rule": rule,
            "jobs": len(jobs),
            "total_s": jobs["s"].sum(),
            "mean_s": jobs["s"].mean(),
            "max_s": jobs["s"].max(),
            "max_rss_mb": jobs["max_rss"].max(),  # NaN only when no job of the rule was measured
            "cpu_s": jobs["cpu_time"].sum(min_count=1),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def write_job_costs(files_by_rule: Mapping[str, Sequence[str | Path]], out: str | Path,
                    header: Sequence[str] = ()) -> pd.DataFrame:
    """Write :func:`job_cost_table` as a TSV (``# `` header lines first), atomically."""
    table = job_cost_table(files_by_rule)
    with atomic_path(out) as tmp:
        with open(tmp, "w") as handle:
            for line in header:
                handle.write(f"# {line}\n")
            table.to_csv(handle, sep="\t", index=False, float_format="%.2f", na_rep="NA")
    log.info("job costs of %d rules (%d jobs) written to %s", len(table), int(table["jobs"].sum()), out)
    return table

"""Could a smaller pass cap buy the demo's time back? Each iterative method of the demo under its
`quick` budget with ``QUICK_CAP_PASSES`` set to each of ``--cap-passes``, with the parameters the
workflow's config gives the dataset, against the MAP the workflow itself recorded (``--reference``,
the run's ``map.tsv``, trained under the committed cap).

    OMP_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/bench_demo_pass_cap.py \\
        --features results/synthetic/features.parquet --config config/config.yaml --dataset synthetic \\
        --cap-passes 50 --reference results/synthetic/map.tsv --out benchmarks/results/demo_pass_cap.tsv

Writes ``--out`` (per method, seed and cap: test MAP, how training ended, steps, fit seconds, and the
reference MAP) and a markdown table beside it (means over seeds, the change from the reference).
One thread per fit, as the workflow's training jobs run on the demo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from bench_learning_curves import config_method_params, write_rows
from bench_quick_convergence import run_new
from machine_info import machine_description

from avcmr.methods import budgets
from avcmr.reporting.report import read_tsv_with_header
from avcmr.stages import load_feature_arrays

# The demo's iterative rows whose fits differ (AGAH-real / UGACH-real share AGAH's / UGACH's fit).
METHODS = ["dcca", "c_dcca", "ugach", "agah", "ucal", "acmr", "dscmr", "tnn_c_cca",
           "ours", "explicit", "implicit", "ex_im_share"]  # fmt: skip
COLUMNS = ("method", "seed", "cap_passes", "new_map", "ended", "steps", "fit_s", "reference_map", "machine")


def reference_maps(path: Path | None) -> dict[tuple[str, int], float]:
    """(method, seed) → avg MAP from a workflow's ``map.tsv`` (comment lines skipped)."""
    if path is None:
        return {}
    table = read_tsv_with_header(path)[1]
    return {(method, int(seed)): float(value)
            for method, seed, value in zip(table["method"], table["seed"], table["map_avg"], strict=True)}


def markdown(rows: list[dict], header: str) -> str:
    lines = [f"**{header}**", "", "| model | cap (passes) | seeds | MAP | reference MAP | change | ended | steps (median) |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]  # fmt: skip
    for method in dict.fromkeys(row["method"] for row in rows):
        for cap in dict.fromkeys(row["cap_passes"] for row in rows):
            mine = [row for row in rows if row["method"] == method and row["cap_passes"] == cap]
            if not mine:
                continue
            new = np.mean([row["new_map"] for row in mine])
            references = [row["reference_map"] for row in mine if row["reference_map"] != ""]
            reference, change = ((f"{np.mean(references):.3f}", f"{new - np.mean(references):+.3f}")
                                 if len(references) == len(mine) else ("—", "—"))  # fmt: skip
            ends = ", ".join(sorted({row["ended"] for row in mine}))
            lines.append(f"| {method} | {cap} | {len(mine)} | {new:.3f} | {reference} | {change} | {ends} | "
                         f"{np.median([row['steps'] for row in mine]):,.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="the demo's features.parquet")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--cap-passes", type=int, nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--reference", type=Path, help="the workflow's map.tsv of the same features")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    data = load_feature_arrays(args.features)
    references = reference_maps(args.reference)
    machine = machine_description()
    header = (f"{args.dataset}: {len(data['train']['labels'])} train / {len(data['test']['labels'])} test pairs; "
              f"budget quick with the config's method parameters; {machine}")  # fmt: skip
    print("#", header, flush=True)
    rows = []
    for cap in args.cap_passes:
        budgets.QUICK_CAP_PASSES = cap  # the budget reads it at fit time
        for method in args.methods:
            params = config_method_params(args.config, args.dataset, method)
            for seed in args.seeds:
                row = {**run_new(method, data, seed, params), "cap_passes": cap, "machine": machine,
                       "reference_map": references.get((method, seed), "")}  # fmt: skip
                rows.append(row)
                print("\t".join(str(row[column]) for column in COLUMNS[:-1]), flush=True)
                write_rows(args.out, COLUMNS, rows, header)
    args.out.with_suffix(".md").write_text(markdown(rows, header))
    print(markdown(rows, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())

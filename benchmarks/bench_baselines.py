"""Fit and evaluation time and MAP of Table 2 baselines at VEGAS scale (22,482 train / 5,621 test).

Generates the feature-level synthetic VEGAS stand-in (`avcmr.data.synthetic_features`), then for
every registered method named on the command line (default: the closed-form, kernel and
cluster/deep CCA baselines plus `cca`, `random`, `random_pca`) fits it with its default
hyper-parameters (or ``--params``), evaluates MAP a→v, v→a and their average with
`avcmr.evaluation.metrics`, and prints and writes a TSV. Wall times on a shared machine depend on
its load, so process CPU seconds and the 1-minute load average are reported too.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_baselines.py --out benchmarks/results/baselines.tsv
    PYTHONPATH=src .venv/bin/python benchmarks/bench_baselines.py dcca c_dcca --params '{"dcca": {"epochs": 10}}'
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from pathlib import Path

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
from avcmr.evaluation.metrics import evaluate_scores
from avcmr.methods import available_methods, make_method

DEFAULT_METHODS = ["random", "random_pca", "cca", "cca_nipals", "kcca", "c_cca", "dcca", "c_dcca", "tnn_c_cca"]
COLUMNS = [
    "method", "fit_s", "fit_cpu_s", "eval_s", "map_a2v", "map_v2a", "map_avg",
    "epochs_run", "n_parameters", "device", "load_1min",
]  # fmt: skip


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("methods", nargs="*", default=DEFAULT_METHODS, help="registered method names")
    parser.add_argument("--params", default="{}", help='JSON {"method": {"param": value}} overriding defaults')
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/baselines.tsv"), help="TSV to write")
    parser.add_argument("--n-clips", type=int, default=28103, help="clips in the synthetic set (VEGAS: 28,103)")
    parser.add_argument("--train-size", type=int, default=22482, help="training pairs (VEGAS: 22,482)")
    parser.add_argument("--random-state", type=int, default=0, help="seed of the data and of the methods")
    parser.add_argument("--device", default=None, help="override `device` of the methods that have one")
    parser.add_argument("--verbose", action="store_true", help="log every epoch")
    return parser.parse_args(argv)


def run_method(name: str, params: dict, data, random_state: int) -> dict[str, object]:
    audio_train, visual_train, labels_train, audio_test, visual_test, labels_test = data
    method = make_method(name, params, random_state=random_state)
    wall, cpu = time.perf_counter(), time.process_time()
    method.fit(audio_train, visual_train, labels_train)
    fit_s, fit_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    started = time.perf_counter()
    per_query = evaluate_scores(method.similarity(audio_test, visual_test), labels_test, labels_test)
    eval_s = time.perf_counter() - started
    a2v, v2a = float(per_query["a2v"].mean()), float(per_query["v2a"].mean())
    return {
        "method": name,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "eval_s": eval_s,
        "map_a2v": a2v,
        "map_v2a": v2a,
        "map_avg": (a2v + v2a) / 2,
        "epochs_run": len(getattr(method, "history_", [])) or "",
        "n_parameters": method.n_parameters(),
        "device": getattr(method, "device_", "cpu"),
        "load_1min": os.getloadavg()[0],
    }


def format_cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv=None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    unknown = sorted(set(args.methods) - set(available_methods()))
    if unknown:
        print(f"unknown method(s) {unknown}; available: {available_methods()}", file=sys.stderr)
        return 2
    overrides = json.loads(args.params)
    started = time.perf_counter()
    table = make_synthetic_features(n_clips=args.n_clips, train_size=args.train_size, random_state=args.random_state)
    data = split_arrays(table)
    print(f"# synthetic VEGAS-scale features: {len(data[0])} train / {len(data[3])} test pairs, "
          f"{data[0].shape[1]}-D audio, {data[1].shape[1]}-D visual ({time.perf_counter() - started:.1f} s)")
    print("\t".join(COLUMNS), flush=True)
    rows = []
    for name in args.methods:
        params = dict(overrides.get(name, {}))
        if args.device is not None and "device" in make_method(name).get_params():
            params.setdefault("device", args.device)
        row = run_method(name, params, data, args.random_state)
        rows.append(row)
        print("\t".join(format_cell(row[column]) for column in COLUMNS), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t")
        writer.writeheader()
        writer.writerows({column: format_cell(row[column]) for column in COLUMNS} for row in rows)
    print(f"# wrote {args.out} (total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

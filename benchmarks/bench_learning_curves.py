"""Learning curves: each iterative method's validation score against optimiser steps.

Every method trains with the step schedule of ``avcmr.methods.budgets.step_schedule`` for at most
``--max-steps`` steps (per method, default ``CURVE_STEPS``), ending ``--patience-steps`` steps after
its best score (default ``CURVE_PATIENCE``: three times the ``quick`` budget's patience), with a
validation every epoch (the dual-subspace family: every epoch too), with the constructor's
parameters or those a workflow config gives a dataset (``--config config/config.yaml --dataset
synthetic``: the demo's), on the calibrated stand-ins of
``avcmr.data.calibrated_standin`` (``--standin vegas`` / ``ave``) or on a workflow feature table
(``--features results/synthetic/features.parquet``, the demo). The score is each method's own
model-selection criterion, the one the ``quick`` budget's patience watches: validation MAP for the
supervised methods (``val_map``), the held-out pairs' reciprocal rank for UCAL and UGACH
(``val_pair_mrr``), the negated validation loss for DCCA, C-DCCA and TNN-C-CCA (``val_loss``).

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_learning_curves.py \\
        --standin ave --seeds 0 1 2 --out benchmarks/results/learning_curves_ave.tsv

Writes ``--out`` (one row per validated epoch: dataset, method, seed, epoch, steps, criterion,
score, seconds so far) and beside it ``*_summary.tsv`` (per method and seed: plateau = best score,
its step, the steps to reach 97 % of the plateau, the longest stretch of steps between two
improvements before the plateau, test MAP of the best validated weights, fit seconds, seconds per
step); ``--figure`` draws the curves (``--figure-from A.tsv B.tsv --figure F.png``: of earlier runs). For MAP-like scores (in [0, 1]) "97 % of the plateau" is
score ≥ 0.97 × plateau; for a negated loss it is 97 % of the way from the first validation to the
plateau.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from machine_info import load_average, machine_description

from avcmr.data.calibrated_standin import PRESETS, calibrated_pairs
from avcmr.evaluation.metrics import evaluate_scores
from avcmr.methods.budgets import (
    PAPER_SCHEDULES,
    QUICK_PATIENCE_STEPS,
    step_schedule,
    steps_per_epoch,
)
from avcmr.methods.registry import make_method
from avcmr.stages import load_feature_arrays

# Steps of a curve per method: several times the steps the method was seen to need on the VEGAS-size
# stand-in (the 10- and 30-epoch runs: ACMR still rising after ≈ 9,500 steps, DSCMR best at
# ≈ 4,600), so that the plateau is on the curve.
CURVE_STEPS = {
    "ours": 1500, "explicit": 1500, "implicit": 1500, "ex_im_share": 1500, "dcca": 2000, "ucal": 2000,
    "dscmr": 8000, "c_dcca": 8000, "tnn_c_cca": 8000, "acmr": 16000, "ugach": 3000, "agah": 3000,
}  # fmt: skip
# A curve ends once its score has not improved for this many steps (well past the `quick` budget's
# patience, so that the curve shows the plateau and what follows it) or at its step count.
CURVE_PATIENCE = {method: 3 * steps for method, steps in QUICK_PATIENCE_STEPS.items()}
CRITERIA = ("val_map", "val_pair_mrr", "val_loss")
CURVE_COLUMNS = ("dataset", "method", "seed", "epoch", "steps", "criterion", "score", "seconds")
SUMMARY_COLUMNS = ("dataset", "method", "seed", "n_train", "criterion", "plateau", "plateau_step", "steps_to_97",
                   "longest_gap_steps", "steps_run", "test_map", "fit_seconds", "seconds_per_step", "load_1min",
                   "machine")  # fmt: skip


def config_method_params(config_path: Path | None, dataset: str | None, method: str) -> dict:
    """A method's parameters as the workflow's config gives them for ``dataset`` (the budget key left
    out: the curve sets the schedule); {} without a config."""
    if config_path is None:
        return {}
    import yaml

    from avcmr.workflow.settings import method_params

    config = yaml.safe_load(config_path.read_text())
    params = method_params(config, config["datasets"][dataset], method)
    params.pop("budget", None)
    return params


def load_dataset(args) -> tuple[str, dict]:
    """(name, {"train": …, "test": …}) of arrays for the chosen stand-in or feature table."""
    if args.standin:
        return f"standin_{args.standin}", calibrated_pairs(args.standin, random_state=0)
    return args.features.parent.name, load_feature_arrays(args.features)


def curve_of(history: list[dict], method: str, params: dict, n_train: int) -> tuple[str, list[tuple]]:
    """(criterion, [(epoch, steps, score, seconds so far)]) from a fitted model's history: steps are the
    model's own count where it keeps one, else epochs × steps per epoch; a loss is negated."""
    per_epoch = steps_per_epoch(method, params, n_train)
    criterion = next((c for c in CRITERIA if any(c in record for record in history)), None)
    points, seconds = [], 0.0
    for record in history:
        seconds += float(record.get("seconds", 0.0))
        if criterion is None or criterion not in record:
            continue
        score = float(record[criterion]) * (-1.0 if criterion == "val_loss" else 1.0)
        points.append((int(record["epoch"]), int(record.get("steps", record["epoch"] * per_epoch)), score, seconds))
    return criterion or "none", points


def curve_summary(criterion: str, points: list[tuple]) -> dict:
    """Plateau (best score) and its step, steps to 97 % of it, the longest stretch between two
    improvements up to the plateau."""
    if not points:
        return {"plateau": float("nan"), "plateau_step": 0, "steps_to_97": 0, "longest_gap_steps": 0}
    steps = np.array([p[1] for p in points])
    scores = np.array([p[2] for p in points])
    best = int(np.argmax(scores))
    plateau = scores[best]
    if criterion == "val_loss":  # a negated loss: 97 % of the way from the first validation
        reached = scores >= scores[0] + 0.97 * (plateau - scores[0])
    else:
        reached = scores >= 0.97 * plateau
    improvements = [0] + [int(steps[i]) for i in range(len(scores)) if scores[i] > scores[:i].max(initial=-np.inf)]
    gaps = np.diff([s for s in improvements if s <= steps[best]])
    return {"plateau": float(plateau), "plateau_step": int(steps[best]), "steps_to_97": int(steps[np.argmax(reached)]),
            "longest_gap_steps": int(gaps.max()) if len(gaps) else 0}


def run_curve(method: str, data: dict, seed: int, max_steps: int, patience_steps: int | None, precision: str,
              config_params: dict) -> tuple[str, list[tuple], dict]:
    train, test = data["train"], data["test"]
    n_train = len(train["labels"])
    defaults = {**make_method(method, {}).get_params(), **config_params}
    schedule = step_schedule(method, defaults, n_train, max_steps, patience_steps)
    if "validation_interval" in defaults:
        schedule["validation_interval"] = 1
        schedule["training_precision"] = precision
    model = make_method(method, {**config_params, **schedule, "device": "cpu"}, random_state=seed)
    started = time.perf_counter()
    model.fit(train["audio"], train["visual"], train["labels"])
    fit_seconds = time.perf_counter() - started
    per_query = evaluate_scores(model.similarity(test["audio"], test["visual"]), test["labels"], test["labels"])
    history = list(getattr(model, "history_", []) or [])
    if hasattr(model, "epoch_seconds_"):  # the dual-subspace family keeps its epoch times apart
        history = [{**record, "seconds": s} for record, s in zip(history, model.epoch_seconds_, strict=False)]
    criterion, points = curve_of(history, method, {**defaults, **schedule}, n_train)
    steps_run = points[-1][1] if points else 0
    extra = {"n_train": n_train, "steps_run": steps_run, "fit_seconds": round(fit_seconds, 1),
             "seconds_per_step": round(fit_seconds / max(steps_run, 1), 4),
             "test_map": round(float((per_query["a2v"].mean() + per_query["v2a"].mean()) / 2), 4)}
    return criterion, points, extra


def draw(rows: list[dict], path: Path) -> None:
    """One panel per method: score against steps, one line per (dataset, seed) of the curve rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(row["method"] for row in rows))
    columns = 4
    figure, axes = plt.subplots(int(np.ceil(len(methods) / columns)), columns, figsize=(4 * columns, 3 * int(
        np.ceil(len(methods) / columns))), squeeze=False)
    for axis, method in zip(axes.flat, methods, strict=False):
        lines = dict.fromkeys((row["dataset"], row["seed"]) for row in rows if row["method"] == method)
        for dataset, seed in lines:
            points = [row for row in rows if (row["method"], row["dataset"], row["seed"]) == (method, dataset, seed)]
            axis.plot([int(p["steps"]) for p in points], [float(p["score"]) for p in points], linewidth=1,
                      label=f"{dataset} s{seed}")
            criterion = points[0]["criterion"]
            axis.set_ylabel("−val_loss" if criterion == "val_loss" else criterion)
        axis.set_title(method)
        axis.set_xlabel("optimiser steps")
        axis.legend(fontsize=6)
    for axis in list(axes.flat)[len(methods):]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def read_rows(path: Path) -> list[dict]:
    with open(path) as handle:
        handle.readline()  # the header comment
        return list(csv.DictReader(handle, delimiter="\t"))


def write_rows(path: Path, columns, rows, header: str) -> None:
    with open(path, "w", newline="") as handle:
        handle.write(f"# {header}\n")
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--standin", choices=sorted(PRESETS))
    source.add_argument("--features", type=Path, help="a workflow features.parquet (e.g. the demo's)")
    source.add_argument("--figure-from", type=Path, nargs="+", help="no fits: draw --figure from these curve TSVs")
    iterative = [m for m in PAPER_SCHEDULES if not m.endswith("_real")]
    parser.add_argument("--methods", nargs="+", default=iterative, choices=iterative)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=None, help="steps of every curve (default: CURVE_STEPS)")
    parser.add_argument("--patience-steps", type=int, default=None,
                        help="end a curve this many steps after its best score (default: CURVE_PATIENCE; 0: never)")
    parser.add_argument("--config", type=Path, default=None,
                        help="take the methods' parameters from this workflow config (with --dataset)")
    parser.add_argument("--dataset", default=None, help="the config's dataset whose method_params apply")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="training_precision of the dual-subspace family")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.figure_from:
        draw([row for path in args.figure_from for row in read_rows(path)], args.figure)
        return 0
    if args.out is None:
        parser.error("--out is required")
    dataset, data = load_dataset(args)
    machine = machine_description()
    header = (f"{dataset}: {len(data['train']['labels'])} train / {len(data['test']['labels'])} test pairs; "
              f"seeds {' '.join(map(str, args.seeds))}; dual-subspace precision {args.precision}; {machine}")
    print("#", header, flush=True)
    curve_rows, summary_rows = [], []
    summary_out = args.out.with_name(args.out.stem + "_summary.tsv")
    for method in args.methods:
        for seed in args.seeds:
            patience = CURVE_PATIENCE[method] if args.patience_steps is None else (args.patience_steps or None)
            criterion, points, extra = run_curve(method, data, seed, args.max_steps or CURVE_STEPS[method], patience,
                                                 args.precision, config_method_params(args.config, args.dataset,
                                                                                      method))
            curve_rows += [dict(zip(CURVE_COLUMNS, (dataset, method, seed, *p[:2], criterion, round(p[2], 5),
                                                    round(p[3], 1)), strict=True)) for p in points]
            summary = {"dataset": dataset, "method": method, "seed": seed, "criterion": criterion,
                       **{k: round(v, 5) if isinstance(v, float) else v for k, v in curve_summary(criterion, points).items()},
                       **extra, "load_1min": load_average(), "machine": machine}
            summary_rows.append(summary)
            print("\t".join(str(summary[c]) for c in SUMMARY_COLUMNS[:-1]), flush=True)
            # Written after every curve: a long run interrupted keeps what it measured.
            write_rows(args.out, CURVE_COLUMNS, curve_rows, header)
            write_rows(summary_out, SUMMARY_COLUMNS, summary_rows, header)
    if args.figure:
        draw(curve_rows, args.figure)
    print(f"# wrote {args.out} and {summary_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

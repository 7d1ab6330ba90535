"""Is `quick` trained enough? Each model under the `quick` budget (to convergence: a patience and a
cap in optimiser steps) against the fixed step counts `quick` used before and against 5× the steps
it ran, on a calibrated stand-in; and what Tables 2 + 4 cost under it.

For every model of ``MODELS`` (the 16 of Tables 2 and 4; ugach_real / agah_real share ugach's /
agah's fit) and seed:

- ``new``: ``budget: quick`` as the workflow runs it: test MAP (avg of a→v and v→a), steps run,
  how training ended (converged / cap reached / closed-form), fit seconds;
- ``old``: the previous `quick`, a fixed number of steps (``OLD_QUICK_STEPS``), no early stop;
- ``5x``: 5 × the steps ``new`` ran, no early stop, the best validated weights kept (with
  ``--no-five-x`` left out; not for a row whose cap was reached, which passes by saying so).

A model passes when |new − 5x| ≤ 0.03 or its row says the cap was reached.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_quick_convergence.py \\
        --standin vegas --seeds 0 1 2 --out benchmarks/results/quick_convergence_vegas.tsv

Writes ``--out`` (one row per model and seed) and a markdown table beside it (means over seeds; the
total fit minutes of the 16 models for each seed: Tables 2 + 4 × 1 seed). ``--resume`` keeps the rows
an interrupted run already wrote to ``--out`` (a row's ``new`` result, and its comparisons when they
were done) and computes only what is missing; ``--comparisons-per-seed`` finishes each seed (its
comparisons too) before the next starts, so that an interrupted run leaves whole seeds.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from bench_learning_curves import write_rows
from machine_info import load_average, machine_description

from avcmr.data.calibrated_standin import PRESETS, calibrated_pairs
from avcmr.evaluation.metrics import evaluate_scores
from avcmr.methods.budgets import PAPER_SCHEDULES, budgeted_method, step_schedule, training_summary
from avcmr.methods.registry import make_method

MODELS = ["random", "cca", "kcca", "c_cca", "dcca", "c_dcca", "ugach", "agah", "ucal", "acmr", "dscmr", "tnn_c_cca",
          "ours", "explicit", "implicit", "ex_im_share"]  # fmt: skip
# `quick` before it trained to convergence: a fixed number of optimiser steps per method.
OLD_QUICK_STEPS = {
    "ours": 150, "explicit": 150, "implicit": 150, "ex_im_share": 150, "dcca": 150, "ucal": 150, "dscmr": 150,
    "c_dcca": 200, "tnn_c_cca": 400, "acmr": 300, "ugach": 150, "agah": 150,
}  # fmt: skip
TOLERANCE = 0.03
COLUMNS = ("dataset", "method", "seed", "new_map", "ended", "steps", "epochs", "fit_s", "old_map", "old_s",
           "five_x_map", "five_x_s", "passes", "load_1min", "machine")  # fmt: skip
NUMERIC = {"seed": int, "new_map": float, "steps": int, "epochs": int, "fit_s": float, "old_map": float,
           "old_s": float, "five_x_map": float, "five_x_s": float}  # fmt: skip


def test_map(model, test: dict) -> float:
    per_query = evaluate_scores(model.similarity(test["audio"], test["visual"]), test["labels"], test["labels"])
    return float((per_query["a2v"].mean() + per_query["v2a"].mean()) / 2)


def fit_timed(model, train: dict) -> float:
    started = time.perf_counter()
    model.fit(train["audio"], train["visual"], train["labels"])
    return time.perf_counter() - started


def fixed_steps(method: str, steps: int, n_train: int, seed: int):
    """``method`` trained for ``steps`` optimiser steps (whole epochs), no early stop, best validated kept."""
    defaults = make_method(method, {}).get_params()
    return make_method(method, {**step_schedule(method, defaults, n_train, steps, None), "device": "cpu"},
                       random_state=seed)


def run_new(method: str, data: dict, seed: int, params: dict | None = None) -> dict:
    """``method`` under ``budget: quick`` as the workflow runs it (with a config's ``params``, if any):
    test MAP, steps, how it ended, seconds."""
    train, test = data["train"], data["test"]
    n_train = len(train["labels"])
    device = {"device": "cpu"} if method in PAPER_SCHEDULES else {}  # the closed-form methods take no device
    model, budget = budgeted_method(method, {**(params or {}), "budget": "quick", **device}, n_train,
                                    random_state=seed)
    seconds = fit_timed(model, train)
    summary = training_summary(method, model, budget, model.get_params(), n_train)
    return {"method": method, "seed": seed, "new_map": round(test_map(model, test), 4),
            "ended": summary["training_end"], "steps": summary["steps_run"], "epochs": summary["epochs_run"],
            "fit_s": round(seconds, 1)}


def add_comparisons(row: dict, data: dict, five_x: bool) -> None:
    """The old fixed-step `quick` and (``five_x``) 5× the steps ``new`` ran, into ``row``. A capped row
    passes by saying so (the acceptance rule): its 5× run, the most expensive of all, is skipped."""
    method, seed, train, test = row["method"], row["seed"], data["train"], data["test"]
    if method not in PAPER_SCHEDULES:  # closed-form: nothing to compare
        return
    n_train = len(train["labels"])
    old = fixed_steps(method, OLD_QUICK_STEPS[method], n_train, seed)
    row["old_s"] = round(fit_timed(old, train), 1)
    row["old_map"] = round(test_map(old, test), 4)
    if row["ended"] == "cap reached":
        row["passes"] = True
    elif five_x:
        longer = fixed_steps(method, 5 * max(1, int(row["steps"])), n_train, seed)
        row["five_x_s"] = round(fit_timed(longer, train), 1)
        row["five_x_map"] = round(test_map(longer, test), 4)
        row["passes"] = abs(row["new_map"] - row["five_x_map"]) <= TOLERANCE


def read_rows(path: Path) -> list[dict]:
    """The rows an earlier run wrote to ``path`` (numbers as numbers, empty cells left out)."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    rows = []
    for raw in csv.DictReader(lines, delimiter="\t"):
        row = {key: NUMERIC.get(key, str)(value) for key, value in raw.items() if value not in (None, "")}
        if "passes" in row:
            row["passes"] = row["passes"] == "True"
        rows.append(row)
    return rows


def compared(row: dict) -> bool:
    """Whether ``row``'s comparisons are done (closed-form rows have none to do)."""
    return row["method"] not in PAPER_SCHEDULES or ("old_map" in row and ("passes" in row or "five_x_map" in row))


def markdown(rows: list[dict], header: str) -> str:
    """Means over seeds per model (each column over the rows that have it), the largest gap between a
    row's new and 5× MAP, and the total fit minutes of the models per seed."""
    lines = [f"**{header}**", "", "| model | seeds | old quick MAP | new quick MAP | 5× MAP | steps (median) | ended | "
             "fit s (median) | largest gap new − 5× | passes |", "|---|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    for method in dict.fromkeys(row["method"] for row in rows):
        mine = [row for row in rows if row["method"] == method]

        def mean(key, mine=mine):
            values = [float(row[key]) for row in mine if row.get(key) not in (None, "")]
            return f"{np.mean(values):.3f}" if values else "—"

        ends = sorted({row["ended"] for row in mine})
        gaps = [abs(float(row["new_map"]) - float(row["five_x_map"])) for row in mine
                if row.get("five_x_map") not in (None, "")]  # fmt: skip
        passes = [row.get("passes") for row in mine if row.get("passes") not in (None, "")]
        lines.append(f"| {method} | {len(mine)} | {mean('old_map')} | {mean('new_map')} | {mean('five_x_map')} | "
                     f"{np.median([int(row['steps']) for row in mine]):,.0f} | {', '.join(ends)} | "
                     f"{np.median([float(row['fit_s']) for row in mine]):.1f} | {f'{max(gaps):.3f}' if gaps else '—'} | "
                     f"{'—' if not passes else f'{sum(map(bool, passes))} of {len(passes)}'} |")
    for seed in sorted({row["seed"] for row in rows}):
        total = sum(float(row["fit_s"]) for row in rows if row["seed"] == seed)
        models = sum(1 for row in rows if row["seed"] == seed)
        lines.append(f"\nSeed {seed}: {models} models fitted under `quick` in {total / 60:.1f} min.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--standin", choices=sorted(PRESETS), default="vegas")
    parser.add_argument("--methods", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-five-x", action="store_true", help="skip the 5× runs (the cost of Tables 2 + 4 only)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--markdown-from", type=Path, nargs="+", default=None,
                        help="no fits: the rows of these TSVs into --out and its markdown (seeds run apart; a "
                             "later file's row replaces an earlier one of the same model and seed)")
    parser.add_argument("--resume", action="store_true", help="keep the rows --out already holds, compute the rest")
    parser.add_argument("--comparisons-per-seed", action="store_true",
                        help="each seed's comparisons right after its models (whole seeds if interrupted)")
    args = parser.parse_args(argv)
    if args.markdown_from:
        # A later file's row replaces an earlier one of the same model and seed (a rerun under a
        # changed default, e.g. quick_convergence_vegas_ugach_last.tsv for UGACH).
        latest = {(row["method"], row["seed"]): row for path in args.markdown_from for row in read_rows(path)}
        rows = list(latest.values())
        header = (f"calibrated {args.standin} stand-in; budget quick; seeds "
                  f"{' '.join(map(str, sorted({row['seed'] for row in rows})))}; rows of "
                  f"{', '.join(path.name for path in args.markdown_from)}, a later file's row replacing an "
                  f"earlier one of the same model and seed")  # fmt: skip
        write_rows(args.out, COLUMNS, rows, header)
        args.out.with_suffix(".md").write_text(markdown(rows, header))
        print(markdown(rows, header))
        return 0
    data = calibrated_pairs(args.standin, random_state=0)
    y_train, y_test = data["train"]["labels"], data["test"]["labels"]
    machine = machine_description()
    header = (f"calibrated {args.standin} stand-in (seed 0: {len(y_train)} train / {len(y_test)} test pairs); "
              f"budget quick; seeds {' '.join(map(str, args.seeds))}; {machine}")
    print("#", header, flush=True)
    done = read_rows(args.out) if args.resume and args.out.exists() else []
    rows = []

    def every_row() -> list[dict]:  # this run's rows, and an earlier run's not reached by this one
        taken = {(kept["method"], kept["seed"]) for kept in rows}
        return rows + [kept for kept in done if (kept["method"], kept["seed"]) not in taken]

    def save(row: dict) -> None:  # after every model: print its row; an interrupted run keeps the file
        print("\t".join(str(row.get(column, "")) for column in COLUMNS[:-1]), flush=True)
        write_rows(args.out, COLUMNS, every_row(), header)

    # First every model under the new `quick` (the cost of Tables 2 + 4 measured without the
    # comparison runs in between), then the comparisons.
    def compare(seed_rows: list[dict]) -> None:
        for row in seed_rows:
            if not compared(row):
                add_comparisons(row, data, not args.no_five_x)
                save(row)

    for seed in args.seeds:
        for method in args.methods:
            earlier = [row for row in done if row["method"] == method and row["seed"] == seed and "new_map" in row]
            rows.append(earlier[0] if earlier else {"dataset": f"standin_{args.standin}", **run_new(method, data, seed),
                                                    "load_1min": load_average(), "machine": machine})
            save(rows[-1])
        if args.comparisons_per_seed:
            compare([row for row in rows if row["seed"] == seed])
    print(f"# Tables 2 + 4 under quick: {sum(float(row['fit_s']) for row in rows) / 60:.1f} fit minutes", flush=True)
    compare(rows)
    args.out.with_suffix(".md").write_text(markdown(every_row(), header))
    print(markdown(every_row(), header))
    return 0


if __name__ == "__main__":
    sys.exit(main())

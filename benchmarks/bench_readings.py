"""The sensitivity of Table 4 to the paper's open readings, one factor at a time.

For each option of the dual-subspace models (``avcmr.methods.dual_subspace``: ``cons_form``,
``dis_form``, ``selection``, ``ablation_nets``, ``implicit_dim``, ``fusion_fit``), each value other
than the default is set alone, the others left at their defaults; every setting trains `ours`,
`explicit`, `implicit` and `ex_im_share` (an option that cannot change a model's fit, such as
``ablation_nets`` for `ours`, is not rerun: its row repeats the default's) for each seed, with
TNN-C-CCA and C-CCA as fixed reference rows. MAP is the average of a→v and v→a on the test pairs.

    # the calibrated VEGAS stand-in, quick budget, 3 seeds (or --features a workflow features.parquet):
    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/bench_readings.py \\
        --standin vegas --budget quick --precision bfloat16
    # on a CPU with bf16 units --precision bfloat16 halves the time (MAP unchanged to 3 decimals
    # there); --epochs N gives the four models a fixed schedule instead of the budget's

Writes ``--out`` (default ``benchmarks/results/readings_<budget>.tsv``): option, value, method,
seeds, MAP mean and std over the seeds, the difference from the default setting's mean, median
fit seconds, and the machine and its load; prints the rows as they come; and the same as a
markdown table beside it (``.md``), both rewritten after every row: ``--resume`` keeps the
settings an interrupted run wrote and fits the rest, and ``--threads 1`` lets two runs share two
cores. ``--markdown-from A.tsv B.tsv --out X.md`` redoes the markdown of finished runs.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_learning_curves import write_rows
from machine_info import machine_description

from avcmr.data.calibrated_standin import PRESETS, calibrated_pairs
from avcmr.evaluation.metrics import evaluate_scores
from avcmr.io.parquet import atomic_path
from avcmr.methods.budgets import budgeted_method
from avcmr.methods.dual_subspace_losses import (
    ABLATION_NETS,
    CONS_FORMS,
    DIS_FORMS,
    FUSION_FITS,
    SELECTIONS,
)
from avcmr.stages import load_feature_arrays

TABLE4_MODELS = ("ours", "explicit", "implicit", "ex_im_share")
REFERENCE_MODELS = ("tnn_c_cca", "c_cca")
# Each option's values, the default first (the defaults of the estimators' constructors).
READINGS = {
    "cons_form": CONS_FORMS,
    "dis_form": DIS_FORMS,
    "selection": SELECTIONS,
    "ablation_nets": ABLATION_NETS,
    "implicit_dim": ("classes", 10),
    "fusion_fit": FUSION_FITS,
}
COLUMNS = ("option", "value", "method", "seeds", "map_mean", "map_std", "minus_default", "fit_s_median", "load_1min",
           "machine")  # fmt: skip


def changes_fit(option: str, value, method: str, n_classes: int) -> bool:
    """Whether a non-default value of ``option`` can change ``method``'s fit (else not rerun)."""
    if option == "implicit_dim":
        return value != n_classes  # as wide as the classes: the default's one-hot targets
    if option == "ablation_nets":
        return method in ("explicit", "implicit")
    if option == "dis_form":
        return method != "explicit"  # explicit has α = 0: L_dis has no weight
    return True


def run(method: str, params: dict, data: dict, seed: int) -> tuple[float, float]:
    """(avg MAP, fit seconds) of one fit on the train pairs, evaluated on the test pairs."""
    train, test = data["train"], data["test"]
    model, _ = budgeted_method(method, params, len(train["labels"]), random_state=seed)
    started = time.perf_counter()
    model.fit(train["audio"], train["visual"], train["labels"])
    seconds = time.perf_counter() - started
    per_query = evaluate_scores(model.similarity(test["audio"], test["visual"]), test["labels"], test["labels"])
    return float((per_query["a2v"].mean() + per_query["v2a"].mean()) / 2), seconds


def markdown_table(rows: list[dict], title: str) -> str:
    """One line per setting (option = value), one column per model: MAP mean ± std and, for a
    non-default setting, its difference from the default's mean."""
    methods = list(dict.fromkeys(row["method"] for row in rows))
    settings = list(dict.fromkeys((row["option"], row["value"]) for row in rows))
    cells = {(row["option"], row["value"], row["method"]): row for row in rows}
    lines = [f"**{title}**", "", "| setting | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for option, value in settings:
        label = "default" if option == "default" else ("reference" if option == "reference" else f"{option} = {value}")
        entries = []
        for method in methods:
            row = cells.get((option, value, method))
            if row is None:
                entries.append("")
                continue
            text = f"{float(row['map_mean']):.3f} ± {float(row['map_std']):.3f}"
            if option not in ("default", "reference"):
                text += f" ({float(row['minus_default']):+.3f})"
            entries.append(text)
        lines.append(f"| {label} | " + " | ".join(entries) + " |")
    return "\n".join(lines) + "\n"


def read_rows(path: Path) -> tuple[str, list[dict]]:
    """(header comment, rows) of a TSV this script wrote."""
    with open(path) as handle:
        header = handle.readline().lstrip("# ").strip()
        return header, list(csv.DictReader(handle, delimiter="\t"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, help="a features.parquet (train and test pairs)")
    parser.add_argument("--standin", choices=sorted(PRESETS), help="the calibrated stand-in instead of --features")
    parser.add_argument("--markdown-from", type=Path, nargs="+", default=None,
                        help="no fits: write the markdown table of TSVs this script wrote (to --out, .md)")
    parser.add_argument("--budget", choices=("quick", "paper"), default="quick")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for the four models (a longer schedule)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="training_precision of the four models (bfloat16: faster on a CPU with bf16 units)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--options", nargs="+", default=list(READINGS), choices=list(READINGS))
    parser.add_argument("--methods", nargs="+", default=list(TABLE4_MODELS), choices=list(TABLE4_MODELS))
    parser.add_argument("--no-references", action="store_true", help="leave out the TNN-C-CCA and C-CCA rows")
    parser.add_argument("--defaults-from", type=Path, default=None,
                        help="take the default setting's rows from this earlier TSV (same features, budget, seeds) "
                             "instead of fitting them, e.g. to run some options in a second process")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (1 each for two runs side by side on 2 cores)")
    parser.add_argument("--resume", action="store_true", help="keep the settings --out already holds, fit the rest")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.markdown_from:
        text = "\n".join(markdown_table(rows, header) for header, rows in map(read_rows, args.markdown_from))
        target = args.out or Path("benchmarks/results/readings.md")
        target.write_text(text)
        print(text)
        return 0
    if args.standin:
        source, data = f"calibrated {args.standin} stand-in (preset {args.standin}, seed 0)", \
            calibrated_pairs(args.standin, random_state=0)
    elif args.features:
        source, data = str(args.features), load_feature_arrays(args.features)
    else:
        parser.error("--features or --standin is required (or --markdown-from)")
    torch.set_num_threads(args.threads)
    budget_name = f"{args.budget}{'' if args.epochs is None else f'_{args.epochs}ep'}"
    out = args.out or Path(f"benchmarks/results/readings_{budget_name}.tsv")
    machine = machine_description()
    base = {"budget": args.budget, "device": "cpu", "training_precision": args.precision,
            **({} if args.epochs is None else {"epochs": args.epochs})}
    header = (f"{source}: {len(data['train']['labels'])} train / {len(data['test']['labels'])} test pairs; "
              f"budget {args.budget}; epochs {args.epochs or 'from the budget'}; training_precision {args.precision}; "
              f"seeds {' '.join(map(str, args.seeds))}; {args.threads} thread(s); one option at a time from the defaults")
    print(f"# {header}; {machine}", flush=True)
    print("\t".join(COLUMNS), flush=True)
    # --resume: a setting already in --out is not fitted again (a long run survives an interruption).
    done = {(row["option"], row["value"], row["method"]): row for row in read_rows(out)[1]} \
        if args.resume and out.exists() else {}
    rows, defaults = [], {}

    def save() -> None:  # after every row, so that an interrupted run keeps what it measured
        kept = rows + [row for key, row in done.items()
                       if key not in {(r["option"], r["value"], r["method"]) for r in rows}]
        with atomic_path(out) as tmp:
            write_rows(tmp, COLUMNS, kept, header)
        with atomic_path(out.with_suffix(".md")) as tmp:
            tmp.write_text(markdown_table(kept, header))

    def record(option, value, method, fits):
        """The row of one setting; ``fits`` is called only when --out does not hold it yet."""
        if (option, str(value), method) in done:
            row = done[(option, str(value), method)]
        else:
            results = fits()
            maps = np.array([result[0] for result in results])
            minus = maps.mean() - defaults[method] if method in defaults else 0.0
            row = {"option": option, "value": str(value), "method": method, "seeds": len(results),
                   "map_mean": f"{maps.mean():.4f}", "map_std": f"{maps.std(ddof=1) if len(maps) > 1 else 0.0:.4f}",
                   "minus_default": f"{minus:+.4f}", "fit_s_median": f"{np.median([r[1] for r in results]):.1f}",
                   "load_1min": f"{os.getloadavg()[0]:.2f}", "machine": machine}  # fmt: skip
        rows.append(row)
        print("\t".join(str(row[column]) for column in COLUMNS), flush=True)
        save()
        return float(row["map_mean"])

    default_rows = {}
    if args.defaults_from:  # the default setting's rows of an earlier run with the same data and budget
        default_rows = {row["method"]: row for row in read_rows(args.defaults_from)[1] if row["option"] == "default"}
        for method in args.methods:
            rows.append(default_rows[method])
            defaults[method] = float(default_rows[method]["map_mean"])
    for method in [] if args.defaults_from else args.methods:
        defaults[method] = record("default", "-", method,
                                  lambda method=method: [run(method, base, data, seed) for seed in args.seeds])
        default_rows[method] = rows[-1]
    if not args.no_references:
        for method in REFERENCE_MODELS:
            record("reference", "-", method,
                   lambda method=method: [run(method, {"budget": args.budget}, data, seed) for seed in args.seeds])
    n_classes = len(np.unique(data["train"]["labels"]))
    for option in args.options:
        for value in READINGS[option][1:]:
            for method in args.methods:
                if changes_fit(option, value, method, n_classes):
                    record(option, value, method, lambda method=method, option=option, value=value: [
                        run(method, {**base, option: value}, data, seed) for seed in args.seeds])
                else:  # the default's row, under this setting's name
                    rows.append({**default_rows[method], "option": option, "value": str(value), "minus_default": "+0.0000"})
                    save()
    print(f"# wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

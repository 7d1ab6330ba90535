"""Tables 2 and 4 at VEGAS scale under a named training budget (`quick` or `paper`).

Generates the feature-level VEGAS stand-in (`avcmr.data.synthetic_features`: 22,482 train / 5,621
test pairs), writes it as the workflow's ``features.parquet``, and runs the workflow's own code
path for each of the 16 models of Tables 2 + 4 (``avcmr.stages.fit_and_evaluate`` with
``{"budget": ...}`` as the config would give it), then the workflow's table writers with the
paper's VEGAS numbers beside ours. Writes into ``--out-dir``: ``eval/*.parquet``,
``training/*.parquet`` (per-epoch histories, with the gradient norm of each loss term for the
dual-subspace models), ``table2.{tsv,md}``, ``table3.{tsv,md}``, ``table4.{tsv,md}`` and
``runs.tsv`` (per model: fit seconds, epochs and steps run, MAP, the machine and its load).

    # CPU-sized budget (≈ 10 min on 2 cores):
    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_tables.py --budget quick
    # VGGSound size (183,154 train / 15,446 test pairs, 309 classes):
    PYTHONPATH=src .venv/bin/python benchmarks/bench_tables.py --n-clips 198600 --train-size 183154 --n-classes 309 \
        --paper-reference none --out-dir benchmarks/results/tables_quick_vggsound --keep-going
    # the published schedules (hours on a CPU; minutes on a GPU):
    PYTHONPATH=src .venv/bin/python benchmarks/bench_tables.py --budget paper --device cuda
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from machine_info import machine_description

from avcmr.data.synthetic_features import make_synthetic_features, write_feature_table
from avcmr.io.parquet import read_metadata, read_table
from avcmr.reporting.paper_numbers import TABLE2, TABLE4
from avcmr.reporting.tables import (
    TABLE2_METHODS,
    TABLE4_METHODS,
    map_table,
    write_accuracy_tables,
    write_cost_tables,
)
from avcmr.stages import fit_and_evaluate

MODELS = ["random", "cca", "kcca", "dcca", "c_cca", "c_dcca", "ugach", "agah", "ucal", "acmr", "dscmr",
          "tnn_c_cca", "ours", "explicit", "implicit", "ex_im_share"]  # fmt: skip
COLUMNS = ["method", "budget", "fit_s", "eval_s", "epochs_run", "steps_run", "best_epoch", "map_a2v", "map_v2a",
           "map_avg", "device", "load_1min", "machine"]  # fmt: skip


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("methods", nargs="*", default=MODELS, help="registered method names (default: the 16 models)")
    parser.add_argument("--budget", choices=("quick", "paper"), default="quick", help="training budget")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: benchmarks/results/tables_<budget>")
    parser.add_argument("--n-clips", type=int, default=28103, help="clips in the synthetic set (VEGAS: 28,103)")
    parser.add_argument("--train-size", type=int, default=22482, help="training pairs (VEGAS: 22,482)")
    parser.add_argument("--n-classes", type=int, default=10, help="classes (VEGAS: 10; VGGSound: 309)")
    parser.add_argument("--paper-reference", choices=("vegas", "none"), default="vegas",
                        help="print the paper's VEGAS numbers beside ours (none for other sizes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of the methods")
    parser.add_argument("--features", type=Path, default=None,
                        help="an existing features.parquet (e.g. pooled by bench_pool_vggsound.py) instead of "
                             "generating one; --n-clips/--train-size/--n-classes are then read from it")
    parser.add_argument("--device", default=None, help="override `device` of the methods that have one")
    parser.add_argument("--verbose", action="store_true", help="log every epoch")
    parser.add_argument("--keep-going", action="store_true",
                        help="a method that raises is reported (traceback on stderr, a `failed` row) and the next runs")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    out = args.out_dir or Path(f"benchmarks/results/tables_{args.budget}")
    (out / "eval").mkdir(parents=True, exist_ok=True)
    (out / "training").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    provenance = {"dataset": "synthetic_features", "config_hash": f"bench-{args.budget}", "random_weights": False,
                  "backbone_weights": {"features": "synthetic feature-level stand-in"}}  # fmt: skip
    if args.features is not None:
        features_path = args.features
        pooled = read_table(features_path, columns=["label", "split"]).to_pandas()
        args.n_clips, args.train_size = len(pooled), int((pooled["split"] == "train").sum())
        args.n_classes = pooled["label"].nunique()
    else:
        features_path = out / "features.parquet"
        table = make_synthetic_features(n_clips=args.n_clips, n_classes=args.n_classes, train_size=args.train_size,
                                        random_state=args.seed)
        write_feature_table(table, features_path, provenance)
    print(f"# {args.n_clips} synthetic pairs ({features_path}), budget {args.budget}, {machine_description()}",
          flush=True)
    print("\t".join(COLUMNS), flush=True)
    rows, eval_paths = [], []
    for name in args.methods:
        params = {"budget": args.budget}
        if args.device is not None and name not in ("random", "random_pca", "cca", "cca_nipals", "kcca", "c_cca"):
            params["device"] = args.device
        eval_path = out / "eval" / f"{name}_seed{args.seed}.parquet"
        try:
            fit_and_evaluate(features_path, name, params, args.seed, eval_path,
                             out / "training" / f"{name}_seed{args.seed}.parquet", provenance)  # fmt: skip
        except Exception:
            if not args.keep_going:
                raise
            traceback.print_exc()
            print(f"{name}\tfailed (traceback above)", flush=True)
            continue
        eval_paths.append(str(eval_path))
        summary = read_metadata(eval_path)["summary"]
        maps = map_table([str(eval_path)]).iloc[0]
        row = {**summary, "map_a2v": maps["map_a2v"], "map_v2a": maps["map_v2a"], "map_avg": maps["map_avg"],
               "fit_s": summary["fit_seconds"], "eval_s": summary["eval_seconds"],
               "load_1min": os.getloadavg()[0], "machine": machine_description()}  # fmt: skip
        rows.append(row)
        print("\t".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS), flush=True)
    header = [f"synthetic features ({args.train_size} train / {args.n_clips - args.train_size} test pairs, "
              f"{args.n_classes} classes), budget {args.budget}, {machine_description()}"]
    reference = None if args.paper_reference == "none" else args.paper_reference
    table2 = [path for path in eval_paths if Path(path).name.split("_seed")[0] in TABLE2_METHODS]
    table4 = [path for path in eval_paths if Path(path).name.split("_seed")[0] in TABLE4_METHODS]
    if table2:
        write_accuracy_tables(table2, out / "table2.tsv", out / "table2.md", TABLE2_METHODS, "Table 2 (benchmark)",
                              True, header, reference=reference, paper_table=TABLE2)  # fmt: skip
    if table4:
        write_accuracy_tables(table4, out / "table4.tsv", out / "table4.md", TABLE4_METHODS, "Table 4 (benchmark)",
                              False, header, reference=reference, paper_table=TABLE4)  # fmt: skip
    write_cost_tables(eval_paths, out / "table3.tsv", out / "table3.md", MODELS, header, reference=reference)
    with open(out / "runs.tsv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"# wrote {out} (total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

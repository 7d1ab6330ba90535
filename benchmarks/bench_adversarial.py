"""Fit and evaluate the adversarial / hashing baselines at VEGAS scale on synthetic features.

28,103 clips (22,482 training pairs), 128-D audio and 1,024-D visual vectors from
``avcmr.data.synthetic_features``; every method runs with its default hyper-parameters (the
documented CPU-budget defaults). For the hashing methods a second row reports cosine on the
real-valued pre-binarisation outputs of the *same* fitted model (``real_similarity``; its fit
time is the hashing row's). Writes a TSV (and prints it):

    method  fit_s  fit_cpu_s  eval_s  map_a2v  map_v2a  map_avg  n_parameters  best_epoch  device

``fit_s`` is wall time; ``fit_cpu_s`` is the process's CPU time (all threads), which depends far
less on what else runs on a shared machine (on an idle two-core CPU, wall ≈ CPU / 2).

    python benchmarks/bench_adversarial.py [--methods dscmr acmr ...] [--out results/bench_adversarial.tsv]

Not a timed test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import os

# Spinning OpenMP workers make PyTorch several times slower on a shared, oversubscribed CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays  # noqa: E402
from avcmr.evaluation.metrics import evaluate_scores  # noqa: E402
from avcmr.methods import make_method  # noqa: E402

METHODS = ("dscmr", "acmr", "ucal", "ugach", "agah")
COLUMNS = (
    "method",
    "fit_s",
    "fit_cpu_s",
    "eval_s",
    "map_a2v",
    "map_v2a",
    "map_avg",
    "n_parameters",
    "best_epoch",
    "device",
)


def _evaluate(scores_fn, labels_test) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    ap = evaluate_scores(scores_fn(), labels_test, labels_test)
    seconds = time.perf_counter() - started
    a2v, v2a = float(ap["a2v"].mean()), float(ap["v2a"].mean())
    return seconds, {"map_a2v": a2v, "map_v2a": v2a, "map_avg": (a2v + v2a) / 2}


def run(methods, seed: int, device: str) -> list[dict[str, object]]:
    table = make_synthetic_features(random_state=seed)
    audio_train, visual_train, y_train, audio_test, visual_test, y_test = split_arrays(table)
    print(
        f"# {len(y_train)} training / {len(y_test)} test pairs, chance MAP ≈ "
        f"{float(((np.bincount(y_test) / len(y_test)) ** 2).sum()):.4f}",
        file=sys.stderr,
    )
    rows = []
    for name in methods:
        method = make_method(name, {"device": device}, random_state=seed)
        started, cpu_started = time.perf_counter(), time.process_time()
        method.fit(audio_train, visual_train, y_train)
        fit_seconds = time.perf_counter() - started
        common = {
            "fit_s": fit_seconds,
            "fit_cpu_s": time.process_time() - cpu_started,
            "n_parameters": method.n_parameters(),
            "best_epoch": getattr(method, "best_epoch_", ""),
            "device": str(method.device_),
        }
        eval_seconds, maps = _evaluate(
            lambda m=method: m.similarity(audio_test, visual_test), y_test
        )
        label = f"{name} ({method.similarity_kind})"
        rows.append({"method": label, **common, "eval_s": eval_seconds, **maps})
        print(_format(rows[-1]), file=sys.stderr)
        if hasattr(method, "real_similarity"):
            eval_seconds, maps = _evaluate(
                lambda m=method: m.real_similarity(audio_test, visual_test), y_test
            )
            rows.append(
                {
                    "method": f"{name} (cosine, real-valued)",
                    **common,
                    "eval_s": eval_seconds,
                    **maps,
                }
            )
            print(_format(rows[-1]), file=sys.stderr)
    return rows


def _format(row: dict[str, object]) -> str:
    cells = []
    for column in COLUMNS:
        value = row[column]
        if column.startswith("map_"):
            cells.append(f"{value:.4f}")
        elif column.endswith("_s"):
            cells.append(f"{value:.1f}")
        else:
            cells.append(str(value))
    return "\t".join(cells)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("results/bench_adversarial.tsv"))
    args = parser.parse_args(argv)
    rows = run(args.methods, args.seed, args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(_format(row).split("\t"))
    print("\t".join(COLUMNS))
    for row in rows:
        print(_format(row))
    total = sum(row["fit_s"] for row in rows if "real-valued" not in str(row["method"]))
    print(f"# total fit seconds: {total:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()

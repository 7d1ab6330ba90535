"""Seconds per epoch and test MAP of `ours` trained in float32 against bfloat16 autocast
(``training_precision``), on the VEGAS-size feature stand-in (22,482 / 5,621 pairs), the same
seed, one thread, the two precisions alternating so that both see the same machine load.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_training_precision.py --epochs 3

bfloat16 pays off only on a CPU with bfloat16 units (AVX-512 BF16 or AMX) or on a GPU; the machine
line says which units this CPU has. Writes ``benchmarks/results/training_precision.tsv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from machine_info import load_average, machine_description, write_measurements


def cpu_bfloat16_units() -> str:
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    units = sorted({flag for flag in flags if flag in ("avx512_bf16", "amx_bf16", "amx_tile")})
    return ", ".join(units) if units else "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="fits per precision, alternating")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/training_precision.tsv"))
    args = parser.parse_args()

    from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
    from avcmr.evaluation.metrics import evaluate_scores
    from avcmr.methods.dual_subspace import DualSubspace

    torch.set_num_threads(1)
    audio, visual, labels, audio_test, visual_test, labels_test = split_arrays(make_synthetic_features(random_state=0))
    seconds, maps = {"float32": [], "bfloat16": []}, {}
    for _ in range(args.rounds):
        for precision in ("float32", "bfloat16"):
            model = DualSubspace(training_precision=precision, epochs=args.epochs, patience=None, device="cpu",
                                 random_state=0)
            model.fit(audio, visual, labels)
            seconds[precision] += model.epoch_seconds_
            per_query = evaluate_scores(model.similarity(audio_test, visual_test), labels_test, labels_test)
            maps[precision] = float((per_query["a2v"].mean() + per_query["v2a"].mean()) / 2)
            print(precision, [round(s, 1) for s in model.epoch_seconds_], round(maps[precision], 4), flush=True)
    rows = []
    for precision in ("float32", "bfloat16"):
        median = float(np.median(seconds[precision]))
        rows.append({"measure": f"ours epoch, {precision}", "value": f"{median:.2f}", "unit": "s",
                     "ratio": f"{np.median(seconds['float32']) / median:.2f}",
                     "note": f"test MAP after {args.epochs} epochs: {maps[precision]:.4f}", "load": load_average()})
    write_measurements(args.out, rows, [
        f"machine: {machine_description()}; bfloat16 units: {cpu_bfloat16_units()}; torch {torch.__version__}, "
        f"1 thread; `ours` defaults (Adam, batch 800), VEGAS-size stand-in, seed 0, {args.epochs} epochs x "
        f"{args.rounds} round(s), median epoch (validation included)",
        "ratio: float32 seconds / the row's seconds (same run); load: 1/5/15-min load averages",
    ])
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()

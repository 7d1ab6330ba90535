"""Seconds of `ours` fitting 3 seeds one after the other against the same seeds trained together
(``dual_subspace.fit_together``: one vmapped forward and backward over the seeds' stacked weights),
at the demo's size (240 training pairs, batches of 100) and at VEGAS size (the calibrated stand-in,
22,482 pairs, batches of 800), the two ways alternating so that both see the same machine load.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_seeds_together.py

On a GPU (``--device cuda``) it measures the case the option is for: a step there is bound by
kernel launches, which batching the seeds divides. Writes ``benchmarks/results/seeds_together.tsv``
(``--out`` for another machine), with the test MAP both ways and the largest relative difference of
a seed's test scores between them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from machine_info import load_average, machine_description, write_measurements

SIZES = {  # name: (training pairs, batch size, epochs)
    "demo": (240, 100, 30),
    "vegas": (None, 800, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/seeds_together.tsv"))
    args = parser.parse_args()

    from avcmr.data.calibrated_standin import make_calibrated_features
    from avcmr.data.synthetic_features import split_arrays
    from avcmr.evaluation.metrics import evaluate_scores
    from avcmr.methods.dual_subspace import DualSubspace, fit_together

    torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds))
    rows, load_before = [], load_average()
    for size in args.sizes:
        n_train, batch_size, epochs = SIZES[size]
        table = make_calibrated_features("vegas", random_state=0, n_train=n_train, n_test=None if n_train is None else 180)
        audio, visual, labels, audio_test, visual_test, labels_test = split_arrays(table)
        params = {"batch_size": batch_size, "epochs": epochs, "patience": None, "device": args.device}
        seconds, scores, maps = {}, {}, {}
        for way in ("apart", "together"):
            models = [DualSubspace(**params, random_state=seed) for seed in seeds]
            started = time.perf_counter()
            if way == "apart":
                for model in models:
                    model.fit(audio, visual, labels)
            else:
                fit_together(models, audio, visual, labels)
            seconds[way] = time.perf_counter() - started
            scores[way] = [model.similarity(audio_test, visual_test) for model in models]
            maps[way] = float(np.mean([evaluate_scores(score, labels_test, labels_test)[direction].mean()
                                       for score in scores[way] for direction in ("a2v", "v2a")]))  # fmt: skip
            print(size, way, f"{seconds[way]:.1f} s, MAP {maps[way]:.4f}", flush=True)
        difference = max(float(np.linalg.norm(t - a) / np.linalg.norm(a))
                         for t, a in zip(scores["together"], scores["apart"], strict=True))  # fmt: skip
        for way in ("apart", "together"):
            rows.append({"size": size, "n_train": len(labels), "batch_size": batch_size, "epochs": epochs,
                         "seeds": args.seeds, "way": way, "seconds": f"{seconds[way]:.1f}",
                         "test_map_mean": f"{maps[way]:.4f}",
                         "speedup": f"{seconds['apart'] / seconds[way]:.2f}",
                         "max_score_difference": f"{difference:.1e}" if way == "together" else ""})  # fmt: skip
    write_measurements(args.out, rows, [
        f"machine: {machine_description()}; torch {torch.__version__}, {args.threads} thread(s), device {args.device}",
        f"load before: {load_before}, after: {load_average()}",
        "`ours` (Adam, validation every epoch), calibrated VEGAS stand-in; speedup: apart seconds / the row's; "
        "max_score_difference: largest relative difference of a seed's test scores between the two ways (rounding "
        "differences grow over the steps, Adam's most: it divides tiny gradients by their tiny scale); "
        "test_map_mean: over seeds and both directions",
    ])  # fmt: skip


if __name__ == "__main__":
    main()

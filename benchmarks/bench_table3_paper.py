"""Table 3 at VEGAS size under the `paper` budget: each model's training minutes, measured or
projected from measured epochs, beside the paper's GPU minutes.

On the calibrated VEGAS stand-in (``avcmr.data.calibrated_standin``, 22,482 training pairs), one
seed, each of the 16 models of Tables 2 + 4 is built as the workflow builds it (``budget: paper``):

- closed-form models (random, CCA, KCCA, C-CCA) are fitted to the end: measured;
- an iterative model is fitted for 1 and then 2 epochs of its paper schedule (everything else as
  the schedule says: optimiser, batches, the validation split), and its E-epoch schedule projected
  as t₁ + (t₂ − t₁)·(E − 1): start-up once, then E − 1 more epochs. Models that validate only
  every ``validation_interval`` epochs (the dual-subspace family: every 10th) validated at the
  end of both short fits, so t₂ − t₁ is an epoch without validation; the projection adds
  (E / interval − 1) validations at the seconds one took (epoch 2 minus epoch 1 of the 2-epoch
  fit). Patience is off in the paper schedules, so every epoch runs.

The dual-subspace family runs in float32 and, where the CPU has bf16 units or on a GPU, in bfloat16
too (``training_precision``). Seeds: one (``fit_together`` batching of seeds does not pay on a CPU:
``bench_seeds_together.py``).

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_table3_paper.py
    # on a GPU:  ... bench_table3_paper.py --device cuda

Writes ``benchmarks/results/table3_paper_<device>.tsv`` (``--out``) and prints the rows as they come.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from bench_training_precision import cpu_bfloat16_units
from machine_info import load_average, machine_description, write_measurements

from avcmr.data.calibrated_standin import make_calibrated_features
from avcmr.data.synthetic_features import split_arrays
from avcmr.methods.budgets import PAPER_SCHEDULES, budgeted_method
from avcmr.reporting.paper_numbers import TABLE3_MINUTES

MODELS = ["random", "cca", "kcca", "c_cca", "dcca", "c_dcca", "ugach", "agah", "ucal", "acmr", "dscmr", "tnn_c_cca",
          "explicit", "implicit", "ex_im_share", "ours"]  # fmt: skip
DUAL_SUBSPACE = ("ours", "explicit", "implicit", "ex_im_share")
CPU_ONLY = ("random", "cca", "kcca", "c_cca")


def timed_fit(name: str, params: dict, data) -> tuple[float, object]:
    audio, visual, labels = data
    model, _ = budgeted_method(name, params, len(labels), random_state=0)
    started = time.perf_counter()
    model.fit(audio, visual, labels)
    return time.perf_counter() - started, model


def measure(name: str, device: str, precision: str, data) -> dict:
    """Minutes of the paper schedule and how they were obtained."""
    params = {"budget": "paper"}
    if name not in CPU_ONLY:
        params["device"] = device
    if precision != "float32":
        params["training_precision"] = precision
    schedule = PAPER_SCHEDULES.get(name)
    if schedule is None:
        seconds, _ = timed_fit(name, params, data)
        return {"minutes": seconds / 60, "how": "measured (closed form)", "epoch_s": ""}
    epochs = int(schedule["epochs"])
    one, _ = timed_fit(name, {**params, "epochs": 1}, data)
    two, model = timed_fit(name, {**params, "epochs": 2}, data)
    epoch = max(two - one, 0.0)
    projected = one + epoch * (epochs - 1)
    how = f"projected: t1 {one:.1f} s + {epochs - 1} x {epoch:.1f} s"
    interval = int(getattr(model, "validation_interval", 1) or 1)
    if interval > 1 and len(getattr(model, "epoch_seconds_", [])) == 2:
        validation = max(model.epoch_seconds_[1] - model.epoch_seconds_[0], 0.0)
        projected += validation * (epochs // interval - 1)
        how += f" + {epochs // interval - 1} validations x {validation:.1f} s"
    return {"minutes": projected / 60, "how": how, "epoch_s": f"{epoch:.2f}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("methods", nargs="*", default=MODELS, help=f"some of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.methods) - set(MODELS)):
        parser.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    out = args.out or Path(f"benchmarks/results/table3_paper_{args.device}.tsv")
    bf16 = args.device != "cpu" or cpu_bfloat16_units() != "none"
    audio, visual, labels, *_ = split_arrays(make_calibrated_features("vegas", random_state=0))
    data = (audio, visual, labels)
    machine, load_before, started = machine_description(), load_average(), time.perf_counter()
    print(f"# {len(labels)} training pairs; {machine}; bf16 units: {cpu_bfloat16_units()}", flush=True)
    rows = []
    for name in args.methods:
        precisions = ("float32", "bfloat16") if name in DUAL_SUBSPACE and bf16 else ("float32",)
        for precision in precisions:
            result = measure(name, args.device, precision, data)
            paper = TABLE3_MINUTES["vegas"].get(name)
            row = {"method": name, "minutes": f"{result['minutes']:.2f}",
                   "paper_gpu_minutes": "" if paper is None else f"{paper:.2f}",
                   "epochs": PAPER_SCHEDULES.get(name, {}).get("epochs", "closed-form"), "epoch_s": result["epoch_s"],
                   "device": "cpu" if name in CPU_ONLY else args.device, "precision": precision,
                   "seeds_together": 1, "how": result["how"], "load_1min": load_average().split("/")[0]}  # fmt: skip
            rows.append(row)
            print("\t".join(str(value) for value in row.values()), flush=True)
    totals = {}
    for precision in ("float32", "bfloat16"):  # one row per model: its fastest precision, or float32 only
        best = {}
        for row in rows:
            if row["precision"] in ("float32", precision):
                best[row["method"]] = min(best.get(row["method"], float("inf")), float(row["minutes"]))
        totals[precision] = sum(best.values())
    write_measurements(out, rows, [
        f"machine: {machine}; bf16 units: {cpu_bfloat16_units()}; torch {torch.__version__}, {args.threads} thread(s)",
        f"load before: {load_before}, after: {load_average()}; this run {(time.perf_counter() - started) / 60:.1f} min",
        f"calibrated VEGAS stand-in, {len(labels)} training pairs, seed 0, `paper` budget; "
        f"all {len(set(r['method'] for r in rows))} models x 1 seed: {totals['float32'] / 60:.2f} h in float32"
        + (f", {totals['bfloat16'] / 60:.2f} h with the dual-subspace family in bfloat16" if bf16 else ""),
        "paper_gpu_minutes: the paper's Table 3 (VEGAS, GPU); how: measured, or projected from 1- and 2-epoch fits",
    ])  # fmt: skip
    print(f"# wrote {out}; totals (hours): " + ", ".join(f"{k} {v / 60:.2f}" for k, v in totals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

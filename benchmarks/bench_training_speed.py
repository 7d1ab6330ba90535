"""Seconds per epoch of the paper's model against a bare forward/backward loop of the same nets.

At VEGAS scale (22,482 training pairs of the feature-level stand-in, batches of 800), in one run:

- ``bare``: the four MLPs of `ours` (128→1024→1024→{10, C}, 1024→1024→2048→{10, C}), Adam, the
  same shuffled batches, and a trivial loss (mean of the squared outputs): the arithmetic floor;
- ``ours``: ``DualSubspace.fit`` with the same batches and optimiser: the paper's losses (L_corr's
  float64 10×10 algebra, L_dis, L_cons per modality), the per-epoch gradient-norm probe and the
  per-epoch validation (head fitted on 2,048 pairs, MAP on the held-out pairs).

The ratio ``ours / bare`` of median seconds per epoch is the figure of merit (issue target ≤ 1.3).
Writes a TSV with the machine, the torch thread count and the load average.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_training_speed.py
    PYTHONPATH=src .venv/bin/python benchmarks/bench_training_speed.py --device cuda --paper-budget
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine_info import machine_description

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
from avcmr.methods import losses
from avcmr.methods.budgets import PAPER_SCHEDULES
from avcmr.methods.dual_subspace import DualSubspace, SeparateNets
from avcmr.methods.torch_utils import minibatches, pick_device, seed_everything, to_tensor


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per variant")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--paper-budget", action="store_true",
                        help="also time the paper budget's whole run (SGD, 1,000 epochs) of `ours`")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/training_speed.tsv"), help="TSV to write")
    return parser.parse_args(argv)


def bare_epochs(audio, visual, n_classes: int, epochs: int, device) -> list[float]:
    generator = seed_everything(0)
    networks = torch.nn.ModuleDict({
        "audio": SeparateNets(audio.shape[1], (1024, 1024), 10, n_classes, "relu"),
        "visual": SeparateNets(visual.shape[1], (1024, 2048), 10, n_classes, "relu"),
    }).to(device)  # fmt: skip
    optimizer = torch.optim.Adam(networks.parameters(), lr=1e-3)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for batch in minibatches(len(audio), 800, generator):
            batch = batch.to(device)
            outputs = [*networks["audio"](audio[batch]), *networks["visual"](visual[batch])]
            loss = sum(output.square().mean() for output in outputs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return seconds


def device_algebra_variant(audio, visual, labels, epochs: int, device) -> dict:
    """`ours` with L_corr's o×o algebra left on the accelerator (losses.SMALL_ALGEBRA_ON_HOST off),
    and the largest difference between the two placements' correlations and gradients."""
    generator = torch.Generator().manual_seed(0)
    h_a = torch.randn(800, 10, generator=generator, dtype=torch.float64).to(device).requires_grad_()
    h_v = (h_a.detach() + torch.randn(800, 10, generator=generator, dtype=torch.float64).to(device)).requires_grad_()
    results = []
    for on_host in (True, False):
        losses.SMALL_ALGEBRA_ON_HOST = on_host
        correlations = losses.canonical_correlations(h_a, h_v)
        gradients = torch.autograd.grad(correlations.sum(), (h_a, h_v))
        results.append([correlations.detach().cpu(), *(g.cpu() for g in gradients)])
    difference = max(float((a - b).abs().max()) for a, b in zip(*results, strict=True))
    try:
        losses.SMALL_ALGEBRA_ON_HOST = False
        model = DualSubspace(epochs=epochs, patience=None, device=str(device), random_state=0).fit(audio, visual, labels)
    finally:
        losses.SMALL_ALGEBRA_ON_HOST = True
    print(f"# L_corr algebra host vs device: max |difference| of correlations and gradients {difference:.2e}")
    return {"variant": "ours, L_corr algebra on the device", "epochs": epochs,
            "sec_per_epoch": statistics.median(model.epoch_seconds_), "host_device_max_difference": difference}


def main(argv=None) -> int:
    args = parse_arguments(argv)
    device = pick_device(args.device)
    table = make_synthetic_features(random_state=0)
    audio, visual, labels, *_ = split_arrays(table)
    n_classes = len(np.unique(labels))
    # The bare loop trains on as many pairs as `ours` keeps for gradient steps (90 %).
    n_fit = len(audio) - round(0.1 * len(audio))
    bare = bare_epochs(to_tensor(audio[:n_fit], device), to_tensor(visual[:n_fit], device), n_classes, args.epochs, device)
    model = DualSubspace(epochs=args.epochs, patience=None, device=str(device), random_state=0)
    model.fit(audio, visual, labels)
    rows = [
        {"variant": "bare", "epochs": args.epochs, "sec_per_epoch": statistics.median(bare)},
        {"variant": "ours", "epochs": args.epochs, "sec_per_epoch": statistics.median(model.epoch_seconds_)},
    ]
    # The paper budget's per-epoch cost: SGD, validation every 10th epoch.
    schedule = {**PAPER_SCHEDULES["ours"], "epochs": args.epochs}
    paper_epochs = DualSubspace(**schedule, device=str(device), random_state=0).fit(audio, visual, labels).epoch_seconds_
    rows.append({"variant": "ours, paper schedule (SGD, validation every 10 epochs)", "epochs": args.epochs,
                 "sec_per_epoch": statistics.median(paper_epochs)})  # fmt: skip
    if device.type != "cpu":
        rows.append(device_algebra_variant(audio, visual, labels, args.epochs, device))
    ratio = rows[1]["sec_per_epoch"] / rows[0]["sec_per_epoch"]
    for row in rows:
        row.update(ratio_to_bare=row["sec_per_epoch"] / rows[0]["sec_per_epoch"], device=str(device),
                   threads=torch.get_num_threads(), load_1min=os.getloadavg()[0], machine=machine_description())  # fmt: skip
    if args.paper_budget:
        started = time.perf_counter()
        paper = DualSubspace(**PAPER_SCHEDULES["ours"], device=str(device), random_state=0).fit(audio, visual, labels)
        minutes = (time.perf_counter() - started) / 60
        rows.append({"variant": "ours, paper budget (SGD, 1,000 epochs)", "epochs": len(paper.history_),
                     "sec_per_epoch": minutes * 60 / len(paper.history_), "ratio_to_bare": float("nan"),
                     "device": str(device), "threads": torch.get_num_threads(), "load_1min": os.getloadavg()[0],
                     "machine": machine_description(), "paper_minutes": 8.36, "minutes": minutes})  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    columns = ["variant", "epochs", "sec_per_epoch", "ratio_to_bare", "minutes", "paper_minutes", "device",
               "threads", "load_1min", "machine", "host_device_max_difference"]  # fmt: skip
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t", restval="")
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    print(f"# ours / bare = {ratio:.2f} (target ≤ 1.3); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

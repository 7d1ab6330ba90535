"""Milliseconds of one optimiser step over the dual-subspace model's parameters (four nets, 8.7 M
weights at VEGAS's 10 classes) with torch's per-tensor loop (the default on CPU), ``foreach`` and
the fused kernel that ``avcmr.methods.torch_utils.make_optimizer`` picks, for Adam (the `quick`
budget) and SGD with momentum (the `paper` budget); one thread, the same run, best of the rounds.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_fused_optimizers.py

Also checks that the fused step gives the same parameters as the loop (to float rounding).
Writes ``benchmarks/results/fused_optimizers.tsv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from machine_info import load_average, machine_description, write_measurements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fused_optimizers.tsv"))
    args = parser.parse_args()

    from avcmr.methods.dual_subspace import DualSubspace

    torch.set_num_threads(1)
    torch.manual_seed(0)
    networks = DualSubspace()._build_networks(128, 1024, 10)
    template = [parameter.detach().clone() for parameter in networks.parameters()]
    gradients = [torch.randn_like(parameter) for parameter in template]
    n_weights = sum(parameter.numel() for parameter in template)
    settings = {"Adam": (torch.optim.Adam, {"lr": 1e-3}), "SGD": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})}
    rows = []
    for name, (optimizer_class, options) in settings.items():
        results, best = {}, {}
        for mode in ("loop", "foreach", "fused"):
            parameters = [torch.nn.Parameter(value.clone()) for value in template]
            for parameter, gradient in zip(parameters, gradients, strict=True):
                parameter.grad = gradient
            extra = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[mode]
            optimizer = optimizer_class(parameters, **options, **extra)
            optimizer.step()  # state allocated outside the timing
            best[mode] = float("inf")
            for _ in range(args.repeats):
                started = time.perf_counter()
                for _ in range(args.steps):
                    optimizer.step()
                best[mode] = min(best[mode], (time.perf_counter() - started) / args.steps)
            results[mode] = torch.cat([parameter.detach().flatten() for parameter in parameters])
        largest_difference = float((results["fused"] - results["loop"]).abs().max())
        assert largest_difference < 1e-4, largest_difference
        for mode in ("loop", "foreach", "fused"):
            rows.append({"measure": f"{name} step, {mode}", "value": f"{1000 * best[mode]:.1f}", "unit": "ms",
                         "ratio": f"{best['loop'] / best[mode]:.2f}",
                         "note": f"{n_weights:,} weights; fused − loop after {1 + args.repeats * args.steps} steps: "
                                 f"max |Δ| {largest_difference:.1e}", "load": load_average()})
            print(rows[-1], flush=True)
    machine = machine_description()
    write_measurements(args.out, rows, [
        f"machine: {machine}; torch {torch.__version__}, 1 thread; best of {args.repeats} rounds of {args.steps} steps",
        "ratio: ms of the loop / ms of the row (same run); load: 1/5/15-min load averages",
    ])
    print(f"machine: {machine}; wrote {args.out}")


if __name__ == "__main__":
    main()

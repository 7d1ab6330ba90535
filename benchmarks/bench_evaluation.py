"""Blocked evaluation (``avcmr.evaluation.metrics``): MAP + P@K at VEGAS size and peak memory at
50,000².

1. 5,621 × 5,621 (VEGAS's test set), both directions, AP + P@K (K = 10 … 1000), from 64-D test
   embeddings: seconds of the blocked evaluation (scores computed per block of queries) against a
   plain numpy implementation in the same run (full cosine matrix, ``argsort`` per row, cumulative
   hits), and the largest AP / P@K difference between the two (continuous scores: no ties).
2. 50,000 × 50,000 (beyond VGGSound's 15,446 test clips), both directions, AP + P@K, run in a
   fresh subprocess: peak resident memory (``VmHWM``) and the peak of Python-tracked
   allocations (``tracemalloc``; numpy reports its buffers there), against a 2 GB budget.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_evaluation.py

Writes ``benchmarks/results/evaluation.tsv`` with the machine (CPU model, cores) and the load
average before and after each measurement (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine_info import load_average, machine_description, write_measurements

from avcmr.evaluation.metrics import DEFAULT_SCOPES, EmbeddingScores, evaluate_source


def test_embeddings(n: int, n_classes: int, dim: int = 64, seed: int = 0):
    """Class-structured embeddings (class centre + noise) so that MAP is neither 0 nor 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centres = rng.normal(size=(n_classes, dim))
    audio = (centres[labels] + 1.5 * rng.normal(size=(n, dim))).astype(np.float32)
    visual = (centres[labels] + 1.5 * rng.normal(size=(n, dim))).astype(np.float32)
    return audio, visual, labels


def plain_numpy(audio, visual, labels, scopes):
    """The textbook implementation: full score matrix, argsort per row, cumulative hits."""
    unit_a = audio / np.linalg.norm(audio, axis=1, keepdims=True)
    unit_v = visual / np.linalg.norm(visual, axis=1, keepdims=True)
    scores = unit_a.astype(np.float64) @ unit_v.T.astype(np.float64)
    results = {}
    for direction, matrix in (("a2v", scores), ("v2a", scores.T)):
        order = np.argsort(-matrix, axis=1)
        hits = labels[order] == labels[:, None]
        hits_so_far = np.cumsum(hits, axis=1)
        ranks = np.arange(1, matrix.shape[1] + 1)
        results[direction] = (hits_so_far / ranks * hits).sum(axis=1) / hits.sum(axis=1)
        results[f"{direction}_precision"] = hits_so_far[:, scopes - 1] / scopes
    return results


def timed(function, repeats: int):
    function()  # warm-up (thread pool, page faults)
    best, result = np.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ``getrusage``'s ru_maxrss: Linux carries that
    over an exec from the forked parent, whose own peak would be reported instead."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_child(n: int, n_classes: int, threads: int) -> None:
    import tracemalloc

    audio, visual, labels = test_embeddings(n, n_classes)
    scopes = np.asarray(DEFAULT_SCOPES)
    tracemalloc.start()
    started = time.perf_counter()
    results = evaluate_source(EmbeddingScores(audio, visual), labels, labels, 0, scopes, n_threads=threads)
    seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({
        "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
        "traced_peak_mb": traced_peak / 2**20,
        "map_a2v": float(results["a2v"].mean()), "map_v2a": float(results["v2a"].mean()),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5621, help="test clips of the speed comparison")
    parser.add_argument("--n-large", type=int, default=50_000, help="test clips of the memory run (0: skip)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--classes-large", type=int, default=309)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/evaluation.tsv"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        peak_memory_child(args.n_large, args.classes_large, args.threads)
        return

    machine = machine_description()
    rows = []
    audio, visual, labels = test_embeddings(args.n, args.classes)
    scopes = np.asarray(DEFAULT_SCOPES)
    load_before = load_average()
    blocked_s, blocked = timed(lambda: evaluate_source(EmbeddingScores(audio, visual), labels, labels, 0, scopes,
                                                       n_threads=args.threads), args.repeats)
    plain_s, plain = timed(lambda: plain_numpy(audio, visual, labels, scopes), args.repeats)
    load_after = load_average()
    ap_difference = max(np.abs(blocked[d] - plain[d]).max() for d in ("a2v", "v2a"))
    precision_difference = max(np.abs(blocked[f"{d}_precision"] - plain[f"{d}_precision"]).max() for d in ("a2v", "v2a"))
    rows.append({
        "measure": f"map_pk_{args.n}x{args.n}", "blocked_s": f"{blocked_s:.3f}", "plain_numpy_s": f"{plain_s:.3f}",
        "speedup": f"{plain_s / blocked_s:.2f}", "peak_rss_mb": "", "traced_peak_mb": "",
        "max_ap_difference": f"{ap_difference:.2e}", "max_precision_difference": f"{precision_difference:.2e}",
        "map": f"{(blocked['a2v'].mean() + blocked['v2a'].mean()) / 2:.4f}",
        "threads": args.threads, "load_before": load_before, "load_after": load_after,
    })
    print(rows[-1], flush=True)
    if args.n_large:
        load_before = load_average()
        child = subprocess.run(
            [sys.executable, __file__, "--child", "--n-large", str(args.n_large), "--classes-large",
             str(args.classes_large), "--threads", str(args.threads)],
            check=True, capture_output=True, text=True,
        )
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append({
            "measure": f"map_pk_{args.n_large}x{args.n_large}", "blocked_s": f"{measured['seconds']:.1f}",
            "plain_numpy_s": "", "speedup": "", "peak_rss_mb": f"{measured['peak_rss_mb']:.0f}",
            "traced_peak_mb": f"{measured['traced_peak_mb']:.0f}", "max_ap_difference": "",
            "max_precision_difference": "",
            "map": f"{(measured['map_a2v'] + measured['map_v2a']) / 2:.4f}",
            "threads": args.threads, "load_before": load_before, "load_after": load_average(),
        })
        print(rows[-1], flush=True)
    write_measurements(args.out, rows, [
        f"machine: {machine}; numpy {np.__version__}; python {platform.python_version()}",
        "load: 1/5/15-min load averages (os.getloadavg) before and after each measurement",
    ])
    print(f"machine: {machine}; wrote {args.out}")


if __name__ == "__main__":
    main()

"""Seconds for `snakemake -n` of the whole VGGSound DAG (default targets of config/vggsound.yaml) on a
generated vggsound.csv of VGGSound's size: 183,730 train + 15,446 test clips, 309 classes.

    .venv/bin/python benchmarks/bench_vggsound_dag.py --out benchmarks/results/vggsound_dag.tsv

The list is read when the workflow starts (the shards must be known to build the DAG), so this
measures the parse of ≈ 200k lines plus a DAG of ≈ 400 shards × 5 stages and the training jobs.
Also timed in the same run: reading the list alone (avcmr.data.manifests.dataset_listing). Writes
one TSV row per repeat with the machine and its load: wall seconds, and the CPU seconds of the
snakemake process (single-threaded: its wall time on an otherwise idle core).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from machine_info import machine_description

REPO = Path(__file__).resolve().parents[1]
ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


def write_vggsound_csv(path: Path, n_train: int, n_test: int, n_classes: int, seed: int = 0) -> None:
    """A list in vggsound.csv's format (no header; youtube_id,start_seconds,label,split), labels with
    commas quoted as in the real file."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    ids = ["".join(chars) for chars in ID_ALPHABET[rng.integers(0, len(ID_ALPHABET), (n, 11))]]
    labels = [f"sound {i}, variant {i % 7}" if i % 5 == 0 else f"sound {i}" for i in range(n_classes)]
    frame = pd.DataFrame({
        "youtube_id": ids,
        "start_seconds": rng.integers(0, 600, n),
        "label": np.array(labels, dtype=object)[rng.integers(0, n_classes, n)],
        "split": ["train"] * n_train + ["test"] * n_test,
    })
    frame.to_csv(path, header=False, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=183_730)
    parser.add_argument("--test", type=int, default=15_446)
    parser.add_argument("--classes", type=int, default=309)
    parser.add_argument("--shard-size", type=int, default=None, help="default: config/vggsound.yaml's")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/vggsound_dag.tsv")
    args = parser.parse_args()

    from avcmr.config import dataset_settings, deep_merge
    from avcmr.data.manifests import dataset_listing

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        manifest = work / "vggsound.csv"
        write_vggsound_csv(manifest, args.train, args.test, args.classes)
        config = deep_merge(yaml.safe_load((REPO / "config/config.yaml").read_text()),
                            yaml.safe_load((REPO / "config/vggsound.yaml").read_text()))
        config["datasets"]["vggsound"]["manifest"] = str(manifest)
        if args.shard_size:
            config["datasets"]["vggsound"].setdefault("features", {})["shard_size"] = args.shard_size
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        spec = dataset_settings(config, "vggsound")
        # Plain `snakemake -n`, as a user runs it (every job printed; output captured).
        command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n",
                   "--directory", str(work), "--configfile", str(work / "config.yaml")]
        for repeat in range(args.repeats):
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            listing = dataset_listing(spec, manifest)
            listing_s = time.perf_counter() - started
            started, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
            dry_run_s = time.perf_counter() - started
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            # CPU seconds of the snakemake process: what the wall time is on an idle core.
            dry_run_cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
            if result.returncode != 0:
                sys.exit(f"snakemake -n failed:\n{result.stderr[-3000:]}")
            totals = re.findall(r"^total\s+(\d+)$", result.stdout + result.stderr, flags=re.MULTILINE)
            shard_size = spec["features"]["shard_size"]
            row = {
                "date": time.strftime("%Y-%m-%d %H:%M:%S"), "repeat": repeat, "clips": len(listing.clips),
                "train": int((listing.clips["split"] == "train").sum()), "classes": listing.clips["label"].nunique(),
                "shard_size": shard_size, "shards": -(-len(listing.clips) // shard_size),
                "jobs": int(totals[-1]) if totals else -1, "listing_s": round(listing_s, 2),
                "dry_run_s": round(dry_run_s, 2), "dry_run_cpu_s": round(dry_run_cpu_s, 2), "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2), "machine": machine_description(),
            }
            print("\t".join(f"{k}={v}" for k, v in row.items()), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, sep="\t", index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

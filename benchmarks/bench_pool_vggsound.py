"""The visual PCA and pooling stages at VGGSound's size, then Tables 2 + 4 on what they pooled.

1. Per-frame feature shards in the workflow's layout (``vggish/shard*.parquet``: ``clip_id, second,
   audio_128``; ``inception/shard*.parquet``: ``clip_id, second, visual_2048``; 500 clips a shard as
   config/vggsound.yaml) and ``split.parquet``, made from the feature-level stand-in
   (``avcmr.data.synthetic_features``, VGGSound's 183,154 train / 15,446 test clips, 309 classes):
   each clip's 1,024-D visual vector is lifted into 2,048-D frames by a fixed orthonormal map plus
   per-frame noise, its 128-D audio vector repeated over its patches plus noise, so that PCA and the
   frame mean have real structure to recover.
2. ``avcmr.stages.fit_visual_pca`` (fit on the training clips' frames only) and
   ``avcmr.stages.pool_features``, each in a fresh process as its workflow job would run: wall
   seconds and peak resident memory (VmHWM) against the memory the workflow declares for them
   (``avcmr.resources``).
3. With ``--tables``: ``bench_tables.py --features <pooled features.parquet>`` — the 16 models of
   Tables 2 + 4 under the ``quick`` budget on the pooled features (≈ 40 min on 2 cores).

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_pool_vggsound.py \
        --work-dir /tmp/pool_vggsound --frames-per-clip 4 --tables

VGGSound clips are 10 s, i.e. 10 frames at 1 fps (≈ 16 GB of 2,048-D float32 frames for 198,600
clips); ``--frames-per-clip`` lowers that where the disk is short, and the TSV says what was run.
The shards are deleted at the end unless ``--keep-shards``. Writes
``benchmarks/results/pool_vggsound.tsv`` (machine and load in its rows).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from machine_info import load_average, machine_description, write_measurements

from avcmr import resources
from avcmr.data.synthetic_features import make_synthetic_features
from avcmr.io import schemas
from avcmr.io.parquet import vector_column, write_table

REPO = Path(__file__).resolve().parents[1]
PROVENANCE = {"dataset": "vggsound_size", "config_hash": "bench-pool", "random_weights": False,
              "backbone_weights": {"features": "synthetic feature-level stand-in, lifted to frames"}}  # fmt: skip
PATCHES_PER_CLIP = 10  # VGGish patches of a 10-s clip
FRAME_NOISE = 0.5  # per-frame noise, × the clip vectors' per-dimension standard deviation


def write_shards(work: Path, args) -> tuple[list[str], list[str], str]:
    """The per-frame shards and split table; returns (audio paths, visual paths, split path)."""
    clips = make_synthetic_features(n_clips=args.n_clips, n_classes=args.n_classes, train_size=args.train_size,
                                    random_state=args.seed)  # fmt: skip
    audio, visual = np.stack(clips["audio"]), np.stack(clips["visual"])
    rng = np.random.default_rng(args.seed + 1)
    lift, _ = np.linalg.qr(rng.standard_normal((2048, visual.shape[1])))  # orthonormal columns
    lift = lift.astype(np.float32)
    audio_noise = FRAME_NOISE * audio.std(axis=0)
    visual_noise = FRAME_NOISE * float(visual.std())
    clip_ids = clips["clip_id"].to_numpy()
    audio_paths, visual_paths = [], []
    for folder in ("vggish", "inception"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    for shard, start in enumerate(range(0, args.n_clips, args.shard_size)):
        rows = slice(start, start + args.shard_size)
        ids = clip_ids[rows]
        for folder, column, repeats, make in (
            ("vggish", "audio_128", PATCHES_PER_CLIP,
             lambda n, r=rows: np.repeat(audio[r], PATCHES_PER_CLIP, axis=0)
             + audio_noise * rng.standard_normal((n, audio.shape[1]), dtype=np.float32)),
            ("inception", "visual_2048", args.frames_per_clip,
             lambda n, r=rows: np.repeat(visual[r] @ lift.T, args.frames_per_clip, axis=0)
             + visual_noise * rng.standard_normal((n, 2048), dtype=np.float32)),
        ):  # fmt: skip
            n_rows = len(ids) * repeats
            vectors = make(n_rows).astype(np.float32)
            table = pa.table({"clip_id": np.repeat(ids, repeats).tolist(),
                              "second": np.tile(np.arange(repeats, dtype=np.int32), len(ids)),
                              column: vector_column(vectors)})  # fmt: skip
            path = work / folder / f"shard{shard}.parquet"
            write_table(table, path, schemas.frame_vectors(column, vectors.shape[1]), PROVENANCE)
            (audio_paths if folder == "vggish" else visual_paths).append(str(path))
    split_path = work / "split.parquet"
    labels = [f"class_{label}" for label in clips["label"]]
    write_table(pa.table({"clip_id": clip_ids.tolist(), "label": labels, "split": clips["split"].tolist()}),
                split_path, schemas.SPLIT, PROVENANCE)  # fmt: skip
    return audio_paths, visual_paths, str(split_path)


def run_measured(code: str) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of ``code`` in a fresh interpreter."""
    probe = code + (
        "\nfor line in open('/proc/self/status'):\n"
        "    if line.startswith('VmHWM:'):\n"
        "        print('VmHWM', int(line.split()[1]) / 1024)\n"
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return seconds, float(result.stdout.split("VmHWM")[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-clips", type=int, default=198_600)
    parser.add_argument("--train-size", type=int, default=183_154)
    parser.add_argument("--n-classes", type=int, default=309)
    parser.add_argument("--frames-per-clip", type=int, default=10)
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--pca-dim", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--keep-shards", action="store_true")
    parser.add_argument("--reuse-shards", action="store_true", help="use the shards a --keep-shards run left")
    parser.add_argument("--tables", action="store_true", help="then Tables 2 + 4 (bench_tables.py) on the pooled features")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/pool_vggsound.tsv")
    args = parser.parse_args()

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    common = {"clips": args.n_clips, "train": args.train_size, "classes": args.n_classes,
              "frames_per_clip": args.frames_per_clip, "patches_per_clip": PATCHES_PER_CLIP,
              "shard_size": args.shard_size}  # fmt: skip
    before = load_average()
    started = time.perf_counter()
    n_shards = -(-args.n_clips // args.shard_size)
    audio_paths = [str(work / "vggish" / f"shard{shard}.parquet") for shard in range(n_shards)]
    visual_paths = [str(work / "inception" / f"shard{shard}.parquet") for shard in range(n_shards)]
    split_path = str(work / "split.parquet")
    reused = args.reuse_shards and all(Path(p).is_file() for p in [*audio_paths, *visual_paths, split_path])
    if not reused:
        audio_paths, visual_paths, split_path = write_shards(work, args)
    size_gb = sum(Path(p).stat().st_size for p in audio_paths + visual_paths) / 1e9
    rows.append({"stage": "write_shards", **common, "seconds": round(time.perf_counter() - started, 1),
                 "peak_rss_mb": "", "declared_mb": "",
                 "note": f"{len(visual_paths)} shards × 2, {size_gb:.1f} GB" + (", reused" if reused else ""),
                 "load_before": before, "load_after": load_average()})  # fmt: skip
    print(rows[-1], flush=True)
    pca_path, features_path = work / "visual_pca.parquet", work / "features.parquet"
    stages = [
        ("visual_pca",
         f"from avcmr.stages import fit_visual_pca\n"
         f"fit_visual_pca({visual_paths!r}, {split_path!r}, {str(pca_path)!r}, {args.pca_dim}, False, {PROVENANCE!r})",
         resources.visual_pca_mem_mb(args.n_clips, args.shard_size, args.frames_per_clip)),
        ("pool",
         f"from avcmr.stages import pool_features\n"
         f"pool_features({audio_paths!r}, {visual_paths!r}, {str(pca_path)!r}, {split_path!r}, "
         f"{str(features_path)!r}, {PROVENANCE!r})",
         resources.pool_mem_mb(args.n_clips, args.shard_size, max(args.frames_per_clip, PATCHES_PER_CLIP),
                               args.pca_dim)),
    ]  # fmt: skip
    for stage, code, declared in stages:
        before = load_average()
        seconds, peak = run_measured(code)
        rows.append({"stage": stage, **common, "seconds": round(seconds, 1), "peak_rss_mb": round(peak),
                     "declared_mb": declared, "note": "fresh process, as its workflow job",
                     "load_before": before, "load_after": load_average()})  # fmt: skip
        print(rows[-1], flush=True)
    if not args.keep_shards:
        for folder in ("vggish", "inception"):
            shutil.rmtree(work / folder)
    write_measurements(args.out, rows, [f"machine: {machine_description()}",
                                        "load: 1/5/15-min load averages before and after each stage"])
    print(f"wrote {args.out}; pooled features: {features_path}", flush=True)
    if args.tables:
        command = [sys.executable, str(REPO / "benchmarks/bench_tables.py"), "--features", str(features_path),
                   "--paper-reference", "none", "--keep-going", "--out-dir", str(work / "tables")]
        print(json.dumps(command), flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()

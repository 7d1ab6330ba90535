"""Clips/s of the decode stage's per-clip work: ffprobe then one decoding ffmpeg (before) against
one decoding ffmpeg whose own description of its input gives the duration and the streams
(``avcmr.media.ffmpeg_io.decode_usable_clip``), on real synthetic clips of the demo's durations
(2–10 s, H.264 + AAC), in the same run, rounds interleaved; the best round of each.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_decode.py

Also checks that both give the same frames and waveforms, and durations within ffmpeg's printed
centiseconds. Writes ``benchmarks/results/decode.tsv`` with the machine and the load averages.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_info import load_average, machine_description, write_measurements


def probe_then_decode(path: str):
    """What the decode stage ran per clip before: ffprobe, the stream checks, then ffmpeg."""
    from avcmr.media.ffmpeg_io import MediaError, decode_clip, probe

    info = probe(path)
    if not (info.has_video and info.has_audio):
        raise MediaError("a stream is missing")
    frames, waveform = decode_clip(path)
    return frames, waveform, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decode.tsv"))
    args = parser.parse_args()

    from avcmr.data.synthetic import SyntheticSpec, plan_clips, write_clips
    from avcmr.media.ffmpeg_io import decode_usable_clip, ffmpeg_version

    modes = {"probe_then_decode": probe_then_decode, "decode_usable_clip": decode_usable_clip}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        spec = SyntheticSpec(n_classes=10, n_clips=args.clips, min_duration_s=2, max_duration_s=10, seed=0)
        paths = write_clips(plan_clips(spec), spec, folder)["path"].tolist()
        outputs = {name: [decode(path) for path in paths] for name, decode in modes.items()}  # warm caches
        for before, now in zip(outputs["probe_then_decode"], outputs["decode_usable_clip"], strict=True):
            np.testing.assert_array_equal(before[0], now[0])
            np.testing.assert_array_equal(before[1], now[1])
            assert abs(before[2].duration_s - now[2].duration_s) <= 0.005, (before[2], now[2])
        best = dict.fromkeys(modes, np.inf)
        for _ in range(args.repeats):
            for name, decode in modes.items():
                started = time.perf_counter()
                for path in paths:
                    decode(path)
                best[name] = min(best[name], time.perf_counter() - started)
    for name in modes:
        rows.append({"measure": name, "value": f"{len(paths) / best[name]:.4g}", "unit": "clips/s",
                     "ratio": f"{best['probe_then_decode'] / best[name]:.2f}",
                     "note": "same frames, waveforms and durations (checked)", "load": load_average()})
        print(rows[-1], flush=True)
    machine = machine_description()
    write_measurements(args.out, rows, [
        f"machine: {machine}; {ffmpeg_version()}; {len(paths)} synthetic clips of 2-10 s, best of {args.repeats}",
        "ratio: seconds of probe_then_decode / seconds of the row (same run); load: 1/5/15-min load averages",
    ])
    print(f"machine: {machine}; wrote {args.out}")


if __name__ == "__main__":
    main()

"""Clips/s of encoding and decoding one clip per ffmpeg process against a group of clips per
process (``avcmr.media.ffmpeg_io.encode_clips`` / ``decode_usable_clips``, CLIPS_PER_PROCESS at a
time), on synthetic clips of the demo's size (1–3 s, 160×120, H.264 + AAC), in the same run,
rounds interleaved; the best round of each. Also the cost of starting ffmpeg (``-version``).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ffmpeg_groups.py

Checks that grouped encoding writes byte-identical files and grouped decoding gives identical
frames, waveforms and stream descriptions. Writes ``benchmarks/results/ffmpeg_groups.tsv``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_info import load_average, machine_description, write_measurements


def best_seconds(work, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ffmpeg_groups.tsv"))
    args = parser.parse_args()

    from avcmr.data.synthetic import SyntheticSpec, class_name, plan_clips, render_clip
    from avcmr.media.ffmpeg_io import (
        CLIPS_PER_PROCESS,
        decode_usable_clip,
        decode_usable_clips,
        encode_clip,
        encode_clips,
        ffmpeg_version,
    )

    spec = SyntheticSpec(n_classes=10, n_clips=args.clips, min_duration_s=1, max_duration_s=3, seed=0)
    class_index = {class_name(c): c for c in range(spec.n_classes)}
    rendered = [render_clip(row, spec, class_index) for _, row in plan_clips(spec).iterrows()]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        alone = [f"{folder}/alone{i}.mp4" for i in range(len(rendered))]
        together = [f"{folder}/together{i}.mp4" for i in range(len(rendered))]

        def encode_alone():
            for path, (frames, sound) in zip(alone, rendered, strict=True):
                encode_clip(path, frames, spec.fps, sound, spec.sample_rate)

        def encode_together():
            for start in range(0, len(rendered), CLIPS_PER_PROCESS):
                encode_clips([(together[i], rendered[i][0], spec.fps, rendered[i][1], spec.sample_rate)
                              for i in range(start, min(start + CLIPS_PER_PROCESS, len(rendered)))])

        seconds = {"ffmpeg_start": best_seconds(
            lambda: [subprocess.run(["ffmpeg", "-version"], capture_output=True, check=True) for _ in range(10)],
            args.repeats) / 10 * len(rendered)}
        best = {"encode_one_per_process": np.inf, "encode_grouped": np.inf,
                "decode_one_per_process": np.inf, "decode_grouped": np.inf}
        for _ in range(args.repeats):
            best["encode_one_per_process"] = min(best["encode_one_per_process"], best_seconds(encode_alone, 1))
            best["encode_grouped"] = min(best["encode_grouped"], best_seconds(encode_together, 1))
        assert all(Path(a).read_bytes() == Path(b).read_bytes() for a, b in zip(alone, together, strict=True))
        single = [decode_usable_clip(path, 1, 160, 16000) for path in alone]
        grouped = [result for _, result in decode_usable_clips(alone, 1, 160, 16000)]
        for one, group in zip(single, grouped, strict=True):
            np.testing.assert_array_equal(one[0], group[0])
            np.testing.assert_array_equal(one[1], group[1])
            assert one[2] == group[2]
        for _ in range(args.repeats):
            best["decode_one_per_process"] = min(best["decode_one_per_process"], best_seconds(
                lambda: [decode_usable_clip(path, 1, 160, 16000) for path in alone], 1))
            best["decode_grouped"] = min(best["decode_grouped"], best_seconds(
                lambda: list(decode_usable_clips(alone, 1, 160, 16000)), 1))
        seconds.update(best)
    baseline = {"encode_grouped": "encode_one_per_process", "decode_grouped": "decode_one_per_process"}
    for name, value in seconds.items():
        reference = seconds[baseline.get(name, name)]
        note = "starting ffmpeg once per clip, nothing else" if name == "ffmpeg_start" else (
            "byte-identical files (checked)" if name.startswith("encode") else "identical frames, waveforms, info (checked)")
        rows.append({"measure": name, "value": f"{1000 * value / len(rendered):.1f}", "unit": "ms/clip",
                     "ratio": f"{reference / value:.2f}", "note": note, "load": load_average()})
        print(rows[-1], flush=True)
    machine = machine_description()
    write_measurements(args.out, rows, [
        f"machine: {machine}; {ffmpeg_version()}; {len(rendered)} synthetic clips of 1-3 s at 160x120, "
        f"{CLIPS_PER_PROCESS} clips per grouped process, best of {args.repeats}",
        "ratio: seconds of the one-per-process row / seconds of the grouped row (same run); load: 1/5/15-min load averages",
    ])
    print(f"machine: {machine}; wrote {args.out}")


if __name__ == "__main__":
    main()

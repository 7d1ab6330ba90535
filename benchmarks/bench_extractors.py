"""Throughput of the feature extractors (random weights): InceptionV3 frames/s, VGGish patches/s,
log-mel clips/s, and ffmpeg decode clips/s on generated clips.

    .venv/bin/python benchmarks/bench_extractors.py --frames 256 --patches 1024 --threads 2

Run on an otherwise idle machine and name it when you report the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def rate(function, n_items: int, repeats: int = 2) -> float:
    function()  # warm-up: graph tracing, allocations
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return n_items * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--patches", type=int, default=512)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    from avcmr.data.synthetic import SyntheticSpec, plan_clips, write_clips
    from avcmr.features.inception import InceptionExtractor
    from avcmr.features.logmel import log_mel_patches
    from avcmr.features.vggish import VGGishExtractor
    from avcmr.features.weights import parse_weights
    from avcmr.media.ffmpeg_io import decode_audio, decode_frames
    from avcmr.stages import configure_tensorflow

    configure_tensorflow(args.threads)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, 299, 299, 3), dtype=np.uint8)
    patches = rng.normal(size=(args.patches, 96, 64)).astype(np.float32)
    inception = InceptionExtractor(parse_weights({}, "inception"))
    vggish = VGGishExtractor(parse_weights({}, "vggish"))

    with tempfile.TemporaryDirectory() as folder:
        spec = SyntheticSpec(n_classes=3, n_clips=args.clips, min_duration_s=8, max_duration_s=8)
        paths = write_clips(plan_clips(spec), spec, folder)["path"].tolist()
        waveforms = [decode_audio(p) for p in paths]
        results = {
            "inception_frames_per_s": rate(lambda: inception.embed(frames), args.frames),
            "vggish_patches_per_s": rate(lambda: vggish.embed(patches), args.patches),
            "logmel_clip_seconds_per_s": rate(lambda: [log_mel_patches(w) for w in waveforms], 8 * len(paths)),
            "decode_clips_per_s": rate(lambda: [(decode_frames(p), decode_audio(p)) for p in paths], len(paths), 1),
        }
    print(f"machine: {platform.node()} ({os.cpu_count()} cores), threads: {args.threads}")
    for name, value in results.items():
        print(f"{name:28s} {value:10.1f}")


if __name__ == "__main__":
    main()

"""Throughput of the feature extractors (random weights: speed does not depend on the values).

1. InceptionV3 frames/s and VGGish patches/s: plain ``model.predict`` (the Keras default) against
   the extraction pipeline (uint8 frames scaled in a background thread one batch ahead, compiled
   forward pass), float32 and the opt-in bfloat16, all in the same run; ratios to ``predict``.
2. bfloat16's effect on the features: the largest relative difference to float32 (|Δ| over the
   largest float32 magnitude, and the largest per-vector ‖Δ‖/‖f‖), on the benchmark's frames and
   patches and on real synthetic clips (generated, encoded, decoded by ffmpeg).
3. bfloat16's effect on MAP: the synthetic clips' frame-mean features of each precision ranked
   within each modality (visual→visual, audio→audio, labels as relevance; random weights, so a
   check that the rankings do not move, not a paper number), and the share of queries whose AP
   changed.
4. log-mel clips/s and ffmpeg decode clips/s.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/bench_extractors.py

Writes ``benchmarks/results/extractors.tsv`` with the machine and the load averages.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_info import load_average, machine_description, write_measurements

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def rate(function, n_items: int, repeats: int) -> float:
    function()  # warm-up: graph tracing, allocations
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return n_items / best


def relative_differences(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    element = float(np.abs(other - reference).max() / max(np.abs(reference).max(), 1e-30))
    norms = np.linalg.norm(reference, axis=1)
    vector = float((np.linalg.norm(other - reference, axis=1) / np.maximum(norms, 1e-30)).max())
    return element, vector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--patches", type=int, default=512)
    parser.add_argument("--clips", type=int, default=40, help="synthetic clips for the bfloat16 MAP check")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frames-per-clip", type=int, default=10, help="frames (and patches) of a clip: 10 s at 1 fps")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extractors.tsv"))
    args = parser.parse_args()

    from avcmr.data.synthetic import SyntheticSpec, plan_clips, write_clips
    from avcmr.evaluation.metrics import evaluate_scores
    from avcmr.features.inception import InceptionExtractor
    from avcmr.features.inference import clip_batches
    from avcmr.features.logmel import log_mel_patches
    from avcmr.features.vggish import VGGishExtractor
    from avcmr.features.weights import parse_weights
    from avcmr.media.ffmpeg_io import decode_audio, decode_frames
    from avcmr.methods.base import cosine_similarity
    from avcmr.stages import configure_tensorflow

    configure_tensorflow(args.threads)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, 299, 299, 3), dtype=np.uint8)
    patches = rng.normal(size=(args.patches, 96, 64)).astype(np.float32)
    rows: list[dict] = []

    def record(measure, value, unit, ratio="", note=""):
        rows.append({"measure": measure, "value": f"{value:.4g}", "unit": unit, "ratio": ratio, "note": note,
                     "load": load_average()})
        print(rows[-1], flush=True)

    inception = {p: InceptionExtractor(parse_weights({}, "inception"), 32, p) for p in ("float32", "bfloat16")}
    vggish = {p: VGGishExtractor(parse_weights({}, "vggish"), 64, False, p) for p in ("float32", "bfloat16")}

    scaled = InceptionExtractor.scaled(frames)
    predict = rate(lambda: inception["float32"].model.predict(scaled, batch_size=32, verbose=0), args.frames,
                   args.repeats)
    record("inception_predict", predict, "frames/s", "1.00", "model.predict on scaled frames, float32")
    for precision, extractor in inception.items():
        value = rate(lambda extractor=extractor: extractor.embed(frames), args.frames, args.repeats)
        record(f"inception_pipeline_{precision}", value, "frames/s", f"{value / predict:.2f}",
               "uint8 frames → features: prefetching thread + compiled forward")
    # Batches cut at clip boundaries (the pipeline's default since features must not depend on a
    # clip's shard-mates): 10-frame clips, i.e. batches of 10 instead of 32.
    frame_clips = np.arange(args.frames) // args.frames_per_clip
    value = rate(lambda: inception["float32"].embed_batches(
        frames[start:stop] for start, stop in clip_batches(frame_clips, 32)), args.frames, args.repeats)
    record("inception_pipeline_clip_batches", value, "frames/s", f"{value / predict:.2f}",
           f"as inception_pipeline_float32, batches cut at {args.frames_per_clip}-frame clips (what the workflow runs)")
    patch_input = patches[..., None]
    predict = rate(lambda: vggish["float32"].model.predict(patch_input, batch_size=64, verbose=0), args.patches,
                   args.repeats)
    record("vggish_predict", predict, "patches/s", "1.00", "model.predict, float32")
    for precision, extractor in vggish.items():
        value = rate(lambda extractor=extractor: extractor.embed(patches), args.patches, args.repeats)
        record(f"vggish_pipeline_{precision}", value, "patches/s", f"{value / predict:.2f}",
               "patches → embeddings: prefetching thread + compiled forward")
    patch_clips = np.arange(args.patches) // args.frames_per_clip
    value = rate(lambda: vggish["float32"].embed(patches, patch_clips), args.patches, args.repeats)
    record("vggish_pipeline_clip_batches", value, "patches/s", f"{value / predict:.2f}",
           f"as vggish_pipeline_float32, batches cut at {args.frames_per_clip}-patch clips (what the workflow runs)")

    element, vector = relative_differences(inception["float32"].embed(frames), inception["bfloat16"].embed(frames))
    record("inception_bf16_max_rel_diff", element, "relative", "", f"random frames; per-vector max {vector:.4g}")
    element, vector = relative_differences(vggish["float32"].embed(patches), vggish["bfloat16"].embed(patches))
    record("vggish_bf16_max_rel_diff", element, "relative", "", f"random patches; per-vector max {vector:.4g}")

    with tempfile.TemporaryDirectory() as folder:
        spec = SyntheticSpec(n_classes=args.classes, n_clips=args.clips, min_duration_s=3, max_duration_s=5)
        clips = write_clips(plan_clips(spec), spec, folder)
        paths, labels = clips["path"].tolist(), clips["label"].to_numpy()
        started = time.perf_counter()
        decoded = [(decode_frames(path), decode_audio(path)) for path in paths]
        record("decode", len(paths) / (time.perf_counter() - started), "clips/s", "", "ffmpeg, 1 fps frames + audio")
        started = time.perf_counter()
        clip_patches = [log_mel_patches(waveform) for _, waveform in decoded]
        record("logmel", len(paths) / (time.perf_counter() - started), "clips/s", "", "")
        pooled = {}
        for precision in ("float32", "bfloat16"):
            visual = [inception[precision].embed(np.asarray(clip_frames)) for clip_frames, _ in decoded]
            audio = [vggish[precision].embed(p) for p in clip_patches]
            pooled[precision] = (np.stack([v.mean(axis=0) for v in visual]), np.stack([a.mean(axis=0) for a in audio]),
                                 np.concatenate(visual), np.concatenate(audio))
        for index, modality in ((0, "visual"), (1, "audio")):
            element, vector = relative_differences(pooled["float32"][index + 2], pooled["bfloat16"][index + 2])
            record(f"{modality}_clips_bf16_max_rel_diff", element, "relative", "",
                   f"{args.clips} synthetic clips' frames; per-vector max {vector:.4g}")
            ap = {p: evaluate_scores(cosine_similarity(pooled[p][index], pooled[p][index]), labels, labels)["a2v"]
                  for p in pooled}
            changed = float(np.mean(ap["float32"] != ap["bfloat16"]))
            record(f"{modality}_map_float32", ap["float32"].mean(), "MAP", "", f"{modality}→{modality}, frame-mean")
            record(f"{modality}_map_bfloat16", ap["bfloat16"].mean(), "MAP", "",
                   f"difference {ap['bfloat16'].mean() - ap['float32'].mean():+.4f}; {changed:.0%} of queries' AP changed")

    machine = machine_description()
    import tensorflow as tf

    write_measurements(args.out, rows, [
        f"machine: {machine}; TensorFlow {tf.__version__}; threads {args.threads}; "
        f"{args.frames} frames, {args.patches} patches, best of {args.repeats}",
        "load: 1/5/15-min load averages (os.getloadavg) after each measurement",
    ])
    print(f"machine: {machine}; wrote {args.out}")


if __name__ == "__main__":
    main()

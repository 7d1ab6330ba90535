"""The embedded synthetic dataset: real H.264 + AAC clips with class-specific sound and picture.

Each class has a characteristic sound (a harmonic stack, a noise band, a rhythmic tone pattern or
an amplitude-modulated chirp, each at its own pitch) and a characteristic picture (background hue,
object shape and colour, motion trajectory). Every clip varies them (pitch and tempo jitter shared
by both modalities, SNR, bleed of another class's sound and a distractor object, camera noise,
length 2–10 s), and a configurable fraction of clips is *hard* (strong bleed, low SNR, heavy
noise) or *mislabeled* (the label names another class than the media shows). Everything is drawn
from ``numpy.random.default_rng`` seeded per clip, so the same config gives the same files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from avcmr.media.ffmpeg_io import CLIPS_PER_PROCESS, encode_clips

SOUND_KINDS = ("harmonic", "noise_band", "rhythm", "chirp")
SHAPES = ("disc", "square", "ring", "bar")
TRAJECTORIES = ("horizontal", "vertical", "circular")


@dataclass(frozen=True)
class SyntheticSpec:
    """Knobs of the generator (config: ``datasets.<name>.synthetic``)."""

    n_classes: int = 10
    n_clips: int = 300
    min_duration_s: float = 2.0
    max_duration_s: float = 10.0
    hard_fraction: float = 0.15
    mislabeled_fraction: float = 0.05
    bleed_level: float = 0.35
    camera_noise: float = 12.0
    width: int = 160
    height: int = 120
    fps: int = 5
    sample_rate: int = 16000
    seed: int = 0


def class_name(index: int) -> str:
    return f"{SOUND_KINDS[index % 4]}_{SHAPES[(index // 4) % 4]}_{index:02d}"


def plan_clips(spec: SyntheticSpec) -> pd.DataFrame:
    """The clip list (one row per clip): id, label, true class, duration, difficulty flags, seed.

    Classes are balanced (round-robin) so every class has ⌊n/C⌋ or ⌈n/C⌉ clips.
    """
    if spec.n_classes < 2 or spec.n_classes > 40:
        raise ValueError(f"synthetic n_classes must be in 2..40, got {spec.n_classes}")
    rng = np.random.default_rng(spec.seed)
    true_class = np.arange(spec.n_clips) % spec.n_classes
    rng.shuffle(true_class)
    durations = np.round(rng.uniform(spec.min_duration_s, spec.max_duration_s, spec.n_clips), 1)
    hard = rng.random(spec.n_clips) < spec.hard_fraction
    mislabeled = rng.random(spec.n_clips) < spec.mislabeled_fraction
    shift = rng.integers(1, spec.n_classes, spec.n_clips)
    label_class = np.where(mislabeled, (true_class + shift) % spec.n_classes, true_class)
    clip_seeds = rng.integers(0, 2**31 - 1, spec.n_clips)
    return pd.DataFrame(
        {
            "clip_id": [f"syn{index:05d}" for index in range(spec.n_clips)],
            "label": [class_name(c) for c in label_class],
            "true_label": [class_name(c) for c in true_class],
            "duration_s": durations,
            "hard": hard,
            "mislabeled": mislabeled,
            "clip_seed": clip_seeds,
        }
    )


# --- sound ---------------------------------------------------------------------------------------


def _class_pitch(class_index: int) -> float:
    # Spread base pitches over ~3 octaves so that classes differ in the mel spectrum.
    return 150.0 * 2 ** (class_index * 3.0 / 10.0)


def class_sound(class_index: int, duration_s: float, sample_rate: int, pitch: float, tempo: float, rng) -> np.ndarray:
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    f0 = _class_pitch(class_index) * pitch
    kind = SOUND_KINDS[class_index % 4]
    if kind == "harmonic":
        signal = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
    elif kind == "noise_band":
        spectrum = np.fft.rfft(rng.standard_normal(len(t)))
        freqs = np.fft.rfftfreq(len(t), 1 / sample_rate)
        spectrum *= np.exp(-0.5 * ((freqs - 4 * f0) / (0.6 * f0)) ** 2)
        signal = np.fft.irfft(spectrum, n=len(t))
    elif kind == "rhythm":
        beat_hz = 2.0 * tempo * (1 + 0.25 * (class_index % 3))
        gate = (np.sin(2 * np.pi * beat_hz * t) > 0.3).astype(float)
        signal = gate * np.sin(2 * np.pi * 2 * f0 * t)
    else:  # chirp: a tone sweeping an octave, repeated, amplitude-modulated
        period = 1.5 / tempo
        phase_time = np.mod(t, period) / period
        freq = 2 * f0 * 2**phase_time
        signal = np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    signal = np.asarray(signal, dtype=np.float64)
    return signal / (np.abs(signal).max() + 1e-9)


# --- picture -------------------------------------------------------------------------------------


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    i = int(hue * 6) % 6
    f = hue * 6 - int(hue * 6)
    p, q, t = value * (1 - saturation), value * (1 - f * saturation), value * (1 - (1 - f) * saturation)
    return 255 * np.array([(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q)][i])


def _shape_mask(shape: str, yy, xx, cy, cx, radius, angle) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if shape == "disc":
        return dy**2 + dx**2 <= radius**2
    if shape == "ring":
        r2 = dy**2 + dx**2
        return (r2 <= radius**2) & (r2 >= (0.55 * radius) ** 2)
    if shape == "square":
        ry = dy * math.cos(angle) - dx * math.sin(angle)
        rx = dy * math.sin(angle) + dx * math.cos(angle)
        return (np.abs(ry) <= 0.85 * radius) & (np.abs(rx) <= 0.85 * radius)
    # bar: a long thin rectangle rotating with the motion
    ry = dy * math.cos(angle) - dx * math.sin(angle)
    rx = dy * math.sin(angle) + dx * math.cos(angle)
    return (np.abs(ry) <= 0.3 * radius) & (np.abs(rx) <= 1.6 * radius)


def _position(trajectory: str, phase: float, width: int, height: int) -> tuple[float, float]:
    s = math.sin(2 * math.pi * phase)
    c = math.cos(2 * math.pi * phase)
    if trajectory == "horizontal":
        return height / 2 + 0.1 * height * c, width / 2 + 0.35 * width * s
    if trajectory == "vertical":
        return height / 2 + 0.33 * height * s, width / 2 + 0.1 * width * c
    return height / 2 + 0.3 * height * s, width / 2 + 0.3 * width * c


def class_frames(class_index, n_classes, n_frames, fps, width, height, pitch, tempo, rng, distractor=None, noise=0.0):
    """Frames (n, h, w, 3) uint8 showing the class's object moving over its background."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    hue = class_index / n_classes
    background = _hsv_to_rgb((hue + 0.5) % 1.0, 0.35, 0.55)
    gradient = (yy / height)[..., None] * 40.0
    colour = _hsv_to_rgb(hue, 0.9, 0.95)
    shape = SHAPES[class_index % 4]
    trajectory = TRAJECTORIES[(class_index // 2) % 3]
    radius = 0.16 * height / pitch  # higher pitch → smaller object: a cross-modal link within a class
    phase0 = rng.uniform(0, 1)
    frames = np.empty((n_frames, height, width, 3), dtype=np.float32)
    for i in range(n_frames):
        phase = phase0 + 0.25 * tempo * i / fps
        frame = np.broadcast_to(background, (height, width, 3)) + gradient
        cy, cx = _position(trajectory, phase, width, height)
        frame = np.where(_shape_mask(shape, yy, xx, cy, cx, radius, 2 * math.pi * phase)[..., None], colour, frame)
        if distractor is not None:
            d_index, d_level = distractor
            dy, dx = _position(TRAJECTORIES[(d_index // 2) % 3], phase + 0.5, width, height)
            d_mask = _shape_mask(SHAPES[d_index % 4], yy, xx, dy, dx, radius * (0.5 + d_level), 0.0)
            frame = np.where(d_mask[..., None], _hsv_to_rgb(d_index / n_classes, 0.9, 0.95), frame)
        frames[i] = frame
    if noise > 0:
        frames += rng.normal(0.0, noise, frames.shape)
    return np.clip(frames, 0, 255).astype(np.uint8)


def render_clip(row: pd.Series, spec: SyntheticSpec, class_index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frames and waveform of one planned clip (deterministic given its ``clip_seed``)."""
    rng = np.random.default_rng(int(row["clip_seed"]))
    true_class = class_index[row["true_label"]]
    pitch = 2 ** rng.uniform(-0.12, 0.12)  # ±~8 % pitch jitter, shared with the object size
    tempo = 2 ** rng.uniform(-0.3, 0.3)  # shared by rhythm and motion speed
    hard = bool(row["hard"])
    other_class = (true_class + rng.integers(1, spec.n_classes)) % spec.n_classes
    bleed = spec.bleed_level * (2.2 if hard else rng.uniform(0.2, 1.0))
    snr_db = rng.uniform(-3, 3) if hard else rng.uniform(6, 20)

    duration = float(row["duration_s"])
    sound = class_sound(true_class, duration, spec.sample_rate, pitch, tempo, rng)
    sound = sound + bleed * class_sound(other_class, duration, spec.sample_rate, 1.0, 1.0, rng)
    signal_power = np.mean(sound**2) + 1e-12
    sound = sound + rng.standard_normal(len(sound)) * math.sqrt(signal_power / 10 ** (snr_db / 10))
    sound = 0.5 * sound / (np.abs(sound).max() + 1e-9)

    n_frames = max(1, int(round(duration * spec.fps)))
    noise = spec.camera_noise * (3.0 if hard else rng.uniform(0.3, 1.0))
    frames = class_frames(
        true_class, spec.n_classes, n_frames, spec.fps, spec.width, spec.height, pitch, tempo, rng,
        distractor=(other_class, bleed), noise=noise,
    )
    return frames, sound.astype(np.float32)


def write_clips(plan: pd.DataFrame, spec: SyntheticSpec, media_dir, log=None) -> pd.DataFrame:
    """Render and encode every planned clip into ``media_dir``; return the plan with a ``path`` column.

    Clips are encoded CLIPS_PER_PROCESS at a time by one ffmpeg process (the same files as one by one)."""
    from pathlib import Path

    media_dir = Path(media_dir)
    class_index = {class_name(c): c for c in range(spec.n_classes)}
    rows = [row for _, row in plan.iterrows()]
    paths = [str(media_dir / f"{row['clip_id']}.mp4") for row in rows]
    for start in range(0, len(rows), CLIPS_PER_PROCESS):
        group = range(start, min(start + CLIPS_PER_PROCESS, len(rows)))
        encode_clips([(paths[i], *_frames_and_sound(rows[i], spec, class_index)) for i in group])
        if log is not None:
            log.info("encoded %d/%d clips", group[-1] + 1, len(rows))
    return plan.assign(path=paths)


def _frames_and_sound(row: pd.Series, spec: SyntheticSpec, class_index: dict[str, int]):
    frames, sound = render_clip(row, spec, class_index)
    return frames, spec.fps, sound, spec.sample_rate

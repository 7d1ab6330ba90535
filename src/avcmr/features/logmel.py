"""VGGish's reference log-mel front end, computed with librosa (DATA.md, "Audio front end").

16 kHz mono → frames of 400 samples (25 ms) every 160 (10 ms), complete frames only, periodic
Hann window, zero-padded to a 512-point FFT, magnitude → 64 mel bands 125–7,500 Hz (HTK scale,
triangles built in the mel domain at each FFT bin's centre frequency, DC row zeroed) →
log(mel + 0.01) → non-overlapping 96-frame examples (0.96 s) → patches of 96×64.

Two librosa defaults would silently change the numbers (DATA.md): ``librosa.stft`` centres its
window inside the 512-sample frame, and ``librosa.filters.mel`` builds the triangles in Hz.
So framing uses ``librosa.util.frame`` + ``numpy.fft.rfft(n=512)`` and the mel matrix is built here.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np


@dataclass(frozen=True)
class LogMelSpec:
    sample_rate: int = 16000
    window_samples: int = 400
    hop_samples: int = 160
    fft_size: int = 512
    n_mels: int = 64
    fmin_hz: float = 125.0
    fmax_hz: float = 7500.0
    log_offset: float = 0.01
    patch_frames: int = 96

    @property
    def patch_seconds(self) -> float:
        return self.patch_frames * self.hop_samples / self.sample_rate


def mel_matrix(spec: LogMelSpec = LogMelSpec()) -> np.ndarray:
    """The (fft_size/2+1) × n_mels weight matrix of the VGGish reference."""
    n_bins = spec.fft_size // 2 + 1
    bin_mels = librosa.hz_to_mel(np.linspace(0.0, spec.sample_rate / 2, n_bins), htk=True)
    edges = np.linspace(
        librosa.hz_to_mel(spec.fmin_hz, htk=True), librosa.hz_to_mel(spec.fmax_hz, htk=True), spec.n_mels + 2
    )
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mels[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mels[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the reference drops the DC bin
    return weights


def log_mel_frames(waveform: np.ndarray, spec: LogMelSpec = LogMelSpec()) -> np.ndarray:
    """Log-mel spectrogram, one row per 10 ms frame (n_frames × n_mels)."""
    waveform = np.asarray(waveform, dtype=np.float64)
    if len(waveform) < spec.window_samples:
        return np.zeros((0, spec.n_mels))
    frames = librosa.util.frame(waveform, frame_length=spec.window_samples, hop_length=spec.hop_samples, axis=0)
    window = librosa.filters.get_window("hann", spec.window_samples, fftbins=True)  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, n=spec.fft_size, axis=1))
    return np.log(magnitude @ mel_matrix(spec) + spec.log_offset)


def log_mel_patches(waveform: np.ndarray, spec: LogMelSpec = LogMelSpec()) -> np.ndarray:
    """Non-overlapping 96×64 examples (n_patches × 96 × 64); zero patches for clips < 0.96 s."""
    frames = log_mel_frames(waveform, spec)
    n_patches = len(frames) // spec.patch_frames
    return frames[: n_patches * spec.patch_frames].reshape(n_patches, spec.patch_frames, spec.n_mels).astype(np.float32)

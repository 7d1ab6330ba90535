"""The log-mel front end against an independent numpy implementation of DATA.md's spec."""

import numpy as np

from avcmr.features.logmel import LogMelSpec, log_mel_frames, log_mel_patches, mel_matrix
from avcmr.media.ffmpeg_io import decode_audio


def reference_log_mel(waveform: np.ndarray) -> np.ndarray:
    """Straight from the spec, with no librosa: 400/160 framing, periodic Hann, rfft 512, HTK mel."""
    n_frames = 1 + (len(waveform) - 400) // 160
    frames = np.stack([waveform[160 * i : 160 * i + 400] for i in range(n_frames)]).astype(np.float64)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    spectrum = np.abs(np.fft.rfft(frames * window, n=512))

    def hz_to_mel(hz):
        return 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)

    bin_mel = hz_to_mel(np.linspace(0, 8000, 257))
    edges = np.linspace(hz_to_mel(125.0), hz_to_mel(7500.0), 66)
    weights = np.zeros((257, 64))
    for band in range(64):
        lower, centre, upper = edges[band : band + 3]
        for b in range(257):
            rising = (bin_mel[b] - lower) / (centre - lower)
            falling = (upper - bin_mel[b]) / (upper - centre)
            weights[b, band] = max(0.0, min(rising, falling))
    weights[0] = 0.0
    return np.log(spectrum @ weights + 0.01)


def test_log_mel_matches_reference_on_a_decoded_clip(synthetic_clip):
    waveform = decode_audio(synthetic_clip[0])
    ours = log_mel_frames(waveform)
    reference = reference_log_mel(waveform)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 1e-4

    patches = log_mel_patches(waveform)
    assert patches.shape == (len(reference) // 96, 96, 64)
    np.testing.assert_allclose(patches[-1], reference[(len(patches) - 1) * 96 : len(patches) * 96], atol=1e-4)


def test_mel_matrix_shape_and_band_edges():
    weights = mel_matrix()
    assert weights.shape == (257, 64)
    assert (weights[0] == 0).all()
    # Bins below 125 Hz and above 7,500 Hz carry no weight.
    freqs = np.linspace(0, 8000, 257)
    assert (weights[freqs < 125] == 0).all() and (weights[freqs > 7500] == 0).all()
    assert (weights.sum(axis=0) > 0).all()


def test_clips_shorter_than_one_patch_give_no_patches():
    spec = LogMelSpec()
    assert log_mel_patches(np.zeros(int(0.9 * spec.sample_rate), np.float32)).shape == (0, 96, 64)
    # 0.975 s = 96 complete frames: exactly one patch.
    one_patch = 400 + 95 * 160
    assert log_mel_patches(np.ones(one_patch, np.float32)).shape == (1, 96, 64)

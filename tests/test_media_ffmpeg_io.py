import math
import subprocess

import numpy as np
import pytest

from avcmr.media.ffmpeg_io import MediaError, decode_audio, decode_clip, decode_frames, probe


def test_decode_gives_one_frame_per_second_and_16k_mono_audio(synthetic_clip):
    path, duration = synthetic_clip
    info = probe(path)
    assert info.has_audio and info.has_video
    assert info.duration_s == pytest.approx(duration, abs=0.15)

    frames = decode_frames(path, fps=1, size=299)
    assert frames.dtype == np.uint8 and frames.shape[1:] == (299, 299, 3)
    assert abs(len(frames) - math.ceil(duration)) <= 1

    waveform = decode_audio(path, sample_rate=16000)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    # AAC adds encoder priming/padding of at most a few frames (1024 samples at 16 kHz ≈ 64 ms each).
    assert len(waveform) / 16000 == pytest.approx(duration, abs=0.2)
    assert 0.05 < np.abs(waveform).max() <= 1.0


def test_frames_show_the_generated_picture_not_a_blank(synthetic_clip):
    frames = decode_frames(synthetic_clip[0])
    assert frames.std() > 10  # object, background and noise


def test_not_a_media_file_is_a_media_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_bytes(b"this is not a video" * 100)
    with pytest.raises(MediaError, match="unreadable media"):
        probe(path)


def test_empty_and_missing_files_are_media_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        probe(empty)
    with pytest.raises(MediaError, match="file not found"):
        probe(tmp_path / "missing.mp4")


def test_video_without_audio_is_detected(tmp_path, synthetic_clip):
    silent = tmp_path / "silent.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(synthetic_clip[0]), "-an", "-c", "copy", str(silent)], check=True)
    info = probe(silent)
    assert info.has_video and not info.has_audio
    with pytest.raises(MediaError, match="audio decode failed"):
        decode_audio(silent)
    with pytest.raises(MediaError, match="decode failed"):
        decode_clip(silent)


def test_one_process_decodes_the_same_bytes_as_two(synthetic_clip):
    """The decode stage's single ffmpeg call gives exactly what the separate calls give."""
    path = synthetic_clip[0]
    frames, waveform = decode_clip(path, fps=1, size=299, sample_rate=16000)
    np.testing.assert_array_equal(frames, decode_frames(path, fps=1, size=299))
    np.testing.assert_array_equal(waveform, decode_audio(path, sample_rate=16000))
    assert len(frames) > 0 and len(waveform) > 0

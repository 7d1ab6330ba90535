import math
import subprocess

import numpy as np
import pytest

from avcmr.media.ffmpeg_io import (
    MediaError,
    decode_audio,
    decode_clip,
    decode_frames,
    decode_usable_clip,
    decode_usable_clips,
    encode_clip,
    encode_clips,
    input_info,
    probe,
)


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


def ffmpeg_made(tmp_path, name: str, *arguments: str) -> str:
    """A file made by ffmpeg from its own test sources (``-f lavfi``)."""
    path = tmp_path / name
    subprocess.run(["ffmpeg", "-v", "error", *arguments, "-y", str(path)], check=True)
    return str(path)


def test_the_decoding_ffmpeg_describes_the_clip_as_ffprobe_does(synthetic_clip):
    path = synthetic_clip[0]
    frames, waveform, info = decode_usable_clip(path, fps=1, size=299, sample_rate=16000)
    reference_frames, reference_waveform = decode_clip(path, fps=1, size=299, sample_rate=16000)
    np.testing.assert_array_equal(frames, reference_frames)
    np.testing.assert_array_equal(waveform, reference_waveform)
    probed = probe(path)
    assert (info.has_video, info.has_audio) == (probed.has_video, probed.has_audio) == (True, True)
    assert info.duration_s == pytest.approx(probed.duration_s, abs=0.005)  # ffmpeg prints centiseconds


def test_clips_without_a_usable_stream_get_probes_reasons(tmp_path, synthetic_clip):
    silent = tmp_path / "silent.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(synthetic_clip[0]), "-an", "-c", "copy", str(silent)], check=True)
    sine = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=3"]
    audio_only = ffmpeg_made(tmp_path, "audio_only.m4a", *sine, "-c:a", "aac")
    # A song with its cover: a video stream that is one attached picture, which probe() does not
    # count as video (ffmpeg would turn it into frames).
    cover = ffmpeg_made(tmp_path, "cover.png", "-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1")
    song = ffmpeg_made(tmp_path, "song.mp3", *sine, "-i", cover, "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame",
                       "-c:v", "png", "-disposition:v", "attached_pic")
    assert probe(song).has_audio and not probe(song).has_video
    not_media = tmp_path / "notes.mp4"
    not_media.write_bytes(b"this is not a video" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases = {str(silent): "no audio stream", audio_only: "no video stream", song: "no video stream",
             str(not_media): "unreadable media", str(empty): "empty file", str(tmp_path / "gone.mp4"): "file not found"}
    for path, reason in cases.items():
        with pytest.raises(MediaError, match=reason):
            decode_usable_clip(path)


def test_a_group_decodes_each_clip_as_the_one_clip_call_and_a_bad_file_gets_its_own_reason(tmp_path, synthetic_clip):
    good = str(synthetic_clip[0])
    short = ffmpeg_made(tmp_path, "short.mp4", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=5:duration=2",
                        "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=22050:duration=2",
                        "-c:v", "libx264", "-c:a", "aac", "-shortest")
    not_media = tmp_path / "notes.mp4"
    not_media.write_bytes(b"this is not a video" * 100)
    missing = str(tmp_path / "gone.mp4")
    # The same file twice in a group is one input of the ffmpeg command: both still get results.
    paths = [good, short, good]
    grouped = list(decode_usable_clips(paths, fps=1, size=64, sample_rate=16000, clips_per_process=3))
    assert [path for path, _ in grouped] == paths
    for path, (frames, waveform, info) in grouped:
        reference_frames, reference_waveform, reference_info = decode_usable_clip(path, 1, 64, 16000)
        np.testing.assert_array_equal(frames, reference_frames)
        np.testing.assert_array_equal(waveform, reference_waveform)
        assert info == reference_info
    assert grouped[1][1][2].duration_s == pytest.approx(2.0, abs=0.05)  # the short clip's own block
    mixed = [good, str(not_media), missing, short]
    results = dict(decode_usable_clips(mixed, fps=1, size=64, sample_rate=16000, clips_per_process=4))
    assert "unreadable media" in results[str(not_media)].reason
    assert "file not found" in results[missing].reason
    np.testing.assert_array_equal(results[short][0], decode_usable_clip(short, 1, 64, 16000)[0])


def test_one_process_encodes_the_same_files_as_one_call_per_clip(tmp_path, rng):
    clips = []
    for index, n_frames in enumerate((1, 3)):
        frames = rng.integers(0, 256, (n_frames, 48, 64, 3), dtype=np.uint8)
        audio = (0.3 * np.sin(np.arange(16000 * n_frames) * (0.05 + index / 100))).astype(np.float32)
        clips.append((frames, 1, audio, 16000))
    for index, clip in enumerate(clips):
        encode_clip(tmp_path / f"alone{index}.mp4", *clip)
    encode_clips([(tmp_path / f"together{index}.mp4", *clip) for index, clip in enumerate(clips)])
    for index in range(len(clips)):
        assert (tmp_path / f"together{index}.mp4").read_bytes() == (tmp_path / f"alone{index}.mp4").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone0.mp4", "alone1.mp4", "together0.mp4",
                                                          "together1.mp4"]  # no input files left


def test_input_info_of_the_second_input_reads_its_own_block():
    stderr = ("Input #0, mov,mp4, from 'a.mp4':\n  Duration: 00:00:05.00, start: 0.0\n"
              "  Stream #0:0: Video: h264\n  Stream #0:1: Audio: aac\n"
              "Input #1, matroska,webm, from 'b.mkv':\n  Duration: 00:00:02.50, start: 0.0\n"
              "  Stream #1:0: Audio: opus\nStream mapping:\n  Stream #0:0 -> x\n")
    first, second = input_info(stderr, 0), input_info(stderr, 1)
    assert (first.duration_s, first.has_video, first.has_audio) == (5.0, True, True)
    assert (second.duration_s, second.has_video, second.has_audio) == (2.5, False, True)
    assert input_info(stderr, 2) is None


@pytest.mark.parametrize(("stderr", "expected"), [
    # ffmpeg 5.1's description of an H.264 + AAC clip, then its stream mapping (not the input's).
    ("Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'a.mp4':\n  Metadata:\n    encoder         : Lavf59\n"
     "  Duration: 00:01:02.50, start: 0.000000, bitrate: 70 kb/s\n"
     "  Stream #0:0[0x1](und): Video: h264 (High), yuv420p, 160x120, 5 fps (default)\n"
     "    Metadata:\n      handler_name    : VideoHandler\n"
     "  Stream #0:1[0x2](und): Audio: aac (LC), 16000 Hz, mono, fltp (default)\n"
     "Stream mapping:\n  Stream #0:0 (h264) -> fps:default (graph 0)\n", (62.5, True, True)),
    ("Input #0, matroska,webm, from 'b.mkv':\n  Duration: 01:00:00.04, start: 0.000000\n"
     "  Stream #0:0: Audio: opus, 48000 Hz, stereo\nOutput #0, f32le, to 'x':\n"
     "  Stream #0:0: Video: rawvideo\n", (3600.04, False, True)),
    ("Input #0, mov,mp4, from 'c.mp4':\n  Duration: N/A, bitrate: N/A\n  Stream #0:0: Video: h264\n", None),
    ("Input #0, mp3, from 'd.mp3':\n  Duration: 00:00:03.00, start: 0.0\n  Stream #0:0: Audio: mp3\n"
     "  Stream #0:1: Video: png, rgb24, 64x64 (attached pic)\n", None),
    ("[mov,mp4 @ 0x5] moov atom not found\nx.mp4: Invalid data found when processing input\n", None),
])
def test_input_info_reads_the_input_block_only(stderr, expected):
    info = input_info(stderr)
    if expected is None:
        assert info is None
    else:
        duration, has_video, has_audio = expected
        assert info.duration_s == pytest.approx(duration)
        assert (info.has_video, info.has_audio) == (has_video, has_audio)

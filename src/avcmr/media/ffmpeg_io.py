"""Decode and encode media with ffmpeg through ffmpeg-python.

Decoding follows DATA.md: video at 1 frame per second scaled to 299×299 RGB (InceptionV3's input),
audio as 16 kHz mono float32 in [−1, 1] (VGGish's input). Problems with a file are raised as
:class:`MediaError` with a short reason that the stages record in the failures table.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np


class MediaError(Exception):
    """A media file that cannot be used; ``reason`` is a short, table-friendly explanation."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def require_ffmpeg() -> None:
    """Fail early, in one line, when the binaries the workflow calls are not on PATH."""
    missing = [name for name in ("ffmpeg", "ffprobe") if shutil.which(name) is None]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found on PATH: install ffmpeg (Debian/Ubuntu: "
            "`apt-get install ffmpeg`; conda: `conda install -c conda-forge ffmpeg`) or run `make setup`"
        )


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    has_video: bool
    has_audio: bool


def probe(path: str | Path) -> MediaInfo:
    """Streams and duration of a media file (ffprobe)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError("empty file")
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as error:
        raise MediaError(f"unreadable media ({_last_line(error.stderr)})") from None
    streams = info.get("streams", [])
    durations = [float(s["duration"]) for s in streams if s.get("duration") not in (None, "N/A")]
    fmt_duration = info.get("format", {}).get("duration")
    duration = float(fmt_duration) if fmt_duration not in (None, "N/A") else max(durations, default=0.0)
    return MediaInfo(
        duration_s=duration,
        has_video=any(s.get("codec_type") == "video" and s.get("disposition", {}).get("attached_pic", 0) == 0 for s in streams),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )


def _frames_output(path: str | Path, fps: float, size: int, target: str):
    return (ffmpeg.input(str(path)).video.filter("fps", fps=fps).filter("scale", size, size)
            .output(target, format="rawvideo", pix_fmt="rgb24"))


def _audio_output(path: str | Path, sample_rate: int, target: str):
    return ffmpeg.input(str(path)).audio.output(target, format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate)


def _frames_from_bytes(raw: bytes, size: int) -> np.ndarray:
    frame_bytes = size * size * 3
    n_frames = len(raw) // frame_bytes
    return np.frombuffer(raw[: n_frames * frame_bytes], dtype=np.uint8).reshape(n_frames, size, size, 3)


def decode_frames(path: str | Path, fps: float = 1.0, size: int = 299) -> np.ndarray:
    """Frames sampled at ``fps`` and resized to ``size``×``size`` RGB: uint8 array (n, size, size, 3)."""
    try:
        raw, _ = _frames_output(path, fps, size, "pipe:").run(capture_stdout=True, capture_stderr=True, quiet=True)
    except ffmpeg.Error as error:
        raise MediaError(f"video decode failed ({_last_line(error.stderr)})") from None
    return _frames_from_bytes(raw, size)


def decode_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 waveform in [−1, 1] resampled to ``sample_rate``."""
    try:
        raw, _ = _audio_output(path, sample_rate, "pipe:").run(capture_stdout=True, capture_stderr=True, quiet=True)
    except ffmpeg.Error as error:
        raise MediaError(f"audio decode failed ({_last_line(error.stderr)})") from None
    return np.frombuffer(raw, dtype=np.float32).copy()


def decode_clip(path: str | Path, fps: float = 1.0, size: int = 299,
                sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """:func:`decode_frames` and :func:`decode_audio` of one clip from one ffmpeg process, the same
    bytes as the two calls (same filters, same resampler): starting ffmpeg costs ≈ 70 ms, about
    what decoding a 10-s clip costs, so a shard pays it once per clip rather than twice. The frames
    come through stdout and the waveform through a temporary file."""
    frames, waveform, _ = _decode_clip(path, fps, size, sample_rate)
    return frames, waveform


def decode_usable_clip(path: str | Path, fps: float = 1.0, size: int = 299,
                       sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray, MediaInfo]:
    """:func:`decode_clip` of a clip that must have a video and an audio stream, with the file's
    :class:`MediaInfo`; the same :class:`MediaError` reasons as :func:`probe` then the checks for
    both streams then :func:`decode_clip` (file not found, empty file, unreadable media, no video
    stream, no audio stream, decode failed).

    The information comes from the input description the decoding ffmpeg prints anyway (its
    duration line and stream lines), not from a separate ffprobe: starting ffprobe costs ≈ 0.1 s,
    40 % of decoding a 6-s clip. ffprobe runs only to explain a failure or where that description
    is not conclusive (no duration, a cover picture as the video stream).
    """
    try:
        frames, waveform, stderr = _decode_clip(path, fps, size, sample_rate)
    except MediaError:
        _require_both_streams(probe(path))  # the file's own problem first, as probe() words it
        raise
    return frames, waveform, _described_or_probed(stderr, 0, path)


def _described_or_probed(stderr: str, index: int, path) -> MediaInfo:
    """Input ``index``'s :class:`MediaInfo` from the decoding ffmpeg's own description, or, where
    that is not conclusive, from ffprobe with both streams required (a :class:`MediaError` else)."""
    info = input_info(stderr, index)
    if info is None:
        info = probe(path)
        _require_both_streams(info)
    return info


# Starting Debian's ffmpeg costs ≈ 125 ms (it loads ≈ 200 shared libraries), more than decoding
# or encoding a clip of a few seconds: clips are decoded and encoded in groups, one process each.
CLIPS_PER_PROCESS = 16


def decode_usable_clips(paths, fps: float = 1.0, size: int = 299, sample_rate: int = 16000,
                        clips_per_process: int = CLIPS_PER_PROCESS):
    """(path, result) for each of ``paths`` in order: result is what :func:`decode_usable_clip`
    returns for that path, or the :class:`MediaError` it raises.

    One ffmpeg process decodes a group of clips, each input through the same filters into its own
    outputs, so the bytes are those of the one-clip call. A group whose process fails (one bad
    file fails it) is decoded again clip by clip, which gives each clip its own result and reason.
    """
    paths = list(paths)
    for start in range(0, len(paths), clips_per_process):
        group = paths[start : start + clips_per_process]
        results = _decode_group(group, fps, size, sample_rate) if len(group) > 1 else None
        if results is None:
            results = [_usable_clip_or_error(path, fps, size, sample_rate) for path in group]
        yield from zip(group, results, strict=True)


def _usable_clip_or_error(path, fps, size, sample_rate):
    try:
        return decode_usable_clip(path, fps, size, sample_rate)
    except MediaError as error:
        return error


def _decode_group(paths, fps, size, sample_rate) -> list | None:
    """:func:`decode_usable_clip` of every path from one ffmpeg process; None if that fails."""
    if not all(Path(path).is_file() and Path(path).stat().st_size > 0 for path in paths):
        return None
    unique = list(dict.fromkeys(str(path) for path in paths))  # a repeated path is decoded once
    with tempfile.TemporaryDirectory(prefix="avcmr-decode-") as folder:
        outputs = []
        for index, path in enumerate(unique):
            outputs += [_frames_output(path, fps, size, f"{folder}/{index}.rgb"),
                        _audio_output(path, sample_rate, f"{folder}/{index}.f32")]
        command = ffmpeg.merge_outputs(*outputs).overwrite_output()
        # ffmpeg-python orders the inputs itself: read each path's input number from the command
        # line, for the "Input #i" block that describes it.
        arguments = command.get_args()
        inputs = [arguments[i + 1] for i, argument in enumerate(arguments) if argument == "-i"]
        try:
            _, stderr = command.run(capture_stdout=True, capture_stderr=True, quiet=True)
        except ffmpeg.Error:
            return None
        stderr = stderr.decode(errors="replace")
        results = {}
        for index, path in enumerate(unique):
            raw = Path(f"{folder}/{index}.rgb").read_bytes()
            waveform = np.fromfile(f"{folder}/{index}.f32", dtype=np.float32)
            try:
                info = _described_or_probed(stderr, inputs.index(path), path)
            except MediaError as error:
                results[path] = error
                continue
            results[path] = (_frames_from_bytes(raw, size), waveform, info)
    return [results[str(path)] for path in paths]


def _require_both_streams(info: MediaInfo) -> None:
    if not info.has_video:
        raise MediaError("no video stream")
    if not info.has_audio:
        raise MediaError("no audio stream")


_INPUT_DURATION = re.compile(r"^  Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?),", re.MULTILINE)


def input_info(stderr: str, index: int = 0) -> MediaInfo | None:
    """The :class:`MediaInfo` of input ``index`` as ffmpeg describes it in ``stderr`` (its
    "Input #index" block: ``Duration: HH:MM:SS.ss`` and one ``Stream #index:i: Video|Audio: …``
    line per stream), or None where that is not conclusive: no such block, no duration, or a video
    stream that is a cover picture (``attached pic``), which :func:`probe` tells apart."""
    start = stderr.find(f"Input #{index},")
    if start < 0:
        return None
    block = stderr[start:]
    ends = (block.find("Stream mapping:"), block.find("\nOutput #"), block.find("\nInput #"))
    block = block[: min((i for i in ends if i >= 0), default=len(block))]
    duration = _INPUT_DURATION.search(block)
    if duration is None:
        return None
    streams = re.findall(rf"^  Stream #{index}:\d+\S*: (Video|Audio): (.*)$", block, re.MULTILINE)
    if any(kind == "Video" and "(attached pic)" in rest for kind, rest in streams):
        return None
    hours, minutes, seconds = duration.groups()
    return MediaInfo(duration_s=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
                     has_video=any(kind == "Video" for kind, _ in streams),
                     has_audio=any(kind == "Audio" for kind, _ in streams))


def _decode_clip(path, fps, size, sample_rate) -> tuple[np.ndarray, np.ndarray, str]:
    """(frames, waveform, ffmpeg's stderr) of :func:`decode_clip`."""
    handle, audio_file = tempfile.mkstemp(prefix="avcmr-audio-", suffix=".f32")
    os.close(handle)
    try:
        try:
            raw, stderr = (
                ffmpeg.merge_outputs(_frames_output(path, fps, size, "pipe:"),
                                     _audio_output(path, sample_rate, audio_file))
                .overwrite_output()
                .run(capture_stdout=True, capture_stderr=True, quiet=True)
            )
        except ffmpeg.Error as error:
            raise MediaError(f"decode failed ({_last_line(error.stderr)})") from None
        waveform = np.fromfile(audio_file, dtype=np.float32)
    finally:
        os.unlink(audio_file)
    return _frames_from_bytes(raw, size), waveform, stderr.decode(errors="replace")


def encode_clip(
    path: str | Path,
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray,
    sample_rate: int,
    crf: int = 23,
) -> None:
    """Write an H.264 + AAC MP4 from uint8 RGB frames (n, h, w, 3) and a mono float waveform."""
    encode_clips([(path, frames, fps, audio, sample_rate)], crf)


def encode_clips(clips, crf: int = 23) -> None:
    """:func:`encode_clip` for each ``(path, frames, fps, audio, sample_rate)`` of ``clips``, all
    from one ffmpeg process (each output encoded on its own, byte-identical to a one-clip call).
    The raw frames and waveforms go through temporary files beside the outputs."""
    clips = list(clips)
    if not clips:
        return
    outputs, temporary = [], []
    try:
        for path, frames, fps, audio, sample_rate in clips:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            height, width = frames.shape[1:3]
            video_file, audio_file = path.with_suffix(".input.rgb"), path.with_suffix(".input.f32")
            temporary += [video_file, audio_file]
            np.ascontiguousarray(frames, dtype=np.uint8).tofile(video_file)
            np.ascontiguousarray(audio, dtype=np.float32).tofile(audio_file)
            video_in = ffmpeg.input(str(video_file), format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}",
                                    framerate=fps)
            audio_in = ffmpeg.input(str(audio_file), format="f32le", ar=sample_rate, ac=1)
            outputs.append(ffmpeg.output(
                video_in, audio_in, str(path),
                vcodec="libx264", pix_fmt="yuv420p", crf=crf, preset="veryfast",
                acodec="aac", audio_bitrate="64k", shortest=None,
                # Single-threaded x264 keeps output byte-identical across machines.
                threads=1, movflags="+faststart", map_metadata=-1, fflags="+bitexact",
                flags="+bitexact",
            ))
        try:
            ffmpeg.merge_outputs(*outputs).overwrite_output().run(capture_stdout=True, capture_stderr=True,
                                                                  quiet=True)
        except ffmpeg.Error as error:
            names = ", ".join(str(clip[0]) for clip in clips)
            raise RuntimeError(f"ffmpeg could not encode {names}: {_last_line(error.stderr)}") from None
    finally:
        for file in temporary:
            file.unlink(missing_ok=True)


def ffmpeg_version() -> str:
    out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0]


def _last_line(stderr: bytes | None) -> str:
    lines = [line.strip() for line in (stderr or b"").decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no message"

"""yt-dlp for real against a Range-capable HTTP server on 127.0.0.1 serving generated MP4s.

The generic extractor takes a direct MP4 URL (``url_template`` points at the server), so the whole
path of a YouTube download runs offline: format selection, the time window through ffmpeg, the
probe of what lands, retries, the failures table, resuming, and the Snakemake rule around it.
"""

import functools
import http.server
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO

from avcmr.data.listing import LISTING_SCHEMA
from avcmr.io.failures import FailureLog
from avcmr.io.parquet import read_table, write_table
from avcmr.media.download import DownloadSettings, NetworkDown, download_clips, is_permanent
from avcmr.media.ffmpeg_io import probe
from avcmr.stages.acquire import download_shard

WINDOW = (2.0, 6.0)


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (``python -m http.server`` has none: yt-dlp's ffmpeg
    window then yields an unusable file, DATA.md). Counts the requests per path."""

    requests: Counter

    def log_message(self, *args):
        pass

    def send_head(self):
        self.requests[self.path] += 1
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404, "File not found")
            return None
        data = path.read_bytes()
        size = len(data)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
            else:  # suffix range: the last N bytes
                start, end = max(0, size - int(match.group(2))), size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return None
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            start, end = 0, size - 1
            self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        import io

        return io.BytesIO(data[start : end + 1])


def encode(path: Path, seconds: float, faststart: bool = True) -> None:
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-f", "lavfi",
            "-i", "sine=frequency=440:sample_rate=16000", "-t", str(seconds), "-c:v", "libx264", "-preset",
            "veryfast", "-pix_fmt", "yuv420p", "-g", "10", "-c:a", "aac"]
    subprocess.run(args + (["-movflags", "+faststart"] if faststart else []) + [str(path)], check=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The served folder: good.mp4 (8 s), truncated.mp4 (its first 40 %: the index survives, the
    media data does not), truncated_tail.mp4 (an MP4 with its index at the end, cut in half),
    corrupt.mp4 (random bytes); missing.mp4 is absent (404)."""
    root = tmp_path_factory.mktemp("served")
    encode(root / "good.mp4", 8.0)
    data = (root / "good.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: int(len(data) * 0.4)])
    encode(root / "tail.mp4", 8.0, faststart=False)
    tail = (root / "tail.mp4").read_bytes()
    (root / "truncated_tail.mp4").write_bytes(tail[: len(tail) // 2])
    (root / "tail.mp4").unlink()
    (root / "corrupt.mp4").write_bytes(bytes(range(256)) * 80)
    handler = type("Handler", (RangeHandler,), {"requests": Counter()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}/{{youtube_id}}.mp4", "requests": handler.requests}
    httpd.shutdown()
    httpd.server_close()


def listing(names, shard=0):
    return pd.DataFrame({
        "clip_id": [f"{name}_clip" for name in names], "youtube_id": list(names),
        "start_s": WINDOW[0], "end_s": WINDOW[1], "label": "tone", "shard": shard,
    })


def settings(url, **overrides):
    values = {"url_template": url, "attempts": 2, "backoff_s": 0.01, "sleep_s": 0.0, "socket_timeout_s": 10.0}
    return {**values, **overrides}


NAMES = ["good", "missing", "truncated", "truncated_tail", "corrupt"]


@pytest.fixture(scope="module")
def shard_run(server, tmp_path_factory):
    work = tmp_path_factory.mktemp("download")
    write_table(pa_table(listing(NAMES)), work / "listing.parquet", LISTING_SCHEMA)
    download_shard(work / "listing.parquet", 0, work / "media", work / "clips.parquet", work / "failures.parquet",
                   settings(server["url"]), {"dataset": "test"})
    clips = read_table(work / "clips.parquet").to_pandas()
    failures = read_table(work / "failures.parquet").to_pandas().set_index("clip_id")
    return work, clips, failures


def pa_table(frame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def test_the_good_clip_lands_with_the_requested_window(shard_run):
    work, clips, _ = shard_run
    assert clips["clip_id"].tolist() == ["good_clip"]
    path = Path(clips["path"].iloc[0])
    assert path.parent == (work / "media").resolve() and path.name == "good_clip.mp4"
    info = probe(path)
    assert info.has_video and info.has_audio
    assert info.duration_s == pytest.approx(WINDOW[1] - WINDOW[0], abs=0.15)
    assert clips["duration_s"].iloc[0] == pytest.approx(info.duration_s)
    # Only accepted files stay: no temporary folders, no partial files.
    assert sorted(p.name for p in (work / "media").iterdir()) == ["good_clip.mp4"]


def test_each_bad_source_is_one_failure_row_with_its_reason(shard_run, server):
    _, _, failures = shard_run
    assert sorted(failures.index) == sorted(f"{name}_clip" for name in NAMES if name != "good")
    assert set(failures["stage"]) == {"download"}
    reasons = failures["reason"]
    assert "HTTP Error 404" in reasons["missing_clip"]
    # yt-dlp reports success for the truncated source; the probe refuses the short file, retried once.
    assert "downloaded file lasts" in reasons["truncated_clip"] and "(after 2 attempts)" in reasons["truncated_clip"]
    assert "ffmpeg exited with code" in reasons["truncated_tail_clip"]
    assert "ffmpeg exited with code" in reasons["corrupt_clip"]
    # Permanent errors are not retried.
    assert server["requests"]["/missing.mp4"] == 1


def test_a_second_run_resumes_without_fetching_again(shard_run, server, tmp_path):
    work, clips, _ = shard_run
    before = Counter(server["requests"])
    mtime = Path(clips["path"].iloc[0]).stat().st_mtime_ns
    failures = FailureLog("download")
    again = download_clips(listing(["good"]), work / "media", DownloadSettings.from_config(settings(server["url"])),
                           failures)
    assert again["clip_id"].tolist() == ["good_clip"] and not failures.rows
    assert server["requests"]["/good.mp4"] == before["/good.mp4"]
    assert Path(again["path"].iloc[0]).stat().st_mtime_ns == mtime


def test_an_unusable_leftover_file_is_fetched_again(server, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "good_clip.mp4").write_bytes(b"half a file")
    failures = FailureLog("download")
    clips = download_clips(listing(["good"]), media, DownloadSettings.from_config(settings(server["url"])), failures)
    assert not failures.rows
    assert probe(clips["path"].iloc[0]).duration_s == pytest.approx(4.0, abs=0.15)


def test_a_dead_network_stops_the_job_instead_of_recording_everything(tmp_path):
    dead = "http://127.0.0.1:9/{youtube_id}.mp4"  # discard port: connection refused
    failures = FailureLog("download")
    with pytest.raises(NetworkDown, match="in a row"):
        download_clips(listing(["a", "b", "c", "d"]), tmp_path, DownloadSettings.from_config(
            settings(dead, attempts=1, max_consecutive_transient=2)), failures)
    assert len(failures.rows) == 2


@pytest.mark.parametrize("message, permanent", [
    ("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader", True),
    ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access to this video", True),
    ("ERROR: [youtube] abc: The uploader has not made this video available in your country", True),
    ("ERROR: [youtube] abc: This video is no longer available due to a copyright claim", True),
    ("ERROR: unable to download video data: HTTP Error 404: Not Found", True),
    ("ERROR: unable to download video data: HTTP Error 429: Too Many Requests", False),
    ("ERROR: [youtube] abc: Sign in to confirm you're not a bot", False),
    ("ERROR: unable to download video data: <urlopen error timed out>", False),
])
def test_errors_are_sorted_into_permanent_and_retryable(message, permanent):
    assert is_permanent(message) is permanent


def test_unknown_download_settings_are_refused():
    with pytest.raises(ValueError, match="sleep_seconds"):
        DownloadSettings.from_config({"sleep_seconds": 1})


@pytest.mark.slow
def test_snakemake_download_rule_with_a_youtube_resource(server, tmp_path):
    """The rule around it: a vegas dataset whose manifest lists the served files, run by Snakemake."""
    manifest = tmp_path / "vegas.tsv"
    frame = listing(NAMES).drop(columns=["clip_id", "shard"])
    frame.to_csv(manifest, sep="\t", index=False)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["datasets"] = {"v": {
        "kind": "vegas", "manifest": str(manifest), "allow_random_weights": True,
        "backbone_weights": {"vggish": "random", "inception": "random"},
        "download": settings(server["url"]), "features": {"shard_size": 3},
    }}
    config["default_datasets"] = []
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "--cores", "2",
               "results/v/manifest.parquet", "results/v/failures/download/shard1.parquet",
               "--resources", "youtube=1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest_table = read_table(tmp_path / "results/v/manifest.parquet").to_pandas()
    good_id = "good_2000_6000"
    assert manifest_table["clip_id"].tolist() == [good_id]
    assert Path(manifest_table["path"].iloc[0]) == (tmp_path / f"resources/media/v/{good_id}.mp4").resolve()
    failures = pd.concat([read_table(tmp_path / f"results/v/failures/download/shard{i}.parquet").to_pandas()
                          for i in (0, 1)])
    assert sorted(failures["clip_id"]) == sorted(f"{n}_2000_6000" for n in NAMES if n != "good")
    listing_table = read_table(tmp_path / "results/v/listing.parquet").to_pandas()
    assert listing_table["shard"].tolist() == [0, 0, 0, 1, 1]

"""The one downloader (`avcmr.io.http_fetch.fetch_file`) against a Range-capable loopback server:
resume after an interrupted transfer, size and digest checks that keep nothing wrong, a file in place
kept or replaced, one-line errors; and the one digest helper (`avcmr.io.checksums.file_digest`).
The wrappers that map its errors to their own (weights, manifests) are tested beside them."""

import hashlib
import http.server
import re
import threading

import pytest

from avcmr.io.checksums import file_digest
from avcmr.io.http_fetch import FetchError, FileCheckError, fetch_file, partial_path, verify_file


class ArchiveServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path → bytes) with HTTP Range; counts the body bytes it sends; the next
    ``drop_after`` response is cut off after that many body bytes (an interrupted transfer); ``ranges``:
    the Range header of every request (None for none)."""

    def __init__(self, files):
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.files, self.bytes_served, self.drop_after, self.ranges = files, 0, None, []

    def url(self, name):
        return f"http://127.0.0.1:{self.server_port}/{name}"


class RangeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.ranges.append(self.headers.get("Range"))
        data = self.server.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        size, start = len(data), 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        body = data[start:]
        if self.server.drop_after is not None:
            body, self.server.drop_after = body[: self.server.drop_after], None
            self.close_connection = True
        # Counted before the write: a client that has read the whole body may go on (and the test
        # reset the count) before this thread runs its next line.
        self.server.bytes_served += len(body)
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = ArchiveServer({})
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def payload(n_blocks: int, seed: str = "x") -> bytes:
    return b"".join(hashlib.sha256(f"{seed}{i}".encode()).digest() * 200 for i in range(n_blocks))  # 6.4 kB each


# --- file_digest ---------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha256", "md5", "sha1", "blake2b"])
def test_file_digest_equals_hashlib_on_the_whole_bytes(tmp_path, algorithm):
    data = payload(100)  # 640 kB: more than one read buffer
    (tmp_path / "a.bin").write_bytes(data)
    assert file_digest(tmp_path / "a.bin", algorithm) == hashlib.new(algorithm, data).hexdigest()
    assert file_digest(str(tmp_path / "a.bin")) == hashlib.sha256(data).hexdigest()  # sha256 by default


def test_file_digest_of_several_files_is_that_of_their_bytes_in_the_given_order(tmp_path):
    (tmp_path / "x.index").write_bytes(b"index")
    (tmp_path / "x.data").write_bytes(b"data" * 1000)
    paths = [tmp_path / "x.data", tmp_path / "x.index"]
    assert file_digest(paths) == hashlib.sha256(b"data" * 1000 + b"index").hexdigest()
    assert file_digest(paths[::-1]) == hashlib.sha256(b"index" + b"data" * 1000).hexdigest()
    with pytest.raises(ValueError, match="unsupported hash type"):
        file_digest(paths, "sha257")


# --- fetch_file ----------------------------------------------------------------------------------


def test_an_interrupted_download_resumes_and_fetches_at_most_one_chunk_twice(server, tmp_path):
    data = payload(40)  # 256 kB
    server.files["VEGAS.zip"] = data
    server.drop_after = 100_001
    target, chunk = tmp_path / "VEGAS.zip", 16_384
    digests = {"sha256": hashlib.sha256(data).hexdigest()}
    with pytest.raises(FetchError, match="after 1 attempts.*next run resumes"):
        fetch_file(server.url("VEGAS.zip"), target, len(data), digests, attempts=1, chunk_bytes=chunk)
    assert not target.exists() and partial_path(target).stat().st_size == 100_001
    fetch_file(server.url("VEGAS.zip"), target, len(data), digests, attempts=1, chunk_bytes=chunk)
    assert target.read_bytes() == data and not partial_path(target).exists()
    assert server.ranges == [None, "bytes=100001-"]
    assert server.bytes_served - len(data) <= chunk
    # Within one call, a dropped connection is retried from the bytes on disk.
    server.drop_after, server.bytes_served = 50_000, 0
    again = fetch_file(server.url("VEGAS.zip"), tmp_path / "again.zip", digests=digests, attempts=2, backoff_s=0,
                       chunk_bytes=chunk)
    assert again.read_bytes() == data and server.bytes_served - len(data) <= chunk
    # A file already there and right is not fetched again.
    served = server.bytes_served
    fetch_file(server.url("VEGAS.zip"), target, len(data), digests)
    assert server.bytes_served == served


def test_a_file_in_place_that_fails_its_checks_is_fetched_again(server, tmp_path):
    data = payload(3)
    server.files["w.bin"] = data
    target = tmp_path / "w.bin"
    target.write_bytes(b"an older, damaged copy")
    fetch_file(server.url("w.bin"), target, digests={"md5": hashlib.md5(data).hexdigest()})
    assert target.read_bytes() == data and server.ranges == [None]
    # Without any check, whatever is in place is kept.
    target.write_bytes(b"placed by hand")
    fetch_file(server.url("w.bin"), target)
    assert target.read_bytes() == b"placed by hand" and server.ranges == [None]


@pytest.mark.parametrize("size, digests, check, message", [
    (None, {"sha256": "0" * 64}, "sha256", "sha256 [0-9a-f]{64}, expected 0{64}.*deleted"),
    (None, {"sha256": None, "md5": "F" * 32}, "md5", "md5 [0-9a-f]{32}, expected f{32}.*deleted"),
    (123, None, "bytes", r"6400 bytes, expected 123.*deleted"),
])
def test_wrong_bytes_stop_with_a_clear_error_and_keep_nothing(server, tmp_path, size, digests, check, message):
    server.files["VEGAS.zip"] = payload(1, "y")
    target = tmp_path / "VEGAS.zip"
    with pytest.raises(FileCheckError, match=message) as error:
        fetch_file(server.url("VEGAS.zip"), target, size, digests)
    assert error.value.check == check and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_is_a_one_line_error_without_retries(server, tmp_path):
    with pytest.raises(FetchError, match="HTTP 404") as error:
        fetch_file(server.url("nothing.zip"), tmp_path / "nothing.zip", attempts=3, backoff_s=60)
    assert "\n" not in str(error.value) and server.ranges == [None]
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_is_retried_then_a_one_line_error(tmp_path):
    with pytest.raises(FetchError, match=r"could not download http://127\.0\.0\.1:9/x after 2 attempts") as error:
        fetch_file("http://127.0.0.1:9/x", tmp_path / "x", attempts=2, backoff_s=0, timeout_s=5)
    assert "next run resumes" not in str(error.value)  # nothing on disk to resume from
    assert list(tmp_path.iterdir()) == []


def test_verify_file_checks_size_then_each_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    verify_file(path, 3, {"sha256": hashlib.sha256(b"abc").hexdigest().upper(), "md5": None})
    with pytest.raises(FileCheckError, match=re.escape(f"{path}: 3 bytes, expected 4")):
        verify_file(path, 4, {"sha256": "0" * 64})
    with pytest.raises(FileCheckError, match="label: md5"):
        verify_file(path, 3, {"sha256": hashlib.sha256(b"abc").hexdigest(), "md5": "0" * 32}, what="label")

"""GGUF downloads from a Hugging Face-shaped server on 127.0.0.1 (HF_ENDPOINT): progress, split
files, and resuming a partial download with a Range request."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog import pulling

FILES = {"/org/m-GGUF/resolve/main/m-Q4_K_M.gguf": b"G" * 300_000,
         "/org/big-GGUF/resolve/main/big-00001-of-00002.gguf": b"a" * 100_000,
         "/org/big-GGUF/resolve/main/big-00002-of-00002.gguf": b"b" * 50_000}


class _Hub(BaseHTTPRequestHandler):
    ranges: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes | None:
        return FILES.get(self.path)

    def do_HEAD(self) -> None:
        body = self._body()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()

    def do_GET(self) -> None:
        body = self._body()
        if self.path == "/api/models/org/m-GGUF":
            import json

            body = json.dumps({"siblings": [{"rfilename": "m-Q8_0.gguf"},
                                            {"rfilename": "m-Q4_K_M.gguf"},
                                            {"rfilename": "mmproj-m-f16.gguf"}]}).encode()
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        if self.headers.get("range"):
            _Hub.ranges.append(self.headers["range"])
            start = int(self.headers["range"].split("=")[1].rstrip("-"))
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])


@pytest.fixture
def hub(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    _Hub.ranges = []
    yield server
    server.shutdown()
    server.server_close()


def test_a_download_reports_progress_and_lands_whole(hub, tmp_path):
    events = []
    path = pulling.gguf_download("org/m-GGUF", "m-Q4_K_M.gguf", tmp_path,
                                 lambda d, t, s: events.append((d, t)))
    assert path.read_bytes() == FILES["/org/m-GGUF/resolve/main/m-Q4_K_M.gguf"]
    assert events[-1] == (300_000, 300_000) and all(t == 300_000 for _, t in events)


def test_a_partial_download_resumes_with_a_range_request(hub, tmp_path):
    (tmp_path / "m-Q4_K_M.gguf.partial").write_bytes(b"G" * 120_000)
    path = pulling.gguf_download("org/m-GGUF", "m-Q4_K_M.gguf", tmp_path, lambda *a: None)
    assert _Hub.ranges == ["bytes=120000-"] and path.stat().st_size == 300_000


def test_split_files_download_every_part_and_return_the_first(hub, tmp_path):
    events = []
    path = pulling.gguf_download("org/big-GGUF", "big-00001-of-00002.gguf", tmp_path,
                                 lambda d, t, s: events.append(d))
    assert path.name == "big-00001-of-00002.gguf"
    assert (tmp_path / "big-00002-of-00002.gguf").stat().st_size == 50_000
    assert events[-1] == 150_000


def test_a_missing_file_is_a_one_line_error(hub, tmp_path):
    with pytest.raises(pulling.PullError, match="has no file nope.gguf"):
        pulling.gguf_download("org/m-GGUF", "nope.gguf", tmp_path, lambda *a: None)


def test_without_a_file_name_the_wanted_quantization_is_picked(hub):
    files = pulling.hf_gguf_files("org/m-GGUF")
    assert pulling.hf_gguf_pick(files, "Q4_K_M") == "m-Q4_K_M.gguf"
    assert pulling.hf_gguf_pick(files, "Q2_K") == "m-Q4_K_M.gguf"  # first non-projector file

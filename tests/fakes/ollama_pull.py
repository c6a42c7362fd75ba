"""FakeOllama plus model management: POST /api/pull streaming progress and DELETE /api/delete,
as Ollama's docs/api.md describes them.

    fake = FakeOllamaPull(pullable={"qwen3:8b": [40_000_000, 1_200]}).start()
    fake.pull_delay = 0.01       # seconds between progress lines
    fake.pull_error = "..."      # fail the next pulls with this error line
    fake.stop()

A pull streams {"status": "pulling manifest"}, then per layer several
{"status": "pulling <digest12>", "digest": "sha256:...", "total": N, "completed": M} lines, then
"verifying sha256 digest", "writing manifest" and "success"; the tag then appears in /api/tags.
An unknown tag streams an error line, as Ollama does once the response has started."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any, Self

from tests.fakes.ollama_server import FakeOllama, _full_name, _Handler

PULL_CHUNKS = 5


class FakeOllamaPull(FakeOllama):
    def __init__(self, *, pullable: dict[str, list[int]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pullable = {_full_name(k): v for k, v in (pullable or {
            "qwen3:8b": [52_000_000, 1_400, 11_300], "nomic-embed-text:v1.5": [27_000_000]}).items()}
        self.pull_delay = 0.0
        self.pull_error = ""
        self.deleted: list[str] = []

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _PullHandler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="fake-ollama-pull", daemon=True)
        self._thread.start()
        return self


def _digest(tag: str, index: int) -> str:
    return "sha256:" + hashlib.sha256(f"{tag}#{index}".encode()).hexdigest()


class _PullHandler(_Handler):
    @property
    def fake(self) -> FakeOllamaPull:
        return self.server.fake  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        if self.path != "/api/pull":
            return super().do_POST()
        body, problem = self._read_body()
        self.fake.requests.append(("POST", self.path, body))
        if problem or not isinstance(body, dict):
            return self._error(400, problem or "invalid request body")
        name = body.get("model") or body.get("name")
        if not name:
            return self._error(400, "model is required")
        self._pull(_full_name(name), stream=body.get("stream", True) is not False)

    def _pull(self, name: str, *, stream: bool) -> None:
        fake = self.fake
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        layers = fake.pullable.get(name)
        if fake.pull_error or layers is None:
            lines.append({"error": fake.pull_error or "pull model manifest: file does not exist"})
        else:
            for index, total in enumerate(layers):
                digest = _digest(name, index)
                for step in range(PULL_CHUNKS + 1):
                    lines.append({"status": f"pulling {digest[7:19]}", "digest": digest,
                                  "total": total, "completed": total * step // PULL_CHUNKS})
            lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"},
                      {"status": "success"}]
        if not stream:
            last = lines[-1]
            return self._send_json(500 if "error" in last else 200, last)
        saved_delay, fake.token_delay = fake.token_delay, fake.pull_delay
        try:
            self._stream(lines)
        finally:
            fake.token_delay = saved_delay
        if layers is not None and not fake.pull_error and name not in fake.models:
            fake.models.append(name)

    def do_DELETE(self) -> None:
        body, problem = self._read_body()
        self.fake.requests.append(("DELETE", self.path, body))
        if self.path != "/api/delete":
            return self._not_found()
        if problem or not isinstance(body, dict):
            return self._error(400, problem or "invalid request body")
        given = body.get("model") or body.get("name") or ""
        name = _full_name(given)
        if name not in self.fake.models:
            return self._error(404, f"model '{given}' not found")
        self.fake.models.remove(name)
        if name in self.fake.loaded:
            self.fake.loaded.remove(name)
        self.fake.deleted.append(name)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False

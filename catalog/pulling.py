"""Getting weights onto a node: Ollama's /api/pull stream, a GGUF download from Hugging Face
(resumable, split files too), or a local file copy. Each reports progress as (done, total,
status) through a callback. Sync code: it runs in Celery tasks and commands."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx

Report = Callable[[int, int, str], None]  # (bytes done, bytes total, status)
CHUNK = 8 * 1024 * 1024
READ_TIMEOUT = 300.0  # a registry may pause between chunks; hours-long pulls are normal
_SPLIT = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


class PullError(RuntimeError):
    """The engine or the download failed; the message says why in one line."""


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(connect=10.0, read=READ_TIMEOUT, write=30.0, pool=10.0)


def ollama_pull(endpoint: str, tag: str, report: Report) -> None:
    """Streams POST /api/pull. Ollama pulls a model as several layers (blobs), each with its own
    total; overall progress is the sum over the layers seen so far."""
    layers: dict[str, tuple[int, int]] = {}
    last_status = ""
    try:
        with httpx.Client(timeout=_timeout(), trust_env=False) as client, client.stream(
                "POST", endpoint + "/api/pull", json={"model": tag, "stream": True}) as response:
            if response.status_code >= 400:
                response.read()
                raise PullError(f"ollama refused to pull {tag}: {_error_text(response)}")
            for line in response.iter_lines():
                if not line.strip():
                    continue
                event = _json_line(line)
                if event.get("error"):
                    raise PullError(f"ollama could not pull {tag}: {event['error']}")
                last_status = str(event.get("status") or last_status)
                if event.get("digest") and event.get("total"):
                    layers[event["digest"]] = (int(event.get("completed") or 0), int(event["total"]))
                done = sum(c for c, _ in layers.values())
                total = sum(t for _, t in layers.values())
                report(done, total, last_status)
    except httpx.HTTPError as exc:
        raise PullError(f"ollama at {endpoint} failed during the pull: {type(exc).__name__}: "
                        f"{exc}") from None
    if last_status != "success":
        raise PullError(f"ollama ended the pull of {tag} without success (last: {last_status!r})")


def _json_line(line: str) -> dict:
    try:
        event = json.loads(line)
    except ValueError:
        raise PullError(f"ollama sent a malformed progress line: {line[:80]!r}") from None
    return event if isinstance(event, dict) else {}


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.text)
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}"


def ollama_tags(endpoint: str) -> list[str]:
    with httpx.Client(timeout=10, trust_env=False) as client:
        response = client.get(endpoint + "/api/tags")
        response.raise_for_status()
        return [m.get("name", "") for m in response.json().get("models") or []]


def ollama_load(endpoint: str, tag: str, *, keep_alive: str | int = "5m") -> bool:
    """Loads (or with keep_alive=0 unloads) a model; best effort, so False on any failure (an
    embedding model refuses /api/generate, and that is fine)."""
    try:
        with httpx.Client(timeout=httpx.Timeout(600, connect=10), trust_env=False) as client:
            response = client.post(endpoint + "/api/generate",
                                   json={"model": tag, "keep_alive": keep_alive, "stream": False})
        return response.status_code == 200
    except httpx.HTTPError:
        return False


def ollama_delete(endpoint: str, tag: str) -> bool:
    """DELETE /api/delete; True when deleted, False when Ollama did not have it."""
    try:
        with httpx.Client(timeout=30, trust_env=False) as client:
            response = client.request("DELETE", endpoint + "/api/delete", json={"model": tag})
    except httpx.HTTPError as exc:
        raise PullError(f"ollama at {endpoint} is not reachable: {type(exc).__name__}") from None
    if response.status_code == 404:
        return False
    if response.status_code >= 400:
        raise PullError(f"ollama could not delete {tag}: {_error_text(response)}")
    return True


def split_parts(file: str) -> list[str]:
    """'x-00001-of-00003.gguf' -> all three part names; a single file -> itself."""
    found = _SPLIT.match(file)
    if not found:
        return [file]
    count = int(found.group("count"))
    return [f"{found.group('stem')}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]


def hf_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _hf_headers() -> dict[str, str]:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    return {"authorization": f"Bearer {token}"} if token else {}


def hf_gguf_files(repo: str) -> list[str]:
    """The .gguf files in a Hugging Face repo (its model API's `siblings`)."""
    try:
        with httpx.Client(timeout=30, trust_env=True, headers=_hf_headers(),
                          follow_redirects=True) as client:
            response = client.get(f"{hf_endpoint()}/api/models/{repo}")
    except httpx.HTTPError as exc:
        raise PullError(f"cannot reach Hugging Face for {repo}: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise PullError(f"Hugging Face has no model {repo} (HTTP {response.status_code})")
    names = [s.get("rfilename", "") for s in response.json().get("siblings") or []]
    return sorted(n for n in names if n.endswith(".gguf"))


def hf_gguf_pick(files: list[str], quant: str = "Q4_K_M") -> str | None:
    """The file for `quant` (first part of a split), else the first GGUF that is not a
    multimodal projector."""
    weights = [f for f in files if "mmproj" not in f.lower()]
    wanted = [f for f in weights if quant.lower() in f.lower()]
    for group in (wanted, weights):
        firsts = [f for f in group if not _SPLIT.match(Path(f).name)
                  or _SPLIT.match(Path(f).name).group("index") == "00001"]  # type: ignore[union-attr]
        if firsts:
            return firsts[0]
    return None


def gguf_download(repo: str, file: str, target_dir: Path, report: Report) -> Path:
    """Downloads `file` (and the rest of its split set) from `repo` into `target_dir`, resuming
    partial downloads; returns the path llama-server loads (the first part)."""
    parts = split_parts(file)
    folder = str(Path(file).parent) if "/" in file else ""
    sizes = [_remote_size(repo, f"{folder}/{Path(p).name}" if folder else p) for p in parts]
    total = sum(sizes)
    done_before = 0
    paths = []
    for part, size in zip(parts, sizes, strict=True):
        remote = f"{folder}/{Path(part).name}" if folder else part
        path = target_dir / Path(part).name
        status = f"downloading {path.name}"
        _download_one(f"{hf_endpoint()}/{repo}/resolve/main/{remote}", path, size,
                      lambda d, base=done_before, s=status: report(base + d, total, s))
        done_before += size
        paths.append(path)
    report(total, total, "downloaded")
    return paths[0]


def _remote_size(repo: str, file: str) -> int:
    url = f"{hf_endpoint()}/{repo}/resolve/main/{file}"
    try:
        with httpx.Client(timeout=30, trust_env=True, headers=_hf_headers(),
                          follow_redirects=True) as client:
            response = client.head(url)
    except httpx.HTTPError as exc:
        raise PullError(f"cannot reach {url}: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise PullError(f"{repo} has no file {file} (HTTP {response.status_code})")
    return int(response.headers.get("content-length") or 0)


def _download_one(url: str, path: Path, size: int, report: Callable[[int], None]) -> None:
    if path.is_file() and size and path.stat().st_size == size:
        report(size)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    have = partial.stat().st_size if partial.is_file() else 0
    headers = {**_hf_headers(), **({"range": f"bytes={have}-"} if have else {})}
    try:
        with httpx.Client(timeout=_timeout(), trust_env=True, follow_redirects=True) as client, \
                client.stream("GET", url, headers=headers) as response:
            if response.status_code >= 400:
                raise PullError(f"download of {url} failed: HTTP {response.status_code}")
            if have and response.status_code != 206:  # the server ignored Range: start over
                have = 0
            with open(partial, "ab" if have else "wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    have += len(chunk)
                    report(have)
    except httpx.HTTPError as exc:
        raise PullError(f"download of {url} broke off at {have} bytes ({type(exc).__name__}); "
                        "run the add again to resume") from None
    if size and have != size:
        raise PullError(f"download of {url} ended at {have} of {size} bytes; run the add again "
                        "to resume")
    os.replace(partial, path)


def file_copy(source: Path, target: Path, report: Report) -> Path:
    """Copies a local GGUF into the models directory with progress; a file already there is
    used in place."""
    source = source.expanduser().resolve()
    if not source.is_file():
        raise PullError(f"{source} does not exist or is not a file")
    if source == target.resolve():
        size = source.stat().st_size
        report(size, size, "in place")
        return source
    total = source.stat().st_size
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    done = 0
    try:
        with open(source, "rb") as src, open(partial, "wb") as out:
            while block := src.read(CHUNK):
                out.write(block)
                done += len(block)
                report(done, total, "copying")
        shutil.copystat(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target

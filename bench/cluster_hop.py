"""The two cluster numbers, measured on this machine over a real (namespaced) network:

  - the median overhead a worker hop adds to a request (leader -> worker agent -> engine,
    against leader -> its own engine, same fake engine, interleaved, non-streaming);
  - the time from a worker's death (every process in its namespace killed at once, at a random
    point between two of its heartbeats) to its removal from routing and to its `offline` state.

    sudo .venv/bin/python -m bench.cluster_hop [--requests 300] [--deaths 3]

Needs root and iproute2 (it builds the same three-namespace cluster as
tests/cluster/test_netns.py, and removes it afterwards)."""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster import netns  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per path")
    parser.add_argument("--deaths", type=int, default=3, help="workers to kill and time")
    args = parser.parse_args(argv)
    try:
        netns.ensure_iproute2()
    except netns.NetnsUnavailable as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2

    cluster = netns.three_box_cluster(Path(tempfile.mkdtemp(prefix="flock-bench-")))
    try:
        hop = netns.hop_overhead(cluster, requests=args.requests)
        deaths = []
        for _ in range(args.deaths):
            time.sleep(random.uniform(0, 5))  # die at a random point between two heartbeats
            deaths.append(netns.death_to_unroutable(cluster, "worker-b"))
            box = cluster.boxes["worker-b"]
            cluster.engine(box, ["model-b", "shared"], token_delay=0.05)
            cluster.join("worker-b", url="")
            cluster.wait_ready("worker-b", "model-b")
    finally:
        cluster.close()

    rows = [
        ("request via the leader's own engine (median)", f"{hop['direct_ms']:.2f} ms"),
        ("request via a worker's agent (median)", f"{hop['via_worker_ms']:.2f} ms"),
        ("overhead of the worker hop (median)", f"{hop['hop_ms']:.2f} ms"),
        ("worker death -> out of routing (median of "
         f"{len(deaths)})", f"{statistics.median(d['unroutable_s'] for d in deaths):.1f} s"),
        ("worker death -> out of routing (each)",
         ", ".join(f"{d['unroutable_s']:.1f}" for d in deaths) + " s"),
        ("worker death -> marked offline (median)",
         f"{statistics.median(d['offline_s'] for d in deaths):.1f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement'.ljust(width)}  value")
    print(f"{'-' * width}  -----")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    print(f"\n{hop['requests']} requests per path; heartbeat 5 s, offline after 3 missed (15 s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

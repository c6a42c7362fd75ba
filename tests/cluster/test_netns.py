"""The cluster across a real network: a leader and two workers, each in its own Linux network
namespace (veth pairs on a bridge, made and removed here), each worker with a fake engine bound to
its own 127.0.0.1 and reachable only through its agent. Needs root, as CI runs it.

The tests run in order on one cluster; the last one kills a worker."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.cluster import netns

pytestmark = pytest.mark.netns
REPORT: dict[str, dict] = {}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[netns.Cluster]:
    try:
        netns.ensure_iproute2()
    except netns.NetnsUnavailable as exc:
        pytest.skip(str(exc))
    built = netns.three_box_cluster(tmp_path_factory.mktemp("netns"))
    try:
        yield built
    finally:
        built.close()
        if REPORT:
            print("\nnetns measurements:", json.dumps(REPORT, indent=2))


def answer(cluster: netns.Cluster, model: str, **extra) -> str:
    with httpx.Client() as client:
        r = netns.chat(client, cluster, model, **extra)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def streamed_by(cluster: netns.Cluster, model: str, session: str = "") -> str:
    headers = {"authorization": f"Bearer {cluster.admin_key}"}
    if session:
        headers["x-session-id"] = session
    with httpx.stream("POST", cluster.leader_url + "/v1/chat/completions", headers=headers,
                      json={"model": model, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}, timeout=30) as r:
        raw = r.read().decode()
    assert r.status_code == 200 and raw.endswith("data: [DONE]\n\n"), raw
    return "worker-a" if "worker-a" in raw else "worker-b" if "worker-b" in raw else raw


def test_workers_join_over_the_network_and_heartbeat_their_models(cluster):
    nodes = cluster.nodes()
    assert {n["role"] for n in nodes.values()} == {"leader", "worker"} and len(nodes) == 3
    a, b = nodes["worker-a"], nodes["worker-b"]
    # worker-a found its address itself (the interface routing to the leader); b was given it
    assert a["address"] == cluster.boxes["worker-a"].agent_url
    assert b["address"] == cluster.boxes["worker-b"].agent_url
    assert a["models"] == ["model-a", "shared"] and b["models"] == ["model-b", "shared"]
    assert a["engine_local_endpoint"] == "http://127.0.0.1:8000"
    assert a["state"] == b["state"] == "ready" and a["last_seen_seconds"] < 6
    before = a["last_heartbeat_at"]
    time.sleep(5.5)
    assert cluster.nodes()["worker-a"]["last_heartbeat_at"] != before


def test_node_ls_on_the_leader_lists_all_three(cluster):
    out = cluster.manage(cluster.leader_box, "node", "ls")
    lines = out.splitlines()
    assert len(lines) == 4 and "MODELS" in lines[0]
    assert "worker-a" in out and "model-a, shared" in out and cluster.boxes["worker-b"].address in out
    rows = json.loads(cluster.manage(cluster.leader_box, "node", "ls", "--json"))
    assert sorted(r["name"] for r in rows if r["role"] == "worker") == ["worker-a", "worker-b"]


def test_each_model_is_routed_to_the_machine_that_serves_it(cluster):
    assert answer(cluster, "model-a") == "from worker-a"
    assert answer(cluster, "model-b") == "from worker-b"
    assert answer(cluster, "leader-model") == "from leader"
    assert streamed_by(cluster, "model-b") == "worker-b"


def test_the_engines_are_reachable_only_through_their_agents(cluster):
    box = cluster.boxes["worker-a"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{box.address}:{netns.ENGINE_PORT}/v1/models", timeout=2)
    assert httpx.get(f"{box.agent_url}/node/v1/engine/v1/models", timeout=5).status_code == 401


def concurrent_streams(cluster: netns.Cluster, count: int, session: str = "") -> list[str]:
    served: list[str] = []

    def one() -> None:
        served.append(streamed_by(cluster, "shared", session))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
        time.sleep(0.03)
    for t in threads:
        t.join()
    return served


def test_a_shared_model_is_balanced_by_requests_in_flight(cluster):
    served = Counter(concurrent_streams(cluster, 8))
    assert set(served) == {"worker-a", "worker-b"}
    assert min(served.values()) >= 3, served
    REPORT["balance"] = dict(served)


def test_a_session_stays_on_one_replica_while_it_is_healthy(cluster):
    busy = threading.Thread(target=concurrent_streams, args=(cluster, 3))
    busy.start()  # worker-a (first by name) takes these
    time.sleep(0.1)
    placed = streamed_by(cluster, "shared", session="conversation-1")
    busy.join()
    assert placed == "worker-b"
    # idle again: a new session would go to worker-a, but this one stays where its cache is
    assert streamed_by(cluster, "shared", session="someone-else") == "worker-a"
    assert [streamed_by(cluster, "shared", session="conversation-1") for _ in range(5)] == \
        ["worker-b"] * 5
    assert {answer(cluster, "shared", user="conversation-1") for _ in range(3)} == \
        {"from worker-b"}


def test_a_task_on_a_workers_queue_runs_on_that_worker(cluster):
    code = ("import json; from cluster.tasks import engine_probe; "
            "from flocksite.celery import node_queue; "
            "r = engine_probe.apply_async(args=['vllm', 'http://127.0.0.1:8000'], "
            "queue=node_queue('worker-b')); print(json.dumps(r.get(timeout=60)))")
    out = cluster.manage(cluster.leader_box, "shell", "-c", code, timeout=90)
    probe = json.loads(out.strip().splitlines()[-1])
    # 127.0.0.1 inside worker-b's namespace is worker-b's own engine
    assert probe["reachable"] and probe["models"] == ["model-b", "shared"]


def test_a_drained_worker_gets_no_new_requests_and_undrain_brings_it_back(cluster):
    admin = {"authorization": f"Bearer {cluster.admin_key}"}
    r = httpx.post(cluster.leader_url + "/admin/v1/nodes/worker-a/drain", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "draining"
    time.sleep(2.5)  # the router's node list is cached for 2 s
    assert {answer(cluster, "shared") for _ in range(6)} == {"from worker-b"}
    with httpx.Client() as client:
        assert netns.chat(client, cluster, "model-a").status_code == 404
    r = httpx.post(cluster.leader_url + "/admin/v1/nodes/worker-a/undrain", headers=admin)
    assert r.json()["state"] == "ready"
    time.sleep(2.5)
    assert answer(cluster, "model-a") == "from worker-a"
    audit = cluster.manage(cluster.leader_box, "audit", "--json")
    assert '"node.drain"' in audit and '"node.undrain"' in audit and '"node.register"' in audit


def test_the_hop_through_a_worker_costs_little(cluster):
    measured = netns.hop_overhead(cluster, requests=150)
    REPORT["hop"] = measured
    assert measured["hop_ms"] < 25, measured


def test_a_worker_killed_mid_run_is_routed_around_without_a_failed_request(cluster):
    # worker-b answers slowly now, so requests are in flight on it when it dies; half the
    # traffic belongs to the session the sticky test placed on it.
    cluster.engine(cluster.boxes["worker-b"], ["model-b", "shared"], reply_delay=0.2)
    stop = threading.Event()
    results: list[tuple[int, str]] = []

    def traffic(session: str) -> None:
        with httpx.Client(headers={"x-session-id": session} if session else {}) as client:
            while not stop.is_set():
                r = netns.chat(client, cluster, "shared")
                text = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 \
                    else r.text
                results.append((r.status_code, text))

    threads = [threading.Thread(target=traffic, args=(session,))
               for session in ("conversation-1", "conversation-1", "", "")]
    for t in threads:
        t.start()
    time.sleep(1.0)
    served_before = Counter(text for _, text in results)
    timing = netns.death_to_unroutable(cluster, "worker-b")
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    REPORT["death"] = timing
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:3]
    assert served_before["from worker-b"] > 0  # it was serving when it died
    assert timing["unroutable_s"] <= 16, timing  # one offline window after its last heartbeat
    assert timing["offline_s"] <= 17.5, timing
    REPORT["death"]["requests_during"] = len(results)


def test_a_worker_that_comes_back_is_the_same_node_and_routable_again(cluster):
    node_id = cluster.nodes()["worker-b"]["id"]
    box = cluster.boxes["worker-b"]
    cluster.engine(box, ["model-b", "shared"])
    cluster.join("worker-b", url="")  # no URL: the identity saved in its data dir
    back = cluster.wait_ready("worker-b", "model-b", timeout=60)
    assert back["id"] == node_id and back["state"] == "ready"
    deadline = time.monotonic() + 5  # the router's node list and failed listing are cached
    with httpx.Client() as client:
        while netns.chat(client, cluster, "model-b").status_code != 200:
            assert time.monotonic() < deadline, "worker-b did not come back into routing"
            time.sleep(0.2)
    assert answer(cluster, "model-b") == "from worker-b"

"""The Grafana dashboards in dashboards/ load in Grafana 10+ and query only metric names that
the gateway's /metrics really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_server import FakeOpenAIEngine

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
NAMES = ("cluster-overview.json", "per-model.json", "per-node.json")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("_sum", "_count")}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    keywords, label names (inside {} or by/without/on/ignoring (...)) or ranges."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def test_the_name_finder_reads_promql_as_prometheus_does():
    assert metric_names('histogram_quantile(0.95, sum by (le, model) (rate('
                        'flock_request_duration_seconds_bucket{model=~"$model"}[$__rate_interval])))'
                        ) == {"flock_request_duration_seconds_bucket"}
    assert metric_names('sum(rate(a_total{outcome="error"}[5m])) / clamp_min(sum(rate(b_total[5m]'
                        ')), 1e-9)') == {"a_total", "b_total"}


def dashboard_queries(board: dict) -> list[str]:
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(re.fullmatch(r"label_values\((\w+)\s*,\s*\w+\)",
                                      variable["query"]["query"]).group(1))
    return exprs


@pytest.mark.parametrize("name", NAMES)
def test_each_dashboard_is_a_grafana_10_dashboard(name):
    board = json.loads((DASHBOARDS / name).read_text())
    assert board["schemaVersion"] >= 38  # Grafana 10.0
    assert board["uid"].startswith("flock-") and board["title"].startswith("Flock / ")
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24


def exported_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture
def busy_gateway(gateway):
    """A gateway that has served a stream, fallen back once and heard a heartbeat."""
    from cluster.models import Node

    Node.objects.filter(name="leader").update(last_heartbeat_at=timezone.now())
    second = FakeOpenAIEngine().start()
    Node.objects.create(name="worker-b", role="worker", engine="vllm", engine_endpoint=second.url)
    gateway.engine.script.fail_status = 503
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={"model": "fake-model", "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status_code == 200
        r.read()
    yield gateway
    second.stop()


def test_every_metric_a_dashboard_queries_is_exported(busy_gateway):
    exported = exported_names(httpx.get(busy_gateway.url + "/metrics").text)
    missing = {}
    for name in NAMES:
        board = json.loads((DASHBOARDS / name).read_text())
        queried = set().union(*(metric_names(expr) for expr in dashboard_queries(board)))
        assert queried, name
        if queried - exported:
            missing[name] = sorted(queried - exported)
    assert not missing

"""/metrics: what a known set of requests leaves in the flock_* metrics, and who may read them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_server import FakeOpenAIEngine

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}

Samples = dict[tuple[str, frozenset], float]


def scrape(url: str, **kwargs) -> Samples:
    r = httpx.get(url + "/metrics", **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def second_engine(gateway) -> Iterator[FakeOpenAIEngine]:
    from cluster.models import Node

    engine = FakeOpenAIEngine().start()
    Node.objects.create(name="worker-b", role="worker", engine="vllm", engine_endpoint=engine.url)
    yield engine
    engine.stop()


def chat(gateway, key: str | None = None, **body) -> httpx.Response:
    return httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(key),
                      json={**CHAT, **body}, timeout=30)


def test_a_known_set_of_requests_is_counted_by_model_node_and_outcome(gateway):
    before = scrape(gateway.url)
    assert chat(gateway).status_code == 200
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={**CHAT, "stream": True}) as s:
        assert s.status_code == 200 and s.read().decode().endswith("[DONE]\n\n")
    r = httpx.post(gateway.v1 + "/messages", headers=gateway.headers(),
                   json={**CHAT, "max_tokens": 50})
    assert r.status_code == 200
    assert chat(gateway, model="no-such-model-3b").status_code == 404
    after = scrape(gateway.url)

    ok = {"model": "fake-model", "node": "leader", "outcome": "ok"}
    assert delta(before, after, "flock_requests_total", protocol="openai", **ok) == 2
    assert delta(before, after, "flock_requests_total", protocol="anthropic", **ok) == 1
    # A name no engine serves is not a label value of its own.
    assert delta(before, after, "flock_requests_total", model="other", node="none",
                 outcome="error") == 1
    assert not any(("model", "no-such-model-3b") in labels for _, labels in after)
    assert delta(before, after, "flock_request_duration_seconds_count", model="fake-model") == 3
    assert delta(before, after, "flock_time_to_first_token_seconds_count",
                 model="fake-model") == 1  # only the streamed request
    # The fake engine reports 7 prompt tokens and one token per word of its 5-word answer.
    assert delta(before, after, "flock_prompt_tokens_total", model="fake-model") == 21
    assert delta(before, after, "flock_completion_tokens_total", model="fake-model") == 15
    assert value(after, "flock_inflight_requests", node="leader") == 0
    assert value(after, "flock_usage_records_dropped_total") == 0
    assert ("flock_usage_buffer_depth", frozenset()) in after
    assert value(after, "flock_engine_up", node="leader") == 1
    assert value(after, "flock_node_info", node="leader", role="leader") == 1
    assert delta(before, after, "django_http_requests_total_by_method_total", method="POST") == 4
    # The request-level families, by view and status (the API routes' own middleware).
    by_status = "django_http_responses_total_by_status_view_method_total"
    assert delta(before, after, by_status, status="200", method="POST") == 3
    assert delta(before, after, by_status, status="404", method="POST") == 1
    assert delta(before, after, "django_http_responses_total_by_status_total", status="404") == 1
    assert delta(before, after, "django_http_responses_streaming_total") == 1
    assert delta(before, after, "django_http_responses_body_total_bytes_count") >= 3
    assert delta(before, after, "django_http_requests_latency_seconds_by_view_method_count",
                 method="POST") == 4
    assert delta(before, after,
                 "django_http_requests_latency_including_middlewares_seconds_count") >= 4


def test_a_fallback_counts_the_node_that_failed_and_the_one_that_served(gateway, second_engine):
    gateway.engine.script.fail_status = 503
    before = scrape(gateway.url)
    assert chat(gateway).status_code == 200
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={**CHAT, "stream": True}) as s:
        assert "[DONE]" in s.read().decode()
    after = scrape(gateway.url)
    assert delta(before, after, "flock_fallback_attempts_total", node="leader") == 2
    assert delta(before, after, "flock_requests_total", node="worker-b", outcome="ok") == 2
    assert delta(before, after, "flock_requests_total", node="leader") == 0
    assert value(after, "flock_engine_up", node="worker-b") == 1


def test_quota_and_rate_rejections_are_counted_by_reason(gateway):
    from accounts.services import key_create

    quota_key = key_create(name="tiny", scope="user", daily_token_quota=5).plaintext
    rate_key = key_create(name="slow", scope="user", rpm_limit=1).plaintext
    before = scrape(gateway.url)
    assert chat(gateway, quota_key).status_code == 429
    assert chat(gateway, rate_key).status_code == 200
    assert chat(gateway, rate_key).status_code == 429
    after = scrape(gateway.url)
    assert delta(before, after, "flock_rejections_total", reason="quota") == 1
    assert delta(before, after, "flock_rejections_total", reason="rate") == 1
    assert delta(before, after, "flock_rejections_total", reason="model_not_allowed") == 0
    assert delta(before, after, "flock_requests_total", outcome="error") == 2


def test_an_engine_that_does_not_answer_is_down(gateway):
    gateway.engine.stop()
    after = scrape(gateway.url)
    assert value(after, "flock_engine_up", node="leader") == 0


def test_model_labels_are_capped_and_the_rest_count_as_other(monkeypatch):
    from gateway import metrics

    monkeypatch.setattr(metrics, "_models", set())
    monkeypatch.setattr(metrics, "MODEL_LABELS_MAX", 2)
    assert metrics.model_label("a", served=True) == "a"
    assert metrics.model_label("b", served=True) == "b"
    assert metrics.model_label("c", served=True) == "other"
    assert metrics.model_label("a", served=False) == "a"
    assert metrics.model_label("never-served", served=False) == "other"


# --- who may read /metrics ------------------------------------------------------------------

def metrics_from(address: str, **headers: str):
    from django.test import Client

    return Client(REMOTE_ADDR=address).get("/metrics", headers=headers)


@pytest.mark.django_db(transaction=True)
def test_metrics_are_open_to_loopback_only(settings):
    assert metrics_from("127.0.0.1").status_code == 200
    assert metrics_from("::1").status_code == 200
    r = metrics_from("192.0.2.10")
    assert r.status_code == 401
    assert "FLOCK_METRICS_ALLOW" in r.json()["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_an_admin_key_or_the_allow_list_opens_metrics_to_other_addresses(settings):
    import dataclasses

    from accounts.services import key_create

    admin = key_create(name="ops", scope="admin").plaintext
    user = key_create(name="bob", scope="user").plaintext
    assert metrics_from("192.0.2.10", authorization=f"Bearer {admin}").status_code == 200
    assert metrics_from("192.0.2.10", authorization=f"Bearer {user}").status_code == 403
    assert metrics_from("192.0.2.10", authorization="Bearer nope").status_code == 401
    settings.FLOCK = dataclasses.replace(settings.FLOCK, metrics_allow=("192.0.2.0/24",))
    assert metrics_from("192.0.2.10").status_code == 200
    assert metrics_from("198.51.100.1").status_code == 401


def test_the_allow_list_setting_takes_addresses_and_cidrs_and_names_a_bad_one(tmp_path):
    from flocksite.config import ConfigError, load

    cfg = load({"FLOCK_DATA_DIR": str(tmp_path), "FLOCK_METRICS_ALLOW": "10.1.2.3/8, 192.0.2.7"})
    assert cfg.metrics_allow == ("10.0.0.0/8", "192.0.2.7/32")
    assert cfg.redacted()["observability"]["metrics_allow"] == ["10.0.0.0/8", "192.0.2.7/32"]
    with pytest.raises(ConfigError, match="FLOCK_METRICS_ALLOW"):
        load({"FLOCK_DATA_DIR": str(tmp_path), "FLOCK_METRICS_ALLOW": "10.0.0.0/33"})
    (tmp_path / "config.yaml").write_text("observability:\n  metrics_allow: [172.16.0.0/12]\n")
    assert load({"FLOCK_DATA_DIR": str(tmp_path)}).metrics_allow == ("172.16.0.0/12",)


def test_an_otlp_endpoint_with_credentials_is_redacted_for_display(tmp_path):
    from flocksite.config import load

    cfg = load({"FLOCK_DATA_DIR": str(tmp_path),
                "FLOCK_OTLP_ENDPOINT": "https://user:s3cret@otel.example:4318"})
    shown = cfg.redacted()["observability"]["otlp_endpoint"]
    assert "s3cret" not in shown and shown == "https://***@otel.example:4318/v1/traces"

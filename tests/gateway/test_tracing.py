"""Traces over OTLP/HTTP: a streamed request with one fallback arrives at a collector on
127.0.0.1 as one trace, in the caller's trace, shaped request -> router -> attempts -> engine
calls, and each engine is told its own parent span."""

from __future__ import annotations

import dataclasses
import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import free_port
from tests.fakes.openai_server import FakeOpenAIEngine

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Collector:
    """An OTLP/HTTP trace receiver: decodes each export into its spans."""

    def __init__(self) -> None:
        self.spans: list = []
        self.content_types: set[str] = set()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.content_types.add(self.headers["content-type"])
                export = ExportTraceServiceRequest.FromString(body)
                for resource in export.resource_spans:
                    for scope in resource.scope_spans:
                        collector.spans.extend(scope.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, name: str) -> list:
        return [s for s in self.spans if s.name == name]


class TracedServer:
    """The gateway with tracing on, served by a handler built after tracing was configured."""

    def __init__(self) -> None:
        import uvicorn
        from django.core.asgi import get_asgi_application

        self.port = free_port()
        config = uvicorn.Config(get_asgi_application(), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("traced gateway did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    yield found
    found.server.shutdown()


@pytest.fixture
def traced(gateway, collector, settings) -> Iterator[str]:
    from gateway import tracing

    settings.FLOCK = dataclasses.replace(settings.FLOCK,
                                         otlp_endpoint=collector.url + "/v1/traces")
    assert tracing.tracing_configure(settings.FLOCK)
    server = TracedServer()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
        tracing.tracing_shutdown()


@pytest.fixture
def second_engine(gateway) -> Iterator[FakeOpenAIEngine]:
    from cluster.models import Node

    engine = FakeOpenAIEngine().start()
    engine.script.text = "Answer from the second node"
    Node.objects.create(name="worker-b", role="worker", engine="vllm", engine_endpoint=engine.url)
    yield engine
    engine.stop()


def attributes(span) -> dict:
    found = {}
    for kv in span.attributes:
        value = kv.value
        found[kv.key] = getattr(value, value.WhichOneof("value"))
    return found


def test_a_streamed_request_with_one_fallback_exports_one_trace_tree(
        gateway, second_engine, traced, collector):
    from gateway import tracing

    gateway.engine.script.fail_status = 500
    caller = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
    with httpx.stream("POST", traced + "/v1/chat/completions", json=CHAT, timeout=30,
                      headers={**gateway.headers(), "traceparent": caller}) as r:
        assert r.status_code == 200
        assert "second" in r.read().decode()
    deadline = time.monotonic() + 10
    while not collector.named("router.Chat") and time.monotonic() < deadline:
        tracing.provider().force_flush()
        time.sleep(0.05)

    spans = collector.spans
    assert {s.trace_id.hex() for s in spans} == {TRACE_ID}
    assert collector.content_types == {"application/x-protobuf"}
    (request,) = [s for s in spans if s.parent_span_id.hex() == CALLER_SPAN]
    assert request.kind == request.SPAN_KIND_SERVER and request.name.startswith("POST ")
    (route,) = collector.named("router.Chat")
    assert route.parent_span_id == request.span_id
    assert attributes(route) | {"flock.request_id": ""} == attributes(route) | {
        "flock.request_id": "", "flock.protocol": "openai", "flock.stream": True,
        "flock.node": "worker-b", "flock.outcome": "ok", "flock.attempts": 2,
        "gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 5}

    first, second = sorted(collector.named("router.Chat.attempt"),
                           key=lambda s: s.start_time_unix_nano)
    assert first.parent_span_id == route.span_id == second.parent_span_id
    assert attributes(first)["flock.node"] == "leader" and attributes(first)["flock.attempt"] == 1
    assert first.status.code == first.status.STATUS_CODE_ERROR
    assert attributes(second)["flock.node"] == "worker-b" and attributes(second)["flock.attempt"] == 2
    assert attributes(second)["flock.outcome"] == "ok"

    calls = {s.parent_span_id: s for s in collector.named("vllm.Chat")}
    failed, served = calls[first.span_id], calls[second.span_id]
    assert failed.kind == failed.SPAN_KIND_CLIENT == served.kind
    assert failed.status.code == failed.status.STATUS_CODE_ERROR
    assert attributes(served)["gen_ai.usage.input_tokens"] == 7
    assert attributes(served)["gen_ai.usage.output_tokens"] == 5
    assert attributes(served)["gen_ai.request.model"] == "fake-model"
    # The router span covers the whole stream.
    assert route.start_time_unix_nano <= first.start_time_unix_nano
    assert route.end_time_unix_nano >= served.end_time_unix_nano

    # Each engine was told the engine-call span that called it.
    sent_first = gateway.engine.requests[-1][2]["traceparent"]
    sent_second = second_engine.requests[-1][2]["traceparent"]
    assert sent_first == f"00-{TRACE_ID}-{failed.span_id.hex()}-01"
    assert sent_second == f"00-{TRACE_ID}-{served.span_id.hex()}-01"


def test_without_an_endpoint_no_span_is_made_and_the_callers_context_goes_to_the_engine(gateway):
    from gateway import tracing

    assert tracing.tracer() is None
    caller = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
    r = httpx.post(gateway.v1 + "/chat/completions", json={**CHAT, "stream": False},
                   headers={**gateway.headers(), "traceparent": caller, "tracestate": "k=v"})
    assert r.status_code == 200
    sent = gateway.engine.requests[-1][2]
    assert sent["traceparent"] == caller and sent["tracestate"] == "k=v"
    r = httpx.post(gateway.v1 + "/chat/completions", json={**CHAT, "stream": False},
                   headers=gateway.headers())
    assert "traceparent" not in gateway.engine.requests[-1][2]


def test_the_endpoint_setting_takes_a_collector_base_url_or_host_and_port(tmp_path):
    from flocksite.config import load

    def endpoint(value: str) -> str:
        return load({"FLOCK_DATA_DIR": str(tmp_path), "FLOCK_OTLP_ENDPOINT": value}).otlp_endpoint

    assert endpoint("http://collector:4318") == "http://collector:4318/v1/traces"
    assert endpoint("collector:4318") == "http://collector:4318/v1/traces"
    assert endpoint("https://otel.example/v1/traces") == "https://otel.example/v1/traces"
    assert endpoint("") == ""
    (tmp_path / "config.yaml").write_text("observability:\n  otlp_endpoint: localhost:4318\n")
    assert load({"FLOCK_DATA_DIR": str(tmp_path)}).otlp_endpoint == \
        "http://localhost:4318/v1/traces"

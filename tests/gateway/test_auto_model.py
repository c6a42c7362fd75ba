"""`model: "auto"`: the default model, or a vision, tool or embedding model when the request
needs one, chosen from the catalog capabilities of the models actually served."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from tests.fakes.catalog_entries import write_entry

PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
       "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "w",
                                         "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture
def served(gateway, settings, tmp_path):
    """One engine serving an embedding model (listed first), a plain chat model, a vision model
    and a tool-calling model, each with its catalog entry."""
    write_entry(tmp_path, "fake-embed", capabilities=["embedding"])
    write_entry(tmp_path, "fake-model", capabilities=["chat"])
    write_entry(tmp_path, "fake-vision", capabilities=["chat", "vision"])
    write_entry(tmp_path, "fake-tools", capabilities=["chat", "code", "tools"])
    settings.FLOCK = dataclasses.replace(settings.FLOCK, catalog_dirs=(tmp_path,), default_model="")
    gateway.engine.script.models = ["fake-embed", "fake-model", "fake-vision", "fake-tools"]
    return gateway


def _chat(gateway, messages, **extra) -> httpx.Response:
    return httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), timeout=30,
                      json={"model": "auto", "messages": messages, **extra})


def _engine_model(gateway) -> str:
    return gateway.engine.last_body["model"]


def test_auto_is_the_first_served_chat_model_when_no_default_is_set(served):
    r = _chat(served, [{"role": "user", "content": "hi"}])
    assert r.status_code == 200 and r.json()["model"] == "fake-model"
    assert _engine_model(served) == "fake-model"
    [record] = served.usage_records()
    assert (record.model, record.requested_model) == ("fake-model", "auto")


def test_auto_is_the_configured_default_model(served, settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, default_model="fake-tools")
    r = _chat(served, [{"role": "user", "content": "hi"}])
    assert r.json()["model"] == "fake-tools"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_auto_with_an_image_goes_to_a_vision_model(served, stream):
    content = [{"type": "text", "text": "what is this?"},
               {"type": "image_url", "image_url": {"url": PNG}}]
    r = _chat(served, [{"role": "user", "content": content}], stream=stream)
    assert r.status_code == 200
    if stream:
        chunks = [json.loads(line[6:]) for line in r.text.splitlines()
                  if line.startswith("data: {")]
        assert {c["model"] for c in chunks} == {"fake-vision"}
    else:
        assert r.json()["model"] == "fake-vision"
    assert _engine_model(served) == "fake-vision"


def test_auto_with_an_image_on_the_messages_route_goes_to_a_vision_model(served):
    r = httpx.post(served.v1 + "/messages", headers=served.headers(), json={
        "model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG.split(",", 1)[1]}},
            {"type": "text", "text": "what is this?"}]}]})
    assert r.status_code == 200 and r.json()["model"] == "fake-vision"


def test_auto_with_tools_goes_to_a_tool_capable_model(served):
    r = _chat(served, [{"role": "user", "content": "weather?"}], tools=[TOOL])
    assert r.json()["model"] == "fake-tools" and _engine_model(served) == "fake-tools"
    r = httpx.post(served.v1 + "/messages", headers=served.headers(), json={
        "model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]})
    assert r.json()["model"] == "fake-tools"


def test_a_default_model_with_the_capability_is_kept(served, settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, default_model="fake-vision")
    write_entry(settings.FLOCK.catalog_dirs[0], "fake-vision",
                capabilities=["chat", "vision", "tools"])
    r = _chat(served, [{"role": "user", "content": "weather?"}], tools=[TOOL])
    assert r.json()["model"] == "fake-vision"


def test_auto_on_embeddings_is_an_embedding_model(served):
    r = httpx.post(served.v1 + "/embeddings", headers=served.headers(),
                   json={"model": "auto", "input": ["a", "b"]})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "fake-embed" and len(r.json()["data"]) == 2
    assert served.engine.requests[-1][0] == "/v1/embeddings"
    assert _engine_model(served) == "fake-embed"
    [record] = served.usage_records()
    assert (record.model, record.requested_model, record.endpoint) == ("fake-embed", "auto",
                                                                       "embeddings")

"""The official `openai` Python SDK against the live gateway (real HTTP, fake engine): what a user
of the SDK sees, including each failure arriving as the SDK's typed exception."""

from __future__ import annotations

import base64
import json
import struct
from typing import Literal, cast

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import LiveGateway

HI = [{"role": "user", "content": "hi"}]


def client_for(gateway: LiveGateway, key: str | None = None, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key or gateway.user_key, max_retries=0,
                         timeout=30, **options)


@pytest.fixture
def client(gateway: LiveGateway) -> openai.OpenAI:
    return client_for(gateway)


class GetWeather(BaseModel):
    city: str
    unit: Literal["c", "f"]


# --- answers ----------------------------------------------------------------------------------


def test_it_lists_the_served_models(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [m.id for m in models] == ["fake-embed", "fake-model"]
    assert all(m.object == "model" and m.owned_by and m.created > 0 for m in models)


def test_it_answers_a_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="fake-model", messages=HI)
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "fake-model"
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant",
                                                             "Hello from the fake engine")
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.total_tokens) == (7, 5, 12)
    assert completion._request_id and completion._request_id.startswith("req_")


def test_it_streams_text_and_ends_with_a_usage_chunk_when_asked(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="fake-model", messages=HI, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake engine"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    *answer, last = chunks
    assert last.choices == []
    assert last.usage is not None and last.usage.total_tokens == 12
    assert all(c.usage is None for c in answer)
    assert len({c.id for c in chunks}) == 1


def test_it_streams_without_usage_when_not_asked(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="fake-model", messages=HI, stream=True))
    assert all(c.choices and c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the fake engine"


def test_a_tool_call_round_trips_through_the_sdk(gateway: LiveGateway,
                                                 client: openai.OpenAI) -> None:
    gateway.engine.script.text = ""
    gateway.engine.script.tool_calls = [{"name": "GetWeather",
                                         "arguments": '{"city": "Paris", "unit": "c"}'}]
    question = [{"role": "user", "content": "What's the weather in Paris?"}]
    tools = [openai.pydantic_function_tool(GetWeather)]
    first = client.chat.completions.create(model="fake-model", messages=question, tools=tools,
                                           tool_choice="auto")
    assert first.choices[0].finish_reason == "tool_calls"
    message = first.choices[0].message
    [call] = message.tool_calls or []
    assert (call.id, call.type, call.function.name) == ("call_0", "function", "GetWeather")
    assert GetWeather.model_validate_json(call.function.arguments) == GetWeather(city="Paris",
                                                                                 unit="c")
    sent = gateway.engine.last_body
    assert sent["tools"] == [tools[0]] and sent["tool_choice"] == "auto"

    gateway.engine.script.tool_calls = []
    gateway.engine.script.text = "It is 18 degrees and cloudy in Paris."
    answer = client.chat.completions.create(model="fake-model", tools=tools, messages=[
        *question,
        message,  # the SDK's own message object, as its docs show
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 18, "sky": "cloudy"}'},
    ])
    assert answer.choices[0].message.content == "It is 18 degrees and cloudy in Paris."
    assert answer.choices[0].finish_reason == "stop"
    assistant, tool = gateway.engine.last_body["messages"][1:]
    assert assistant["role"] == "assistant" and not assistant.get("content")
    assert assistant["tool_calls"] == [{"id": "call_0", "type": "function", "function": {
        "name": "GetWeather", "arguments": '{"city": "Paris", "unit": "c"}'}}]
    assert tool == {"role": "tool", "tool_call_id": "call_0",
                    "content": '{"temp": 18, "sky": "cloudy"}'}


def test_the_sdks_stream_helper_assembles_a_streamed_tool_call(gateway: LiveGateway,
                                                              client: openai.OpenAI) -> None:
    gateway.engine.script.text = ""
    gateway.engine.script.tool_calls = [{"name": "GetWeather",
                                         "arguments": '{"city": "Tokyo", "unit": "f"}'}]
    with client.chat.completions.stream(model="fake-model", messages=HI,
                                        tools=[openai.pydantic_function_tool(GetWeather)],
                                        stream_options={"include_usage": True}) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [e.parsed_arguments for e in done] == [GetWeather(city="Tokyo", unit="f")]
    [call] = final.choices[0].message.tool_calls or []
    assert (call.id, call.function.name) == ("call_0", "GetWeather")
    assert json.loads(call.function.arguments) == {"city": "Tokyo", "unit": "f"}
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.prompt_tokens == 7


def test_it_embeds_as_floats(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="fake-embed", input=["a", "b"],
                                      encoding_format="float")
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == [round(0.1 + 0.01 * j, 4) for j in range(8)]
    assert result.data[1].embedding[0] == 0.2
    assert result.usage.prompt_tokens == 6 and result.usage.total_tokens == 6


def test_it_embeds_as_base64_which_the_sdk_decodes_by_default(client: openai.OpenAI) -> None:
    expected = [0.1 + 0.01 * j for j in range(8)]
    result = client.embeddings.create(model="fake-embed", input="a")  # the SDK asks for base64
    assert result.data[0].embedding == pytest.approx(expected, rel=1e-6)
    raw = client.embeddings.create(model="fake-embed", input="a", encoding_format="base64")
    packed = base64.b64decode(cast(str, raw.data[0].embedding))
    assert struct.unpack("<8f", packed) == pytest.approx(expected, rel=1e-6)


def test_it_answers_legacy_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="fake-model", prompt="Once upon", max_tokens=16)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Hello from the fake engine"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 12
    chunks = list(client.completions.create(model="fake-model", prompt="Once", stream=True,
                                            stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hello from the fake engine"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 12


# --- errors -----------------------------------------------------------------------------------


def test_a_missing_key_is_an_authentication_error(gateway: LiveGateway) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(gateway).chat.completions.create(
            model="fake-model", messages=HI, extra_headers={"Authorization": openai.Omit()})
    assert caught.value.status_code == 401
    assert caught.value.type == "authentication_error"


def test_a_wrong_key_is_an_authentication_error(gateway: LiveGateway) -> None:
    client = client_for(gateway, key="sk-flock-" + "x" * 44)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.models.list()
    assert caught.value.code == "invalid_api_key"
    assert "sk-flock-xxxx" not in caught.value.message


def test_a_malformed_field_is_a_bad_request_naming_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=[])
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    assert caught.value.param == "messages"


def test_an_unknown_model_is_not_found_with_code_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9-ultra", messages=HI)
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"
    assert "fake-model" in caught.value.message


def test_a_node_key_is_permission_denied(gateway: LiveGateway) -> None:
    from accounts.services import key_create

    node_key = key_create(name="worker", scope="node").plaintext
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client_for(gateway, key=node_key).chat.completions.create(model="fake-model",
                                                                  messages=HI)
    assert caught.value.status_code == 403
    assert caught.value.type == "permission_error"


def test_a_body_over_the_limit_is_a_413_status_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="fake-model", messages=HI,
                                       extra_body={"padding": "x" * (33 * 1024 * 1024)})
    assert caught.value.status_code == 413
    assert "FLOCK_MAX_BODY_MB" in caught.value.message


def test_an_engine_failure_is_an_internal_server_error(gateway: LiveGateway,
                                                       client: openai.OpenAI) -> None:
    gateway.engine.script.fail_status = 500
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="fake-model", messages=HI)
    assert caught.value.status_code == 502
    assert "engine exploded" in caught.value.message


def test_an_engine_failure_before_a_stream_starts_is_an_internal_server_error(
        gateway: LiveGateway, client: openai.OpenAI) -> None:
    gateway.engine.script.fail_status = 500
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="fake-model", messages=HI, stream=True)
    assert caught.value.status_code == 502
    assert caught.value.type == "server_error"


def test_a_failed_request_tells_the_sdk_the_request_id_it_was_recorded_under(
        gateway: LiveGateway, client: openai.OpenAI) -> None:
    gateway.engine.script.fail_status = 500
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="fake-model", messages=HI)
    row = gateway.usage_records()[-1]
    assert row.outcome == "error"
    assert caught.value.request_id == row.request_id


def test_an_unreachable_engine_is_an_internal_server_error_naming_it(
        gateway: LiveGateway, client: openai.OpenAI) -> None:
    from cluster.models import Node

    Node.objects.update(engine_endpoint="http://127.0.0.1:9")
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="fake-model", messages=HI)
    assert caught.value.status_code == 503
    assert caught.value.code == "engine_unreachable"
    assert "http://127.0.0.1:9" in caught.value.message


def test_an_engine_dying_mid_stream_raises_an_api_error_while_iterating(
        gateway: LiveGateway, client: openai.OpenAI) -> None:
    gateway.engine.script.die_after_chunks = 3
    stream = client.chat.completions.create(model="fake-model", messages=HI, stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hello from"
    assert caught.value.type == "server_error"
    assert caught.value.code == "engine_error"
    assert "ended the stream early" in caught.value.message

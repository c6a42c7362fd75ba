"""The Anthropic Messages surface: POST /v1/messages and /v1/messages/count_tokens."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from gateway.admission import admit
from gateway.attempts import PING, call_first, open_stream
from gateway.auto_model import need_of
from gateway.balancing import session_of
from gateway.canonical import ChatRequest, Event
from gateway.dialects import anthropic_errors, anthropic_parse, anthropic_render
from gateway.errors import GatewayError, InvalidRequest
from gateway.limits import estimate_prompt_tokens, fit_to, reservation_prompt_tokens
from gateway.passthrough import relay_count_tokens, relay_messages, relayable
from gateway.pipeline import Accounting
from gateway.responses import json_response, read_json
from gateway.router import router as model_router
from gateway.streaming import accounted_sse, sse_response

router = Router()


@router.post("")
async def messages(request: HttpRequest) -> HttpResponse:
    data = read_json(request)
    req = await _parse(data)
    model = req.model if req else data["model"].strip()
    acct = Accounting.of(request, protocol="anthropic", endpoint="messages", model=model,
                         stream=data.get("stream") is True)
    acct.prompt_estimate = estimate_prompt_tokens(req) if req else len(request.body) // 4
    candidates = await acct.watch(model_router.candidates(
        model, session=session_of(request, req.user if req else None),
        need=need_of(req) if req else None))
    max_tokens = data.get("max_tokens") if isinstance(data.get("max_tokens"), int) else None
    candidates = await acct.watch(admit(
        acct, model, candidates,
        prompt_tokens=reservation_prompt_tokens(req) if req else len(request.body) // 2,
        max_tokens=req.max_tokens if req else max_tokens))
    if relayable(candidates) or req is None:
        return await relay_messages(request, acct, request.body, data, candidates)
    message_id = "msg_" + uuid.uuid4().hex[:24]
    if not req.stream:
        result = await acct.watch(call_first(
            candidates, acct, lambda c: c.engine.chat(fit_to(req, c, acct.prompt_estimate), c.model)))
        acct.answered(result.usage)
        await acct.finish()
        body = anthropic_render.message(result, id=message_id, model=acct.model)
        return json_response(body)
    events = await acct.watch(open_stream(
        candidates, acct,
        lambda c: c.engine.chat_stream(fit_to(req, c, acct.prompt_estimate), c.model)))
    streamer = anthropic_render.MessageStreamer(id=message_id, model=acct.model,
                                                input_estimate=acct.prompt_estimate)

    def feed(event: Event) -> list[bytes]:
        return streamer.ping() if event is PING else streamer.feed(event)

    def error(exc: GatewayError) -> list[bytes]:
        return streamer.error(anthropic_errors.error_type(exc), exc.message)

    body = accounted_sse(events, acct, begin=streamer.start, feed=feed, end=streamer.end,
                         error=error)
    return sse_response(body, acct)


async def _parse(data: Any) -> ChatRequest | None:
    """The canonical request; None for a body this gateway cannot translate that goes to an
    Anthropic upstream as it is anyway (a PDF document, say), which will judge it itself."""
    try:
        return anthropic_parse.parse_messages(data)
    except InvalidRequest:
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, str) or not model.strip():
            raise
        try:
            relay = relayable(await model_router.candidates(model.strip()))
        except GatewayError:
            relay = False
        if not relay:
            raise
        return None


@router.post("/count_tokens")
async def count_tokens(request: HttpRequest) -> HttpResponse:
    data = read_json(request)
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, str) and model.strip():
        try:
            upstreams = await model_router.candidates(model.strip())
        except GatewayError:  # said below, after the body is checked
            upstreams = []
        if relayable(upstreams):
            return await relay_count_tokens(request, data, upstreams)
    req = anthropic_parse.parse_messages(data, count_only=True)
    candidates = await model_router.candidates(req.model)
    count = None
    for candidate in candidates:
        try:
            count = await candidate.engine.count_tokens(req, candidate.model)
        except GatewayError:  # an engine without the endpoint, or one that is down
            continue
        break
    return json_response({"input_tokens": count if count is not None
                         else estimate_prompt_tokens(req)})

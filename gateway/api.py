"""The OpenAI-compatible surface under /v1 (async django-ninja views)."""

from __future__ import annotations

import logging
import time

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.errors import HttpError as NinjaHttpError

from gateway.admission import admit
from gateway.api_anthropic import router as anthropic_router
from gateway.attempts import PING, call_first, open_stream
from gateway.auth import InferenceKey
from gateway.auto_model import EMBEDDING, need_of
from gateway.balancing import session_of
from gateway.canonical import Event, Finish, TextDelta, Usage
from gateway.dialects import anthropic_render, openai_errors, openai_parse, openai_render
from gateway.errors import AuthenticationFailed, GatewayError, ModelNotFound
from gateway.limits import (
    estimate_prompt_tokens,
    fit_to,
    reservation_prompt_tokens,
    text_reservation_tokens,
)
from gateway.pipeline import Accounting, estimate_tokens, new_id
from gateway.responses import dialect_of, error_response, json_response, read_json
from gateway.router import router
from gateway.sse import DONE, PING_FRAME, frame
from gateway.streaming import accounted_sse, sse_response

log = logging.getLogger("flock.gateway")

api = NinjaAPI(title="Flock", version="1", urls_namespace="v1", auth=InferenceKey(),
               docs_url=None, openapi_url=None)


api.add_router("/messages", anthropic_router)


@api.exception_handler(GatewayError)
def _gateway_error(request: HttpRequest, exc: GatewayError) -> HttpResponse:
    return error_response(request, exc)


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, AuthenticationFailed("Invalid API key."))


@api.exception_handler(NinjaHttpError)
def _http_error(request: HttpRequest, exc: NinjaHttpError) -> HttpResponse:
    error = GatewayError(str(exc))
    error.status = exc.status_code
    error.kind = "not_found" if exc.status_code == 404 else "invalid_request"
    return error_response(request, error)


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("unhandled error on %s", request.path)
    return error_response(request, GatewayError("The gateway hit an internal error."))


def _openai_error_frames(exc: GatewayError) -> list[bytes]:
    return [frame(openai_errors.error_body(exc)), DONE]


@api.get("/models")
async def list_models(request: HttpRequest) -> HttpResponse:
    seen: dict[str, str] = {}
    for _node, engine, model in await router.available():
        seen.setdefault(model.id, engine.kind)
    if dialect_of(request) == "anthropic":
        return json_response(anthropic_render.model_list(sorted(seen), created=time.time()))
    return json_response(openai_render.model_list(sorted(seen.items()), int(time.time())))


@api.get("/models/{path:model_id}")
async def retrieve_model(request: HttpRequest, model_id: str) -> HttpResponse:
    for _node, engine, model in await router.available():
        if model.id == model_id:
            if dialect_of(request) == "anthropic":
                body = anthropic_render.model_list([model.id], created=time.time())["data"][0]
            else:
                body = openai_render.model_list([(model.id, engine.kind)], int(time.time()))["data"][0]
            return json_response(body)
    raise ModelNotFound(f"The model '{model_id}' does not exist or is not served by any engine.",
                        param="model")


@api.post("/chat/completions")
async def chat_completions(request: HttpRequest) -> HttpResponse:
    req = openai_parse.parse_chat(read_json(request))
    acct = Accounting.of(request, protocol="openai", endpoint="chat.completions",
                      model=req.model, stream=req.stream)
    acct.prompt_estimate = estimate_prompt_tokens(req)
    candidates = await acct.watch(router.candidates(
        req.model, session=session_of(request, req.user), need=need_of(req)))
    candidates = await acct.watch(admit(acct, req.model, candidates,
                                        prompt_tokens=reservation_prompt_tokens(req),
                                        max_tokens=req.max_tokens))
    chat_id = new_id("chatcmpl")
    if not req.stream:
        result = await acct.watch(call_first(
            candidates, acct, lambda c: c.engine.chat(fit_to(req, c, acct.prompt_estimate), c.model)))
        acct.answered(result.usage)
        await acct.finish()
        body = openai_render.chat_completion(result, id=chat_id, model=acct.model,
                                             created=acct.created)
        return json_response(body)
    events = await acct.watch(open_stream(
        candidates, acct,
        lambda c: c.engine.chat_stream(fit_to(req, c, acct.prompt_estimate), c.model)))
    chunker = openai_render.ChatChunker(id=chat_id, model=acct.model, created=acct.created,
                                        include_usage=req.include_usage)
    def feed(event: Event) -> list[bytes]:
        if event is PING:
            return [PING_FRAME]
        chunker.model = acct.model  # a fallback may have taken over while we sent keep-alives
        return [frame(c) for c in chunker.feed(event)]

    body = accounted_sse(
        events, acct,
        feed=feed,
        end=lambda: [*(frame(c) for c in chunker.end()), DONE],
        error=_openai_error_frames,
    )
    return sse_response(body, acct)


@api.post("/completions")
async def completions(request: HttpRequest) -> HttpResponse:
    req = openai_parse.parse_completion(read_json(request))
    acct = Accounting.of(request, protocol="openai", endpoint="completions",
                      model=req.model, stream=req.stream)
    acct.prompt_estimate = estimate_tokens(req.prompt if isinstance(req.prompt, str) else "")
    candidates = await acct.watch(router.candidates(req.model, session=session_of(request)))
    candidates = await acct.watch(admit(acct, req.model, candidates,
                                        prompt_tokens=text_reservation_tokens(
                                            req.prompt if isinstance(req.prompt, list)
                                            else [req.prompt]),
                                        max_tokens=req.max_tokens))
    cmpl_id = new_id("cmpl")
    if not req.stream:
        result = await acct.watch(call_first(candidates, acct,
                                             lambda c: c.engine.complete(req, c.model)))
        acct.answered(result.usage)
        await acct.finish()
        body = openai_render.text_completion(result, id=cmpl_id, model=acct.model,
                                             created=acct.created)
        return json_response(body)
    events = await acct.watch(open_stream(candidates, acct,
                                          lambda c: c.engine.complete_stream(req, c.model)))

    def feed(event: Event) -> list[bytes]:
        if event is PING:
            return [PING_FRAME]
        if isinstance(event, TextDelta):
            return [frame(openai_render.completion_chunk(
                id=cmpl_id, model=acct.model, created=acct.created, text=event.text,
                finish_reason=None))]
        if isinstance(event, Finish):
            return [frame(openai_render.completion_chunk(
                id=cmpl_id, model=acct.model, created=acct.created, text="",
                finish_reason=event.reason))]
        return []

    def end() -> list[bytes]:
        frames = []
        if req.include_usage and acct.usage is not None:
            frames.append(frame({"id": cmpl_id, "object": "text_completion",
                                 "created": acct.created, "model": acct.model, "choices": [],
                                 "usage": openai_render.usage_body(acct.usage)}))
        return [*frames, DONE]

    body = accounted_sse(events, acct, feed=feed, end=end, error=_openai_error_frames)
    return sse_response(body, acct)


@api.post("/embeddings")
async def embeddings(request: HttpRequest) -> HttpResponse:
    req = openai_parse.parse_embeddings(read_json(request))
    acct = Accounting.of(request, protocol="openai", endpoint="embeddings", model=req.model)
    acct.prompt_estimate = sum(estimate_tokens(t) if isinstance(t, str) else len(t)
                               for t in req.input)
    candidates = await acct.watch(router.candidates(req.model, session=session_of(request),
                                                    need=EMBEDDING))
    candidates = await acct.watch(admit(acct, req.model, candidates,
                                        prompt_tokens=text_reservation_tokens(req.input),
                                        max_tokens=0))
    result = await acct.watch(call_first(candidates, acct, lambda c: c.engine.embed(req, c.model)))
    acct.answered(Usage(prompt_tokens=result.prompt_tokens))
    await acct.finish()
    body = openai_render.embeddings(result, model=acct.model, encoding_format=req.encoding_format)
    return json_response(body)

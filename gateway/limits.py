"""Fitting a request to the engine that will serve it, and estimating tokens where no tokenizer
is at hand."""

from __future__ import annotations

import dataclasses
import json
import math

from gateway.canonical import ChatRequest
from gateway.router import Candidate

CHARS_PER_TOKEN = 4
PER_MESSAGE_TOKENS = 4
MIN_ANSWER_TOKENS = 16


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """About one token per four characters of text, plus a few per message for the chat
    template's markers and the tool definitions as JSON. Used for `count_tokens` where the engine
    has no tokenizer endpoint, and for quota reservations."""
    return math.ceil(_chars(request) / CHARS_PER_TOKEN) + PER_MESSAGE_TOKENS * len(request.messages)


def reservation_prompt_tokens(request: ChatRequest) -> int:
    """A deliberately high guess at the prompt's size, for quota reservations: real tokenizers
    rarely give fewer than three characters a token, and chat templates add a few tokens per
    message and some around the whole prompt. Reserving too much only delays a request near
    the end of a quota; reserving too little would let concurrent requests overspend it."""
    return math.ceil(_chars(request) / 3) + 8 * len(request.messages) + 16


def text_reservation_tokens(texts: list) -> int:
    """The same high guess for raw prompts and embedding inputs (token-id lists count as-is)."""
    return sum(len(t) if isinstance(t, list) else math.ceil(len(str(t)) / 3) + 16 for t in texts)


def _chars(request: ChatRequest) -> int:
    chars = 0
    for message in request.messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or []:
            chars += len(call.get("function", {}).get("arguments", ""))
    if request.tools:
        chars += len(json.dumps(request.tools))
    return chars


def fit_to(request: ChatRequest, candidate: Candidate, prompt_tokens: int) -> ChatRequest:
    """Clamps max_tokens to what the candidate's context has left (Claude Code asks for 32k-64k
    whatever the model; vLLM refuses more than the context holds)."""
    if not candidate.context_length or request.max_tokens is None:
        return request
    room = candidate.context_length - int(prompt_tokens * 1.2) - 16
    limit = max(room, MIN_ANSWER_TOKENS)
    if request.max_tokens <= limit:
        return request
    return dataclasses.replace(request, max_tokens=limit)

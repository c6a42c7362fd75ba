"""The one canonical shape every dialect is parsed into and every engine driver speaks.

Requests keep OpenAI's chat message format (the lingua franca of the engines); streamed answers
are a sequence of small events. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    tools: list[dict[str, Any]] | None = None  # OpenAI function tools
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    include_usage: bool = False  # the caller asked for a usage chunk (OpenAI streams)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: str | None = None
    thinking: bool | None = None  # None: engine default; True/False: ask for/against reasoning
    extra: dict[str, Any] = field(default_factory=dict)  # other sampling options passed through


@dataclass
class CompletionRequest:
    model: str
    prompt: str | list[Any]
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    include_usage: bool = False
    seed: int | None = None
    echo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EmbeddingRequest:
    model: str
    input: list[str] | list[list[int]]
    dimensions: int | None = None
    encoding_format: str = "float"


# --- streamed events -------------------------------------------------------------------------


@dataclass
class TextDelta:
    text: str


@dataclass
class ReasoningDelta:
    text: str


@dataclass
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class Finish:
    reason: str  # stop | length | tool_calls | content_filter
    stop_sequence: str | None = None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


Event = TextDelta | ReasoningDelta | ToolCallDelta | Finish | Usage


# --- whole answers ---------------------------------------------------------------------------


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON string, as OpenAI sends it


@dataclass
class ChatResult:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)


@dataclass
class CompletionResult:
    text: str = ""
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)


@dataclass
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int = 0


@dataclass
class EngineModel:
    id: str
    loaded: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    context_length: int | None = None  # tokens the engine serves the model with, when it says


def collect_chat(events: list[Event]) -> ChatResult:
    """Folds a list of stream events into one answer (used by tests and by drivers whose engine
    only streams)."""
    result = ChatResult()
    calls: dict[int, ToolCall] = {}
    for event in events:
        if isinstance(event, TextDelta):
            result.text += event.text
        elif isinstance(event, ReasoningDelta):
            result.reasoning += event.text
        elif isinstance(event, ToolCallDelta):
            call = calls.setdefault(event.index, ToolCall(id="", name="", arguments=""))
            call.id = event.id or call.id
            call.name = event.name or call.name
            call.arguments += event.arguments
        elif isinstance(event, Finish):
            result.finish_reason = event.reason
            result.stop_sequence = event.stop_sequence
        elif isinstance(event, Usage):
            result.usage = event
    result.tool_calls = [calls[i] for i in sorted(calls)]
    return result

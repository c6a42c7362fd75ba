"""The engine driver contract. One module per engine implements it; only drivers do network I/O
to engines, and they raise only the gateway's own error types (gateway.errors)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from gateway.canonical import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    CompletionResult,
    EmbeddingRequest,
    EmbeddingResult,
    EngineModel,
    Event,
)

# How each engine is started, for error messages and `doctor`.
START_HINTS = {
    "ollama": "ollama serve",
    "vllm": "vllm serve <model> --port 8000",
    "mlx": "mlx_lm.server --model <model> --port 8088",
    "llamacpp": "llama-server -m <model.gguf> --port 8081",
}


class Engine(ABC):
    """A running inference engine reachable over HTTP at `endpoint`.

    `model` arguments are the engine's own model ids (the router resolves the caller's name).
    Streams are async generators; closing one early (client gone) must close the upstream
    request so the engine stops generating.
    """

    kind: str = ""

    def __init__(self, endpoint: str, *, api_key: str = "", timeout: float = 600.0,
                 connect_timeout: float = 5.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def request_headers(self) -> dict[str, str]:
        """Headers for every request to the engine (drivers override for their own auth)."""
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    @property
    def start_hint(self) -> str:
        return START_HINTS.get(self.kind, "")

    @abstractmethod
    async def list_models(self) -> list[EngineModel]:
        """The models the engine can serve now."""

    @abstractmethod
    async def health(self) -> bool:
        """True when the engine answers."""

    @abstractmethod
    async def chat(self, request: ChatRequest, model: str) -> ChatResult: ...

    @abstractmethod
    def chat_stream(self, request: ChatRequest, model: str) -> AsyncIterator[Event]: ...

    @abstractmethod
    async def complete(self, request: CompletionRequest, model: str) -> CompletionResult: ...

    @abstractmethod
    def complete_stream(self, request: CompletionRequest, model: str) -> AsyncIterator[Event]: ...

    @abstractmethod
    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResult: ...

    async def count_tokens(self, request: ChatRequest, model: str) -> int | None:
        """The prompt's token count by the engine's own tokenizer; None where it has none."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint}>"

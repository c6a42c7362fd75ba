"""Engine kind -> driver class."""

from __future__ import annotations

from gateway.engines.base import Engine


def driver_class(kind: str) -> type[Engine]:
    if kind == "ollama":
        from gateway.engines.ollama import OllamaEngine

        return OllamaEngine
    if kind == "anthropic":
        from gateway.engines.anthropic_vendor import AnthropicEngine

        return AnthropicEngine
    if kind in ("vllm", "mlx", "llamacpp"):
        from gateway.engines.openai_compat import OpenAICompatEngine

        return OpenAICompatEngine
    raise ValueError(f"unknown engine kind {kind!r}")


def make_engine(kind: str, endpoint: str, *, api_key: str = "", timeout: float = 600.0,
                connect_timeout: float = 5.0) -> Engine:
    engine = driver_class(kind)(endpoint, api_key=api_key, timeout=timeout,
                                connect_timeout=connect_timeout)
    engine.kind = kind
    return engine

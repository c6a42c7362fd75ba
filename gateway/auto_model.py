"""`model: "auto"`: the default model, unless the request needs something it lacks.

Images want a vision-capable model, tools a tool-capable one, /v1/embeddings an embedding model;
what a model can do comes from the catalog entries of the models actually served."""

from __future__ import annotations

from typing import Any

from gateway.canonical import ChatRequest
from gateway.fallback import CatalogIndex

AUTO_NAMES = ("auto", "default", "")
VISION, TOOLS, EMBEDDING = "vision", "tools", "embedding"


def is_auto(model: str) -> bool:
    return model.strip().lower() in AUTO_NAMES


def _has_image(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") in ("image_url", "image", "input_image")
        for part in content)


def need_of(request: ChatRequest) -> str | None:
    """What a chat request needs of the model it runs on, beyond chat."""
    if any(_has_image(m.get("content")) for m in request.messages if isinstance(m, dict)):
        return VISION
    if request.tools:
        return TOOLS
    return None


def auto_pick(served: list[str], index: CatalogIndex, *, default: str, need: str | None) -> str:
    """The model `auto` means, among the served model ids (in the router's order).

    Without a need: the default model, else the first served model that is not only an
    embedding model. With one: the default model if it has the capability, else the first served
    model that has it, else the default anyway (the engine may still manage, and its error will
    say so)."""
    def capable(model: str, capability: str) -> bool:
        return capability in index.capabilities(model)

    def chat_model(model: str) -> bool:
        caps = index.capabilities(model)
        return not caps or any(c != EMBEDDING for c in caps)

    fallback = default or next((m for m in served if chat_model(m)), served[0] if served else "")
    if need is None:
        return fallback
    if default and capable(default, need):
        return default
    return next((m for m in served if capable(m, need)), fallback)

"""Egress to the paid APIs: which model names belong to a vendor, and the vendor as an engine.

A vendor is an engine like any other (gateway/engines/anthropic_vendor.py, openai_compat.py)
whose key is the server's own (ANTHROPIC_API_KEY / OPENAI_API_KEY, never the caller's gateway
key). Local engines come first: a vendor is asked only for a name no engine here serves and no
catalog entry claims (`gpt-oss-20b` is an open-weight model, not OpenAI's)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.engines.base import Engine
from gateway.errors import ModelNotFound


@dataclass(frozen=True)
class Vendor:
    name: str  # also the engine kind and the node name usage records show
    title: str
    key_env: str
    prefixes: tuple[str, ...]
    families: str  # the names it takes, for messages

    def key(self, cfg) -> str:
        return getattr(cfg, f"{self.name}_api_key", "")

    def url(self, cfg) -> str:
        return getattr(cfg, f"{self.name}_url", "")


ANTHROPIC = Vendor("anthropic", "Anthropic", "ANTHROPIC_API_KEY", ("claude-",), "claude-*")
OPENAI = Vendor("openai", "OpenAI", "OPENAI_API_KEY", ("gpt-", "o1", "o3", "o4"),
                "gpt-*, o1*, o3* and o4*")
VENDORS = (ANTHROPIC, OPENAI)


def vendor_for(model: str) -> Vendor | None:
    """The vendor whose model names `model` looks like, by prefix."""
    name = model.strip().lower()
    return next((v for v in VENDORS if name.startswith(v.prefixes)), None)


def make_vendor_engine(vendor: Vendor, cfg) -> Engine:
    timeout, connect = cfg.engine_timeout_seconds, cfg.engine_connect_timeout_seconds
    if vendor is ANTHROPIC:
        from gateway.engines.anthropic_vendor import AnthropicEngine

        engine: Engine = AnthropicEngine(vendor.url(cfg), api_key=vendor.key(cfg), timeout=timeout,
                                         connect_timeout=connect)
    else:
        from gateway.engines.openai_compat import OpenAICompatEngine

        engine = OpenAICompatEngine(vendor.url(cfg), api_key=vendor.key(cfg), timeout=timeout,
                                    connect_timeout=connect)
    engine.kind = vendor.name
    return engine


def vendor_disabled(model: str, vendor: Vendor, served: list[str]) -> ModelNotFound:
    return ModelNotFound(
        f"The model '{model}' is an {vendor.title} model, and {vendor.title} egress is off on "
        f"this gateway: set {vendor.key_env} on the server to send {vendor.families} models "
        f"to {vendor.title}. Served here: {', '.join(served) or 'none'}.", param="model")

"""The OpenAPI document Schemathesis fuzzes: what django-ninja generates for the inference API
(gateway/api.py, whose views read raw JSON, so request bodies are added here after the published
APIs) and for the admin API (flocksite/admin_api.py, typed ninja schemas), in one document."""

from __future__ import annotations

import copy
from typing import Any

TEXT_OR_PARTS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {
    "type": "object", "properties": {"type": {"type": "string", "enum": ["text", "image_url"]},
                                     "text": {"type": "string"}}}}]}
TOOL = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["function"]},
    "function": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"},
        "parameters": {"type": "object"}}}}}
OPENAI_MESSAGE = {"type": "object", "required": ["role"], "properties": {
    "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
    "content": TEXT_OR_PARTS, "tool_call_id": {"type": "string"}, "name": {"type": "string"}}}
ANTHROPIC_BLOCK = {"type": "object", "required": ["type"], "properties": {
    "type": {"type": "string", "enum": ["text", "image", "tool_use", "tool_result", "thinking"]},
    "text": {"type": "string"}, "id": {"type": "string"}, "name": {"type": "string"},
    "input": {"type": "object"}, "tool_use_id": {"type": "string"}, "content": TEXT_OR_PARTS}}
ANTHROPIC_MESSAGE = {"type": "object", "required": ["role", "content"], "properties": {
    "role": {"type": "string", "enum": ["user", "assistant"]},
    "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": ANTHROPIC_BLOCK}]}}}
MODEL = {"type": "string", "enum": ["fake-model", "auto", "no-such-model"]}

BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"type": "object", "required": ["model", "messages"], "properties": {
        "model": MODEL, "messages": {"type": "array", "items": OPENAI_MESSAGE, "maxItems": 8},
        "stream": {"type": "boolean"}, "max_tokens": {"type": "integer"},
        "max_completion_tokens": {"type": "integer"}, "temperature": {"type": "number"},
        "top_p": {"type": "number"}, "n": {"type": "integer"}, "stop": TEXT_OR_PARTS,
        "tools": {"type": "array", "items": TOOL, "maxItems": 4},
        "tool_choice": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        "response_format": {"type": "object"}, "user": {"type": "string"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}}}},
    "/v1/completions": {"type": "object", "required": ["model", "prompt"], "properties": {
        "model": MODEL, "prompt": {"anyOf": [{"type": "string"}, {"type": "array"}]},
        "max_tokens": {"type": "integer"}, "stream": {"type": "boolean"},
        "temperature": {"type": "number"}, "stop": TEXT_OR_PARTS}},
    "/v1/embeddings": {"type": "object", "required": ["model", "input"], "properties": {
        "model": {"type": "string", "enum": ["fake-embed", "no-such-model"]},
        "input": {"anyOf": [{"type": "string"}, {"type": "array"}]},
        "encoding_format": {"type": "string"}, "dimensions": {"type": "integer"}}},
    "/v1/messages": {"type": "object", "required": ["model", "max_tokens", "messages"], "properties": {
        "model": MODEL, "max_tokens": {"type": "integer"},
        "messages": {"type": "array", "items": ANTHROPIC_MESSAGE, "maxItems": 8},
        "system": TEXT_OR_PARTS, "stream": {"type": "boolean"}, "temperature": {"type": "number"},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "tools": {"type": "array", "maxItems": 4, "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "input_schema": {"type": "object"}}}},
        "tool_choice": {"type": "object"}, "thinking": {"type": "object"},
        "metadata": {"type": "object"}}},
}
BODIES["/v1/messages/count_tokens"] = {
    **BODIES["/v1/messages"], "required": ["model", "messages"]}


def fuzzed_schema() -> dict[str, Any]:
    from flocksite.admin_api import admin_api
    from gateway.api import api

    inference = copy.deepcopy(api.get_openapi_schema())
    for path, body in BODIES.items():
        inference["paths"][path]["post"]["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": body}}}
    admin = admin_api.get_openapi_schema()
    merged = copy.deepcopy(inference)
    merged["paths"].update(copy.deepcopy(admin["paths"]))
    for section, items in admin.get("components", {}).items():
        merged.setdefault("components", {}).setdefault(section, {}).update(copy.deepcopy(items))
    # ninja's apiKey schemes name no header; the test sends the key itself.
    merged.get("components", {}).pop("securitySchemes", None)
    for operations in merged["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    return merged

"""Code: the OpenAI and Anthropic Python SDKs, and curl in both dialects. These snippets are
run against a live gateway in the tests, so they must work exactly as printed."""

from __future__ import annotations

import json

from accounts.snippets.base import (
    ANTHROPIC,
    BOTH,
    OPENAI,
    Block,
    Client,
    Snippet,
    Target,
    exports,
    py,
    sh,
    unsets,
)

PROMPT = "Say hello in five words."


def openai_sdk(t: Target) -> Snippet:
    code = "\n".join([
        "from openai import OpenAI",
        "",
        f"client = OpenAI(base_url={py(t.v1)}, api_key={py(t.token)})",
        "reply = client.chat.completions.create(",
        f"    model={py(t.model)},",
        f"    messages=[{{\"role\": \"user\", \"content\": {py(PROMPT)}}}],",
        ")",
        "print(reply.choices[0].message.content)",
        "",
    ])
    env = [("OPENAI_BASE_URL", t.v1), ("OPENAI_API_KEY", t.token)]
    return Snippet(
        "openai-sdk", "OpenAI SDK (Python)", OPENAI, t.v1,
        (Block("python", code, "pip install openai"),
         Block("shell", exports(env), "or leave the code as OpenAI() and set")),
        notes=("The Node SDK takes the same values: new OpenAI({ baseURL, apiKey }).",),
        undo=unsets([name for name, _ in env]),
    )


def anthropic_sdk(t: Target) -> Snippet:
    code = "\n".join([
        "from anthropic import Anthropic",
        "",
        f"client = Anthropic(base_url={py(t.root)}, api_key={py(t.token)})",
        "message = client.messages.create(",
        f"    model={py(t.model)},",
        "    max_tokens=256,",
        f"    messages=[{{\"role\": \"user\", \"content\": {py(PROMPT)}}}],",
        ")",
        "print(message.content[0].text)",
        "",
    ])
    env = [("ANTHROPIC_BASE_URL", t.root), ("ANTHROPIC_API_KEY", t.token)]
    return Snippet(
        "anthropic-sdk", "Anthropic SDK (Python)", ANTHROPIC, t.root,
        (Block("python", code, "pip install anthropic"),
         Block("shell", exports(env), "or leave the code as Anthropic() and set")),
        notes=("No /v1 in base_url: the SDK adds /v1/messages itself.",
               "The Node SDK takes the same values: new Anthropic({ baseURL, apiKey })."),
        undo=unsets([name for name, _ in env]),
    )


def curl(t: Target) -> Snippet:
    message = [{"role": "user", "content": PROMPT}]
    openai_body = json.dumps({"model": t.model, "messages": message})
    anthropic_body = json.dumps({"model": t.model, "max_tokens": 256, "messages": message})
    command = "\n".join([
        "# OpenAI dialect",
        f"curl -sS {sh(t.v1 + '/chat/completions')} \\",
        f"  -H {sh('Authorization: Bearer ' + t.token)} \\",
        "  -H 'Content-Type: application/json' \\",
        f"  -d {sh(openai_body)}",
        "echo",
        "# Anthropic dialect",
        f"curl -sS {sh(t.v1 + '/messages')} \\",
        f"  -H {sh('x-api-key: ' + t.token)} \\",
        "  -H 'anthropic-version: 2023-06-01' \\",
        "  -H 'Content-Type: application/json' \\",
        f"  -d {sh(anthropic_body)}",
        "echo",
    ])
    return Snippet(
        "curl", "curl", BOTH, t.v1,
        (Block("shell", command),),
        notes=("Either header works on every route: `Authorization: Bearer` or `x-api-key`.",
               f"`curl {t.v1}/models -H 'Authorization: Bearer …'` lists the models."),
    )


CLIENTS = [
    Client("openai-sdk", "OpenAI SDK (Python)", OPENAI, "SDK", openai_sdk),
    Client("anthropic-sdk", "Anthropic SDK (Python)", ANTHROPIC, "SDK", anthropic_sdk),
    Client("curl", "curl", BOTH, "HTTP", curl),
]

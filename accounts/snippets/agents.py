"""Autonomous agents and agent platforms: Hermes Agent, OpenClaw, Plandex and OpenHands. All
four reach Flock through its OpenAI-compatible /v1."""

from __future__ import annotations

import json

from accounts.snippets.base import (
    KEY_ENV,
    OPENAI,
    Block,
    Client,
    ConfigFile,
    Snippet,
    Target,
    config_block,
    exports,
    sh,
    steps,
    unsets,
)


def hermes(t: Target) -> Snippet:
    config = ConfigFile("~/.hermes/config.yaml", "yaml", {
        "model": {"provider": "custom", "base_url": t.v1, "default": t.model, "api_key": t.token}})
    commands = "\n".join([
        "hermes config set model.provider custom",
        f"hermes config set model.base_url {sh(t.v1)}",
        f"hermes config set model.api_key {sh(t.token)}",
        f"hermes config set model.default {sh(t.model)}",
        "hermes",
    ])
    return Snippet(
        "hermes", "Hermes Agent", OPENAI, t.v1,
        (Block("shell", commands, "with Hermes' own config command"),
         config_block(config, "or merge into")),
        config,
        notes=("`hermes model` → Custom endpoint asks for the same three values interactively.",
               "Hermes prefers the saved model/provider over shell variables, so a stale "
               "OPENAI_BASE_URL export does not override this."),
        undo="hermes model  # pick your previous provider again",
    )


def openclaw(t: Target) -> Snippet:
    config = ConfigFile("~/.openclaw/openclaw.json", "json", {
        "models": {"providers": {"flock": {
            "baseUrl": t.v1,
            "apiKey": t.token,
            "api": "openai-completions",
            "models": [{"id": t.model, "name": f"{t.model} (Flock)"}],
        }}},
        "agents": {"defaults": {"model": {"primary": f"flock/{t.model}"}}},
    })
    return Snippet(
        "openclaw", "OpenClaw", OPENAI, t.v1,
        (config_block(config),
         Block("shell", f"openclaw models set {sh('flock/' + t.model)}",
               "or, after adding only the provider, pick the model with")),
        config,
        notes=("Model references are provider/model, so the Flock model is `flock/<model>`.",
               "openclaw.json may be JSON5; `connect --write` merges plain JSON (comments are "
               "fine) and refuses anything else rather than guess."),
        undo="openclaw models set <your previous provider/model>",
    )


def plandex(t: Target) -> Snippet:
    model_id = f"flock/{t.model}"
    custom = {
        "$schema": "https://plandex.ai/schemas/models-input.schema.json",
        "providers": [{"name": "flock", "baseUrl": t.v1, "apiKeyEnvVar": KEY_ENV}],
        "models": [{
            "modelId": model_id, "publisher": "flock", "description": f"{t.model} on Flock",
            "defaultMaxConvoTokens": 16000, "maxTokens": 32768, "maxOutputTokens": 8192,
            "reservedOutputTokens": 8192, "preferredOutputFormat": "xml",
            "providers": [{"provider": "custom", "customProvider": "flock",
                           "modelName": t.model}],
        }],
        "modelPacks": [{
            "name": "flock", "description": "every role on Flock",
            **{role: model_id for role in ("planner", "architect", "coder", "summarizer",
                                           "builder", "names", "commitMessages", "autoContinue")},
        }],
    }
    return Snippet(
        "plandex", "Plandex", OPENAI, t.v1,
        (Block("json", json.dumps(custom, indent=2) + "\n",
               "paste into the file `plandex models custom` opens"),
         Block("shell", exports([(KEY_ENV, t.token)]) + "\nplandex models custom\n"
               "plandex set-model default flock", "then")),
        None,
        notes=("Custom providers need a self-hosted Plandex server; Plandex Cloud only accepts "
               "its built-in providers.",
               "Set maxTokens and maxOutputTokens to the model's real context window."),
        undo="plandex set-model default <your previous model pack>",
    )


def openhands(t: Target) -> Snippet:
    env = [("LLM_MODEL", f"openai/{t.model}"), ("LLM_BASE_URL", t.v1), ("LLM_API_KEY", t.token)]
    return Snippet(
        "openhands", "OpenHands", OPENAI, t.v1,
        (Block("shell", exports(env) + "\nopenhands --override-with-envs", "CLI"),
         Block("steps", steps(
             "Settings → LLM → turn on Advanced.",
             f"Custom Model: openai/{t.model}",
             f"Base URL: {t.v1}",
             f"API Key: {t.token}",
             "Save."), "web GUI")),
        None,
        notes=("OpenHands goes through LiteLLM: the openai/ prefix selects its OpenAI-compatible "
               "client and is stripped before the request reaches Flock.",
               "The GUI runs in Docker: if Flock is on the same machine, use "
               "host.docker.internal instead of localhost in the base URL."),
        undo=unsets([name for name, _ in env]),
    )


CLIENTS = [
    Client("hermes", "Hermes Agent", OPENAI, "terminal agent", hermes),
    Client("openclaw", "OpenClaw", OPENAI, "agent platform", openclaw),
    Client("plandex", "Plandex", OPENAI, "terminal agent", plandex),
    Client("openhands", "OpenHands", OPENAI, "agent platform", openhands),
]

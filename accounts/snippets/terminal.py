"""Terminal coding agents configured by environment variables and one config file each:
Claude Code, Aider, Qwen Code, Codex CLI, goose and opencode."""

from __future__ import annotations

from accounts.snippets.base import (
    ANTHROPIC,
    KEY_ENV,
    OPENAI,
    Append,
    Block,
    Client,
    ConfigFile,
    IfAbsent,
    Snippet,
    Target,
    config_block,
    exports,
    sh,
    unsets,
)


def claude_code(t: Target) -> Snippet:
    env = [("ANTHROPIC_BASE_URL", t.root), ("ANTHROPIC_AUTH_TOKEN", t.token),
           ("ANTHROPIC_MODEL", t.model)]
    config = ConfigFile("~/.claude/settings.json", "json", {"env": dict(env)})
    return Snippet(
        "claude-code", "Claude Code", ANTHROPIC, t.root,
        (Block("shell", exports(env) + "\nclaude", "for this shell"),
         config_block(config, "or, for every session, merge into")),
        config,
        notes=("The base URL has no /v1: Claude Code adds /v1/messages itself.",
               "ANTHROPIC_AUTH_TOKEN is sent as `Authorization: Bearer`. Unset ANTHROPIC_API_KEY "
               "if you have one; it would be sent as well and may be preferred.",
               "Inside Claude Code, /status shows which base URL and token are in use."),
        undo=unsets([name for name, _ in env]),
    )


def aider(t: Target) -> Snippet:
    env = [("OPENAI_API_BASE", t.v1), ("OPENAI_API_KEY", t.token)]
    config = ConfigFile("~/.aider.conf.yml", "yaml", {
        "openai-api-base": t.v1, "openai-api-key": t.token, "model": f"openai/{t.model}"})
    return Snippet(
        "aider", "Aider", OPENAI, t.v1,
        (Block("shell", exports(env) + f"\naider --model {sh('openai/' + t.model)}"),
         config_block(config, "or, for every run, merge into")),
        config,
        notes=("The openai/ prefix tells Aider (through LiteLLM) to use the OpenAI-compatible "
               "client; the part after it is the model name Flock receives.",
               "Aider warns about models it has no metadata for; --no-show-model-warnings "
               "silences it."),
        undo=unsets([name for name, _ in env]),
    )


def qwen_code(t: Target) -> Snippet:
    env = [("OPENAI_BASE_URL", t.v1), ("OPENAI_API_KEY", t.token), ("OPENAI_MODEL", t.model)]
    config = ConfigFile("~/.qwen/settings.json", "json", {
        "modelProviders": {"openai": Append({"id": t.model, "name": f"{t.model} (Flock)",
                                             "baseUrl": t.v1, "envKey": KEY_ENV})},
        "env": {KEY_ENV: t.token},
        "security": {"auth": {"selectedType": "openai"}},
        "model": {"name": t.model},
    })
    return Snippet(
        "qwen-code", "Qwen Code", OPENAI, t.v1,
        (Block("shell", exports(env) + "\nqwen", "for this shell"),
         config_block(config, "or, for every session, merge into")),
        config,
        notes=("Qwen Code speaks the OpenAI API here (auth type `openai`); `/model` inside it "
               "switches between the models listed under modelProviders.",),
        undo=unsets([name for name, _ in env]),
    )


def codex_cli(t: Target) -> Snippet:
    config = ConfigFile("~/.codex/config.toml", "toml", {
        "model": t.model,
        "model_provider": "flock",
        "model_providers": {"flock": {"name": "Flock", "base_url": t.v1, "env_key": KEY_ENV,
                                      "wire_api": "responses"}},
    }, after=f"export {KEY_ENV}={sh(t.token)}")
    return Snippet(
        "codex-cli", "Codex CLI", OPENAI, t.v1,
        (config_block(config),
         Block("shell", exports([(KEY_ENV, t.token)]) + "\ncodex", "then, in the shell")),
        config,
        notes=("Codex reads the key from the variable named by env_key, never from the file.",
               "Current Codex CLI releases only speak the OpenAI Responses API (POST "
               "{base_url}/responses; `wire_api = \"chat\"` was removed in 2026). Codex works "
               "through Flock once the gateway serves /v1/responses; chat-only gateways get 404.",
               "The provider id must not be `openai`, `ollama` or `lmstudio` (reserved)."),
        undo=unsets([KEY_ENV]),
    )


def goose(t: Target) -> Snippet:
    settings = {"GOOSE_PROVIDER": "openai", "GOOSE_MODEL": t.model, "OPENAI_HOST": t.root,
                "OPENAI_BASE_PATH": "v1/chat/completions"}
    env = list(settings.items()) + [("OPENAI_API_KEY", t.token)]
    config = ConfigFile("~/.config/goose/config.yaml", "yaml", settings,
                        after=f"export OPENAI_API_KEY={sh(t.token)}")
    return Snippet(
        "goose", "goose", OPENAI, t.v1,
        (Block("shell", exports(env) + "\ngoose session", "for this shell"),
         config_block(config, "or, for every session, merge into")),
        config,
        notes=("goose joins OPENAI_HOST (the gateway root, no /v1) and OPENAI_BASE_PATH.",
               "goose ignores API keys written in config.yaml: export OPENAI_API_KEY, or store "
               "the key with `goose configure` (it goes to the system keyring)."),
        undo=unsets([name for name, _ in env]),
    )


def opencode(t: Target) -> Snippet:
    config = ConfigFile("~/.config/opencode/opencode.json", "json", {
        "$schema": IfAbsent("https://opencode.ai/config.json"),
        "provider": {"flock": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Flock",
            "options": {"baseURL": t.v1, "apiKey": t.token},
            "models": {t.model: {"name": f"{t.model} (Flock)"}},
        }},
        "model": f"flock/{t.model}",
    })
    return Snippet(
        "opencode", "opencode", OPENAI, t.v1,
        (config_block(config),
         Block("shell", f"opencode run -m {sh('flock/' + t.model)} \"say hi\"",
               "then start `opencode`, or try one prompt")),
        config,
        notes=("`/models` inside opencode lists the Flock models you declared under "
               "provider.flock.models; add more entries there to switch between them.",
               "`\"apiKey\": \"{env:FLOCK_API_KEY}\"` reads the key from a variable instead."),
        undo="remove provider.flock and the model line from opencode.json",
    )


CLIENTS = [
    Client("claude-code", "Claude Code", ANTHROPIC, "terminal agent", claude_code),
    Client("aider", "Aider", OPENAI, "terminal agent", aider),
    Client("qwen-code", "Qwen Code", OPENAI, "terminal agent", qwen_code),
    Client("opencode", "opencode", OPENAI, "terminal agent", opencode),
    Client("goose", "goose", OPENAI, "terminal agent", goose),
    Client("codex-cli", "Codex CLI", OPENAI, "terminal agent", codex_cli),
]

"""Editors and editor extensions: Cursor, Continue, Zed and Cline."""

from __future__ import annotations

from accounts.snippets.base import (
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
    steps,
    unsets,
)


def cursor(t: Target) -> Snippet:
    return Snippet(
        "cursor", "Cursor", OPENAI, t.v1,
        (Block("steps", steps(
            "Cursor Settings → Models → API Keys.",
            f"Turn on OpenAI API Key and paste: {t.token}",
            f"Turn on Override OpenAI Base URL and enter: {t.v1}",
            f"+ Add Custom Model: {t.model}, and switch it on.",
            "Verify, then pick the model in the chat panel.")),),
        None,
        notes=("Cursor sends these requests from its own servers, not from your machine: the "
               "base URL must be reachable from the internet (a public hostname or a tunnel); "
               "localhost or a private LAN address will not work.",
               "The override is global, and Tab completion always uses Cursor's own models."),
        undo="Cursor Settings → Models → API Keys: turn off Override OpenAI Base URL and the "
             "OpenAI API Key",
    )


def continue_dev(t: Target) -> Snippet:
    config = ConfigFile("~/.continue/config.yaml", "yaml", {
        "name": IfAbsent("Local config"),
        "version": IfAbsent("1.0.0"),
        "schema": IfAbsent("v1"),
        "models": Append({
            "name": f"{t.model} (Flock)",
            "provider": "openai",
            "model": t.model,
            "apiBase": t.v1,
            "apiKey": t.token,
            "roles": ["chat", "edit", "apply"],
        }),
    })
    return Snippet(
        "continue", "Continue", OPENAI, t.v1,
        (config_block(config, "add the model to"),),
        config,
        notes=("provider `openai` with an apiBase works for any OpenAI-compatible server; keep "
               "the /v1 on apiBase.",
               "config.yaml replaces the older config.json; when both exist Continue reads the "
               "YAML. The `cn` CLI takes the same file with --config."),
        undo="remove the Flock entry from models: in ~/.continue/config.yaml",
    )


def zed(t: Target) -> Snippet:
    config = ConfigFile("~/.config/zed/settings.json", "json", {
        "language_models": {"openai_compatible": {"Flock": {
            "api_url": t.v1,
            "available_models": [{
                "name": t.model,
                "display_name": f"{t.model} (Flock)",
                "max_tokens": 32768,
                "capabilities": {"tools": True, "images": False, "parallel_tool_calls": False,
                                 "prompt_cache_key": False},
            }],
        }}},
    }, after=f"export {KEY_ENV}={sh(t.token)}  # before starting Zed, or paste it in Agent settings")
    return Snippet(
        "zed", "Zed", OPENAI, t.v1,
        (config_block(config),
         Block("shell", exports([(KEY_ENV, t.token)]) + "\nzed", "and give Zed the key")),
        config,
        notes=("Zed never reads keys from settings.json: it takes FLOCK_API_KEY (named after "
               "the provider, Flock) or a key pasted in Agent settings → LLM Providers.",
               "Zed does not fetch the model list; every model you want goes in "
               "available_models. Set max_tokens to the model's context window.",
               "A Zed started from the Dock does not see shell variables; paste the key in the "
               "Agent settings instead."),
        undo=unsets([KEY_ENV]) + "  # and remove language_models.openai_compatible.Flock",
    )


def cline(t: Target) -> Snippet:
    return Snippet(
        "cline", "Cline", OPENAI, t.v1,
        (Block("steps", steps(
            "Open the Cline panel → ⚙ Settings.",
            "API Provider: OpenAI Compatible",
            f"Base URL: {t.v1}",
            f"API Key: {t.token}",
            f"Model ID: {t.model}",
            "Done.")),),
        None,
        notes=("Roo Code, a fork of Cline, has the same OpenAI Compatible provider.",),
        undo="Cline Settings → API Provider: switch back to your previous provider",
    )


CLIENTS = [
    Client("cursor", "Cursor", OPENAI, "editor", cursor),
    Client("continue", "Continue", OPENAI, "editor", continue_dev),
    Client("zed", "Zed", OPENAI, "editor", zed),
    Client("cline", "Cline", OPENAI, "editor", cline),
]

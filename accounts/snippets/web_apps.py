"""Self-hosted web apps that usually run in Docker: Open WebUI and Open Notebook."""

from __future__ import annotations

from accounts.snippets.base import OPENAI, Block, Client, Snippet, Target, sh, steps

_DOCKER_HOST_NOTE = ("From inside a container, localhost is the container itself: if Flock runs on "
                     "the Docker host, use http://host.docker.internal:<port> (on Linux also pass "
                     "--add-host=host.docker.internal:host-gateway).")


def open_webui(t: Target) -> Snippet:
    run = "\n".join([
        "docker run -d -p 3000:8080 \\",
        f"  -e OPENAI_API_BASE_URL={sh(t.v1)} \\",
        f"  -e OPENAI_API_KEY={sh(t.token)} \\",
        f"  -e DEFAULT_MODELS={sh(t.model)} \\",
        "  -v open-webui:/app/backend/data \\",
        "  --name open-webui --restart always \\",
        "  ghcr.io/open-webui/open-webui:main",
    ])
    return Snippet(
        "open-webui", "Open WebUI", OPENAI, t.v1,
        (Block("shell", run, "a new Open WebUI container"),
         Block("steps", steps(
             "Admin Panel → Settings → Connections → OpenAI API → +.",
             f"URL: {t.v1}",
             f"Key: {t.token}",
             f"Save; Flock's models appear in the model picker: choose {t.model}."),
               "or an instance already running")),
        None,
        notes=("Open WebUI reads these variables on its first start and then keeps the values in "
               "its database; change them later in Admin Panel → Connections (or start with "
               "ENABLE_PERSISTENT_CONFIG=False).",
               "Several endpoints: OPENAI_API_BASE_URLS and OPENAI_API_KEYS, separated by `;`.",
               _DOCKER_HOST_NOTE),
        undo="Admin Panel → Settings → Connections: delete the Flock connection",
    )


def open_notebook(t: Target) -> Snippet:
    return Snippet(
        "open-notebook", "Open Notebook", OPENAI, t.v1,
        (Block("steps", steps(
            "Settings → API Keys → Add credential → OpenAI-Compatible.",
            f"Base URL: {t.v1}",
            f"API Key: {t.token}",
            "Test the connection, then discover models and register "
            f"{t.model} as a language model.",
            f"Pick {t.model} as the default chat model.")),
         Block("yaml", "\n".join([
             "environment:",
             f"  - OPENAI_COMPATIBLE_BASE_URL_LLM={t.v1}",
             f"  - OPENAI_COMPATIBLE_API_KEY_LLM={t.token}",
             ""]), "or in docker-compose.yml (older setups; newer versions offer to migrate "
                   "these into a credential)")),
        None,
        notes=("Storing credentials needs OPEN_NOTEBOOK_ENCRYPTION_KEY set on the container.",
               "Embeddings and speech need their own models; Flock serves /v1/embeddings for "
               "embedding models.",
               _DOCKER_HOST_NOTE),
        undo="Settings → API Keys: delete the Flock credential",
    )


CLIENTS = [
    Client("open-webui", "Open WebUI", OPENAI, "web app", open_webui),
    Client("open-notebook", "Open Notebook", OPENAI, "web app", open_notebook),
]

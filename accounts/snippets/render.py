"""Snippets as terminal text (connect) and as Markdown (invite's share card, which the
dashboard's Tokens page shows too)."""

from __future__ import annotations

from accounts.snippets.base import ANTHROPIC, BOTH, OPENAI, Snippet

DIALECT_LABELS = {OPENAI: "OpenAI API", ANTHROPIC: "Anthropic API",
                  BOTH: "OpenAI and Anthropic APIs"}
_FENCES = {"shell": "bash", "python": "python", "json": "json", "yaml": "yaml", "toml": "toml",
           "text": ""}


def snippet_text(snippet: Snippet) -> str:
    lines = [f"{snippet.title} · {DIALECT_LABELS[snippet.dialect]} · {snippet.url}", ""]
    for block in snippet.blocks:
        if block.caption:
            lines.append(f"{block.caption[0].upper()}{block.caption[1:]}:")
        lines += [block.text.rstrip("\n"), ""]
    if snippet.notes:
        lines.append("Notes:")
        lines += [f"  - {note}" for note in snippet.notes]
    return "\n".join(lines).rstrip() + "\n"


def snippet_markdown(snippet: Snippet, level: int = 3) -> str:
    lines = [f"{'#' * level} {snippet.title}", "",
             f"{DIALECT_LABELS[snippet.dialect]} at `{snippet.url}`", ""]
    for block in snippet.blocks:
        if block.caption:
            lines += [f"{block.caption[0].upper()}{block.caption[1:]}:", ""]
        if block.kind == "steps":
            lines += [block.text.rstrip("\n"), ""]
        else:
            lines += [f"```{_FENCES.get(block.kind, '')}", block.text.rstrip("\n"), "```", ""]
    lines += [f"- {note}" for note in snippet.notes]
    return "\n".join(lines).rstrip() + "\n"


def invite_card(*, name: str, token: str, root: str, model: str, quota: int,
                cards: list[Snippet]) -> str:
    """The Markdown share card for a teammate: their key (its one showing), the base URLs, the
    model, the limit, and one snippet per client with a placeholder where the key goes."""
    from accounts.snippets.resolve import PLACEHOLDER

    limit = f"{quota:,} tokens a day (the day resets at 00:00 UTC)" if quota \
        else "no daily limit"
    head = [
        f"## Flock access for {name}", "",
        f"Your key, shown only this once (keep it secret): `{token}`", "",
        f"- OpenAI-compatible base URL: `{root}/v1`",
        f"- Anthropic base URL: `{root}` (no /v1)",
        f"- Model: `{model}`",
        f"- Limit: {limit}",
        "- Either header works: `Authorization: Bearer <key>` or `x-api-key: <key>`", "",
        f"In the snippets below, put your key where they say `{PLACEHOLDER}`.", "",
    ]
    return "\n".join(head) + "\n" + "\n".join(snippet_markdown(card) for card in cards)

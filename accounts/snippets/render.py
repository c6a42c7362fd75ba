"""Snippets as terminal text (connect) and as Markdown (invite's share card)."""

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

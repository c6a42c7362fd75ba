"""Did-you-mean: the closest known words to a mistyped one, by Damerau-Levenshtein distance
(a swap of two neighbouring letters counts as one edit, the commonest typo)."""

from __future__ import annotations

from collections.abc import Iterable


def damerau_levenshtein(a: str, b: str) -> int:
    """Edit distance with insertions, deletions, substitutions and adjacent transpositions
    (the optimal-string-alignment variant)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def suggest(word: str, choices: Iterable[str], limit: int = 3) -> list[str]:
    """Up to `limit` choices close to `word`: within a third of its length in edits, or
    containing it; closest first."""
    word = word.strip().lower()
    if not word:
        return []
    budget = max(1, len(word) // 3)
    scored = []
    for choice in set(choices):
        distance = damerau_levenshtein(word, choice.lower())
        if distance <= budget:
            scored.append((distance, len(choice), choice))
        elif len(word) >= 3 and word in choice.lower():
            scored.append((budget + 1, len(choice), choice))
    return [choice for _, _, choice in sorted(scored)][:limit]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean 'search'?' or ''."""
    found = suggest(word, choices)
    if not found:
        return ""
    quoted = " or ".join(f"'{s}'" for s in found)
    return f"; did you mean {quoted}?"

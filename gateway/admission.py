"""Admission: what a key may do before a request reaches an engine. Its model list, its
requests-per-minute limit, and a reservation against its daily token quota."""

from __future__ import annotations

from accounts.quota import quota_reserve, rate_check
from gateway.errors import PermissionDenied
from gateway.pipeline import Accounting
from gateway.router import Candidate, same_model

COMPLETION_RESERVE_DEFAULT = 1024  # when the request sets no max_tokens
COMPLETION_RESERVE_MAX = 4096


def reservation_estimate(prompt_tokens: int, max_tokens: int | None) -> int:
    """Prompt tokens (a high guess) plus the answer's token budget, capped."""
    if max_tokens == 0:  # embeddings: no answer tokens
        return prompt_tokens
    completion = min(max_tokens or COMPLETION_RESERVE_DEFAULT, COMPLETION_RESERVE_MAX)
    return prompt_tokens + completion


def allowed_candidates(acct: Accounting, requested: str,
                       candidates: list[Candidate]) -> list[Candidate]:
    """The candidates the key may use: the model asked for when the key allows it, and of its
    fallback chain only the models the key allows by name."""
    allowed = acct.key.allowed_models if acct.key else ()
    if not allowed:
        return candidates
    asked = any(same_model(requested, name) for name in allowed)
    kept = [c for c in candidates if (asked and c.rank == 0)
            or any(same_model(c.model, name) or same_model(c.name, name) for name in allowed)]
    if not kept:
        raise PermissionDenied(
            f"Key '{acct.key.name}' may not use model '{requested}'. Allowed: "
            f"{', '.join(allowed)}.", code="model_not_allowed")
    return kept


async def admit(acct: Accounting, requested: str, candidates: list[Candidate], *,
                prompt_tokens: int, max_tokens: int | None) -> list[Candidate]:
    """Checks the key's limits and reserves quota; returns the candidates it may use.
    `prompt_tokens` should err high (gateway.limits.reservation_prompt_tokens)."""
    candidates = allowed_candidates(acct, requested, candidates)
    if acct.key is not None:
        await rate_check(acct.key, acct.key.rpm_limit)
        acct.reservation = await quota_reserve(
            acct.key, reservation_estimate(prompt_tokens, max_tokens))
    return candidates

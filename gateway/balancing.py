"""Spreading requests over the replicas of a model.

- Least outstanding requests: every attempt counts itself in flight per (node, model) while it
  runs, in Django's cache, so with Redis every gateway process sees the same counts.
- The leader wins ties when it has the model (no network hop).
- Sticky sessions: a request carrying a session (an `x-session-id` header, OpenAI's `user`,
  Anthropic's `metadata.user_id`) goes to the replica its session used before while that replica
  is a healthy candidate, so the engine's KV cache for the conversation is reused.
- A node whose engine could not be reached is tried last for DOWN_SECONDS, so requests do not
  each pay for the same refused connection until the node drops out of routing.

The counts are hints: a cache outage degrades to the router's order, never to a failed request.
A counter a crashed gateway never decremented expires after INFLIGHT_TTL."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Collection
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from django.core.cache.backends.locmem import LocMemCache

from flocksite.shared_cache import shared_cache
from flocksite.shared_redis import async_redis

if TYPE_CHECKING:
    from django.http import HttpRequest

    from gateway.router import Candidate

log = logging.getLogger("flock.gateway")

INFLIGHT_TTL = 600
STICKY_TTL = 3600
DOWN_SECONDS = 5
SESSION_HEADER = "x-session-id"
_SESSION_META = "HTTP_" + SESSION_HEADER.upper().replace("-", "_")  # as Django's META names it


def session_of(request: HttpRequest, user: str | None = None) -> str:
    """The caller's session: the x-session-id header, else the body's user id."""
    header = request.META.get(_SESSION_META, "")
    return (header.strip() or (user or "").strip())[:256]


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@functools.lru_cache(maxsize=4096)  # every attempt asks twice; hashing is most of the cost
def inflight_key(node: str, model: str) -> str:
    return f"lb:inflight:{_digest(node + chr(0) + model)}"


def _down_key(node: str) -> str:
    return f"lb:down:{_digest(node)}"


def _sticky_key(session: str, model: str) -> str:
    return f"lb:sticky:{_digest(session + chr(0) + model)}"


# --- storage: in this process's memory without Redis (inline, no thread hop); with Redis one
# command or Lua script per operation over an asyncio connection, on the keys Django's cache uses
# (so `cache.get` reads the same counters).

_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
_DECR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('DECR', KEYS[1])
if n < 0 then redis.call('SET', KEYS[1], 0, 'EX', ARGV[1]); return 0 end
return n
"""


def _local():
    cache = shared_cache()
    cache = getattr(cache, "local", cache)  # Redis is away: its in-process stand-in
    if not isinstance(cache, LocMemCache):  # a cache backend other than Redis or memory
        raise LookupError("load balancing needs REDIS_URL or the in-memory cache")
    return cache


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


async def _read(names: list[str]) -> dict[str, Any]:
    client = async_redis()
    if client is None:
        return _local().get_many(names)
    values = await client.mget([shared_cache().make_key(n) for n in names])
    return {n: _text(v) for n, v in zip(names, values, strict=True) if v is not None}


async def _write(name: str, value: str, ttl: int) -> None:
    client = async_redis()
    if client is None:
        _local().set(name, value, ttl)
    else:
        await client.set(shared_cache().make_key(name), value, ex=ttl)


async def _add(name: str, delta: int) -> None:
    client = async_redis()
    if client is not None:
        await client.eval(_INCR if delta > 0 else _DECR, 1, shared_cache().make_key(name),
                          INFLIGHT_TTL)
        return
    cache = _local()
    try:
        if cache.incr(name, delta) < 0:  # the counter expired and restarted while we ran
            cache.set(name, 0, INFLIGHT_TTL)
    except ValueError:  # not there yet, or expired
        if delta > 0:
            cache.add(name, 0, INFLIGHT_TTL)
            cache.incr(name, delta)


async def _safely(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except Exception:  # a hint store must not fail requests
        log.warning("load-balancing counter operation failed", exc_info=True)
        return None


# --- ordering and counting -----------------------------------------------------------------------

def _rank(candidates: list[Candidate], found: dict[str, Any], sticky: str,
          leaders: Collection[str]) -> list[Candidate]:
    def down(c: Candidate) -> bool:
        return _down_key(c.node) in found

    def rank(item: tuple[int, Candidate]) -> tuple:
        index, c = item
        return (down(c), max(0, int(found.get(inflight_key(c.node, c.model)) or 0)),
                c.node not in leaders, index)

    ordered = [c for _, c in sorted(enumerate(candidates), key=rank)]
    stuck = found.get(sticky) if sticky else None
    pick = next((c for c in ordered if c.node == stuck and not down(c)), None)
    if pick is not None:
        ordered.remove(pick)
        ordered.insert(0, pick)
    return ordered


async def _order(candidates: list[Candidate], requested: str, session: str,
                 leaders: Collection[str]) -> list[Candidate]:
    sticky = _sticky_key(session, requested) if session else ""
    names = [*{inflight_key(c.node, c.model) for c in candidates},
             *{_down_key(c.node) for c in candidates}, *([sticky] if sticky else [])]
    ordered = _rank(candidates, await _read(names), sticky, leaders)
    if sticky:
        await _write(sticky, ordered[0].node, STICKY_TTL)  # (re)stick, and keep it alive
    return ordered


async def order(candidates: list[Candidate], *, requested: str, session: str = "",
                leaders: Collection[str] = ()) -> list[Candidate]:
    """`candidates` best first: the session's replica, then the least loaded, the leader on
    ties, nodes that just refused a connection last."""
    if len(candidates) < 2:
        return candidates
    return await _safely(_order(candidates, requested, session, leaders)) or candidates


@asynccontextmanager
async def outstanding(candidate: Candidate) -> AsyncIterator[None]:
    """Counts an attempt on `candidate` as in flight while the block runs."""
    name = inflight_key(candidate.node, candidate.model)
    await _safely(_add(name, 1))
    try:
        yield
    finally:
        await _safely(_add(name, -1))


async def in_flight(node: str, model: str) -> int:
    name = inflight_key(node, model)
    found = await _safely(_read([name])) or {}
    return max(0, int(found.get(name) or 0))


async def note_unreachable(candidate: Candidate) -> None:
    """The candidate's engine refused or timed out the connection: try it last for a while."""
    await _safely(_write(_down_key(candidate.node), "1", DOWN_SECONDS))

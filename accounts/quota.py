"""Daily token quotas and per-minute request limits, held in Django's cache so they are atomic
across gateway processes with Redis (and within one process without it).

A request reserves an estimate of its tokens at admission and settles the true count when it
ends, so concurrent requests cannot all pass a check that only the first should pass; the most a
key can overshoot its quota by is what the requests in flight were granted."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async

from accounts.selectors import KeyInfo
from flocksite import degraded
from flocksite.shared_cache import shared_cache
from flocksite.shared_redis import async_redis
from gateway.errors import RateLimited

DAY_TTL = 2 * 24 * 3600
MAX_RESERVATION = 32_768  # a single request never reserves more than this


_today: list = [-1, ""]  # [days since the epoch, its YYYYMMDD]: strftime once a day, not per call


def _day(now: datetime | None = None) -> str:
    if now is not None:
        return now.strftime("%Y%m%d")
    day = int(time.time() // 86400)
    if _today[0] != day:
        _today[0], _today[1] = day, datetime.fromtimestamp(day * 86400, UTC).strftime("%Y%m%d")
    return _today[1]


def quota_key(key_id: int, day: str | None = None) -> str:
    return f"quota:{key_id}:{day or _day()}"


def seconds_to_reset(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(int((tomorrow - now).total_seconds()), 1)


def _spent_today_from_ledger(key_id: int) -> int:
    from django.db.models import F, Sum

    from accounts.models import UsageRecord

    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    total = (UsageRecord.objects.filter(key_id=key_id, created_at__gte=start)
             .aggregate(t=Sum(F("prompt_tokens") + F("completion_tokens")))["t"])
    return int(total or 0)


def _ensure_counter(name: str, key_id: int) -> None:
    """Creates today's counter from the usage ledger when it does not exist (a new day, or a
    cache that lost its data), so a restart never hands out a fresh quota."""
    store = shared_cache()
    if store.get(name) is None:
        store.add(name, _spent_today_from_ledger(key_id), DAY_TTL)


@dataclass
class Reservation:
    key_id: int
    counter: str
    reserved: int
    settled: bool = False


def quota_reserve_sync(key: KeyInfo, estimate: int, *,
                       checked: bool = False) -> Reservation | None:
    """Reserves `estimate` tokens of the key's daily quota or raises RateLimited (`checked`:
    the caller made sure today's counter exists)."""
    if not key.daily_token_quota or not key.id:
        return None
    amount = max(1, min(estimate, MAX_RESERVATION))
    name = quota_key(key.id)
    store = shared_cache()
    if not checked:
        _ensure_counter(name, key.id)
    try:
        total = store.incr(name, amount)
    except ValueError:  # expired between the check and the incr
        store.add(name, 0, DAY_TTL)
        total = store.incr(name, amount)
    if total > key.daily_token_quota:
        store.decr(name, amount)
        raise _quota_exceeded(key, amount)
    return Reservation(key.id, name, amount)


def quota_settle_sync(reservation: Reservation | None, actual: int) -> None:
    """Replaces the reservation by the true token count."""
    if reservation is None or reservation.settled:
        return
    reservation.settled = True
    delta = actual - reservation.reserved
    try:
        if delta:
            shared_cache().incr(reservation.counter, delta)
    except ValueError:
        pass  # the day rolled over; the new counter starts from the ledger


def _quota_exceeded(key: KeyInfo, amount: int) -> RateLimited:
    reset = seconds_to_reset()
    return RateLimited(
        f"Daily token quota of {key.daily_token_quota} for key '{key.name}' is used up "
        f"(this request needs about {amount}); it resets at 00:00 UTC, in {reset} s.",
        headers={"retry-after": str(reset)}, code="quota_exceeded")


def _rate_exceeded(key: KeyInfo, rpm_limit: int) -> RateLimited:
    retry = max(int(60 - time.time() % 60), 1)
    return RateLimited(f"Key '{key.name}' is limited to {rpm_limit} requests per minute; "
                       f"retry in {retry} s.", headers={"retry-after": str(retry)})


def rate_check_sync(key: KeyInfo, rpm_limit: int) -> None:
    """Counts one request against the key's per-minute limit, or raises RateLimited."""
    if not rpm_limit or not key.id:
        return
    now = time.time()
    minute = int(now // 60)
    name = f"rpm:{key.id}:{minute}"
    store = shared_cache()
    store.add(name, 0, 120)
    try:
        count = store.incr(name)
    except ValueError:
        store.add(name, 0, 120)
        count = store.incr(name)
    if count > rpm_limit:
        raise _rate_exceeded(key, rpm_limit)


# --- the request path's async versions ------------------------------------------------------
# Without Redis the counters live in this process's memory (LocMemCache), so the sync functions
# above are called inline: no I/O, no trip to a worker thread. With Redis each operation is one
# Lua script over an asyncio connection, on the same keys Django's cache uses.

_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if total > tonumber(ARGV[2]) then redis.call('DECRBY', KEYS[1], ARGV[1]); return -1 end
return total
"""
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return 0
"""
_RATE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 120) end
return n
"""


async def quota_reserve(key: KeyInfo, estimate: int) -> Reservation | None:
    if not key.daily_token_quota or not key.id:
        return None
    client = async_redis()
    if client is not None:
        try:
            return await _quota_reserve_redis(client, key, estimate)
        except degraded.redis_errors():  # Redis went away: this process counts on its own
            degraded.redis_failed()
    if shared_cache().get(quota_key(key.id)) is None:  # from the ledger: reads the database
        await sync_to_async(_ensure_counter, thread_sensitive=False)(quota_key(key.id), key.id)
    return quota_reserve_sync(key, estimate, checked=True)


async def _quota_reserve_redis(client, key: KeyInfo, estimate: int) -> Reservation:
    amount = max(1, min(estimate, MAX_RESERVATION))
    name = quota_key(key.id)
    raw = shared_cache().make_key(name)
    total = await client.eval(_RESERVE, 1, raw, amount, key.daily_token_quota)
    if total == -2:  # a new day, or a flushed cache: start from the ledger
        await sync_to_async(_ensure_counter, thread_sensitive=False)(name, key.id)
        total = await client.eval(_RESERVE, 1, raw, amount, key.daily_token_quota)
    if total == -1:
        raise _quota_exceeded(key, amount)
    return Reservation(key.id, name, amount)


async def quota_settle(reservation: Reservation | None, actual: int) -> None:
    if reservation is None or reservation.settled:
        return
    client = async_redis()
    if client is not None:
        delta = actual - reservation.reserved
        try:
            if delta:
                await client.eval(_SETTLE, 1, shared_cache().make_key(reservation.counter), delta)
            reservation.settled = True
            return
        except degraded.redis_errors():
            degraded.redis_failed()
    quota_settle_sync(reservation, actual)


async def rate_check(key: KeyInfo, rpm_limit: int) -> None:
    if not rpm_limit or not key.id:
        return
    client = async_redis()
    if client is not None:
        name = shared_cache().make_key(f"rpm:{key.id}:{int(time.time() // 60)}")
        try:
            count = await client.eval(_RATE, 1, name)
        except degraded.redis_errors():
            degraded.redis_failed()
        else:
            if count > rpm_limit:
                raise _rate_exceeded(key, rpm_limit)
            return
    rate_check_sync(key, rpm_limit)

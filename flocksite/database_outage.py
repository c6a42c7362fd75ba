"""Reading the database from a worker thread on the request path when it may be away for a
while: a failed read closes the thread's broken connection (nothing else would, outside a
request's own thread) and tells flocksite.degraded, so the next read reconnects."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from django.db import DatabaseError, close_old_connections

from flocksite import degraded
from gateway.errors import GatewayError

T = TypeVar("T")


class DatabaseUnavailable(GatewayError):
    """What a request that needs the database gets while it is away: retry shortly."""

    status = 503
    kind = "api_error"

    def __init__(self, what: str) -> None:
        super().__init__(f"The database is unreachable, so {what}; retry in a few seconds.",
                         headers={"retry-after": "5"})


def database_read(work: Callable[..., T]) -> Callable[..., T]:
    @wraps(work)
    def read(*args, **kwargs) -> T:
        try:
            result = work(*args, **kwargs)
        except DatabaseError:
            degraded.database_failed()
            close_old_connections()
            raise
        degraded.database_ok()
        return result

    return read

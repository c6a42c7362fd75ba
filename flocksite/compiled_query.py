"""A read the gateway repeats every second or two, with its SQL compiled once.

Django compiles a queryset's SQL anew each time it runs: for the router's node list that is
about 0.5 ms of Python a query against 20 µs in the database, and the Python holds the GIL the
event loop needs. `Compiled` keeps each database's SQL and parameters of a `values_list`
queryset and runs them through the connection's cursor. Parameters that change between runs (a
time) are built into the queryset as marker values and filled in on each run.

Only for querysets whose values need no conversion from the database (text, numbers): rows come
back as the driver returns them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import QuerySet

# Markers for values filled in at each run: times no real row will hold, one per argument.
_MARKER_BASE = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


class Compiled:
    """`build(**markers)` returns a values_list queryset; `rows(**values)` runs it with `values`
    in place of the markers. Each argument is a datetime (the kind the markers are)."""

    def __init__(self, build: Callable[..., QuerySet], *arguments: str,
                 using: str = "default") -> None:
        self._build = build
        self._arguments = arguments
        self._using = using
        self._compiled: dict[tuple[str, str], tuple[str, list[Any], dict[int, str]]] = {}

    def _compile(self, connection) -> tuple[str, list[Any], dict[int, str]]:
        markers = {name: _MARKER_BASE.replace(microsecond=n + 1)
                   for n, name in enumerate(self._arguments)}
        sql, params = self._build(**markers).query.sql_with_params()
        adapted = {connection.ops.adapt_datetimefield_value(value): name
                   for name, value in markers.items()}
        slots = {i: adapted[p] for i, p in enumerate(params) if _hashable(p) and p in adapted}
        if set(slots.values()) != set(self._arguments):
            raise ValueError(f"compiled query: markers for {self._arguments} not all found")
        return sql, list(params), slots

    def rows(self, **values: datetime) -> list[tuple]:
        connection = connections[self._using]
        key = (connection.alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(connection)
        sql, params, slots = compiled
        if slots:
            params = list(params)
            for i, name in slots.items():
                params[i] = connection.ops.adapt_datetimefield_value(values[name])
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True

"""Picks the engines that can serve a requested model name.

Engines come from the cluster's routable nodes (or, with no node registered, from the configured
engine); each engine's model list is cached briefly so resolving a name costs no network I/O on
the hot path.

The cached reads (nodes, model lists, the catalog) are refreshed ahead: a request that finds one
past half its lifetime starts a refresh in the background and goes on with what is cached, so
under traffic no request waits for the database or an engine's model list (each such wait was a
10 ms hole in the first-token latency). What is cached is never served past its whole lifetime:
a request that finds it expired (the first after an idle spell) refreshes it first, as before."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError

from catalog.schema import Entry
from flocksite.database_outage import database_read
from gateway import balancing
from gateway.auto_model import auto_pick, is_auto
from gateway.canonical import EngineModel
from gateway.engines.base import Engine
from gateway.engines.registry import make_engine
from gateway.errors import EngineError, EngineUnreachable, GatewayError, ModelNotFound
from gateway.fallback import CatalogIndex, latencies, latency_order
from gateway.vendors import Vendor, make_vendor_engine, vendor_disabled, vendor_for

NODES_TTL = 2.0
MODELS_TTL = 5.0
FAILED_MODELS_TTL = 1.0
CATALOG_TTL = 5.0

log = logging.getLogger("flock.router")


@dataclass(frozen=True)
class Candidate:
    node: str
    engine: Engine
    model: str  # the engine's own id for the model
    context_length: int | None = None
    name: str = ""  # the model as the caller (or the fallback chain) named it
    rank: int = 0  # 0: the model asked for; 1, 2, ...: its place in the fallback chain


@dataclass
class _Listing:
    models: list[EngineModel]
    error: EngineError | None
    expires: float


class Router:
    def __init__(self) -> None:
        self._engines: dict[tuple[str, str, str, str | None], Engine] = {}
        self._pool: tuple[list[tuple[str, Engine]], float] = ([], 0.0)
        self._listings: dict[int, _Listing] = {}
        self._catalog: tuple[CatalogIndex, float] = (CatalogIndex(), 0.0)
        self._vendors: dict[tuple, Engine] = {}
        self._refreshing: dict[object, asyncio.Task] = {}
        self._generation = 0  # bumped by reset(): a refresh begun before it stores nothing
        self.leaders: set[str] = set()

    def reset(self) -> None:
        self._generation += 1
        self._refreshing.clear()
        self._engines.clear()
        self._pool = ([], 0.0)
        self._listings.clear()
        self._catalog = (CatalogIndex(), 0.0)
        self._vendors.clear()
        latencies.clear()

    def _engine(self, kind: str, endpoint: str, node: str, api_key: str | None = None) -> Engine:
        cfg = settings.FLOCK
        key = (kind, endpoint, node, api_key)
        if key not in self._engines:
            if api_key is None:  # a worker's agent key (cluster.agent) replaces the engine's
                api_key = {"vllm": cfg.vllm_api_key, "anthropic": cfg.anthropic_api_key}.get(kind, "")
            self._engines[key] = make_engine(
                kind, endpoint, api_key=api_key,
                timeout=cfg.engine_timeout_seconds, connect_timeout=cfg.engine_connect_timeout_seconds)
        return self._engines[key]

    def _ahead(self, what: object, expires: float, ttl: float, now: float,
               refresh: Callable[[int], Awaitable[object]]) -> None:
        """Starts `refresh` in the background when the cached value is past half its `ttl` (one
        refresh at a time for each `what`); its failure leaves the value as it was. It is given
        the generation of now: a reset before it runs makes it store nothing."""
        if expires - now > ttl / 2:
            return
        loop = asyncio.get_running_loop()
        running = self._refreshing.get(what)
        if running is not None and not running.done() and running.get_loop() is loop:
            return

        generation = self._generation

        async def quietly() -> None:
            try:
                await refresh(generation)
            except Exception:  # the request that finds the value expired meets the error
                log.debug("background refresh of %s failed", what, exc_info=True)

        self._refreshing[what] = loop.create_task(quietly())

    async def pool(self) -> list[tuple[str, Engine]]:
        engines, expires = self._pool
        now = time.monotonic()
        if expires > now:
            self._ahead("pool", expires, NODES_TTL, now, self._refresh_pool)
            return engines
        return await self._refresh_pool()

    async def _refresh_pool(self, generation: int | None = None) -> list[tuple[str, Engine]]:
        from catalog.selectors import served_endpoints
        from cluster.agent import engine_access
        from cluster.selectors import nodes_routable_for_routing

        generation = self._generation if generation is None else generation
        engines = self._pool[0]
        try:
            # Models added with `model add` may run in llama-servers of their own. Both reads
            # in one trip to a worker thread.
            nodes, extra = await sync_to_async(database_read(
                lambda: (nodes_routable_for_routing(), served_endpoints())), thread_sensitive=False)()
        except DatabaseError:
            if not engines:
                raise
            if generation == self._generation:  # the database is away: keep routing to the
                self._pool = (engines, time.monotonic() + NODES_TTL)  # engines we knew
            return engines
        engines = [(n.name, self._engine(n.engine, engine_access(n)[0], n.name,
                                         api_key=engine_access(n)[1])) for n in nodes]
        leaders = {n.name for n in nodes if n.role == "leader"} | {"local"}
        engines += [(node, self._engine(kind, endpoint, node)) for node, kind, endpoint in extra
                    if (node, endpoint) not in {(n.name, n.engine_endpoint) for n in nodes}]
        cfg = settings.FLOCK
        if not engines and cfg.engine:
            engines = [("local", self._engine(cfg.engine, cfg.endpoints[cfg.engine], "local"))]
        if generation == self._generation:
            self.leaders = leaders
            self._pool = (engines, time.monotonic() + NODES_TTL)
        return engines

    async def listing(self, engine: Engine) -> _Listing:
        now = time.monotonic()
        found = self._listings.get(id(engine))
        if found is not None and found.expires > now:
            if found.error is None:
                self._ahead(("listing", id(engine)), found.expires, MODELS_TTL, now,
                            lambda generation: self._refresh_listing(engine, generation))
            return found
        return await self._refresh_listing(engine)

    async def _refresh_listing(self, engine: Engine, generation: int | None = None) -> _Listing:
        generation = self._generation if generation is None else generation
        now = time.monotonic()
        try:
            found = _Listing(await engine.list_models(), None, now + MODELS_TTL)
        except EngineError as exc:
            found = _Listing([], exc, now + FAILED_MODELS_TTL)
        except GatewayError as exc:  # the engine refused to list: count it as unreachable
            failure = EngineUnreachable(engine=engine.kind, endpoint=engine.endpoint,
                                        hint=engine.start_hint, detail=exc.message)
            found = _Listing([], failure, now + FAILED_MODELS_TTL)
        if generation == self._generation:
            self._listings[id(engine)] = found
        return found

    async def available(self) -> list[tuple[str, Engine, EngineModel]]:
        rows = []
        for node, engine in await self.pool():
            for model in (await self.listing(engine)).models:
                rows.append((node, engine, model))
        return rows

    async def catalog_index(self) -> CatalogIndex:
        """The catalog by served names, checked at most every CATALOG_TTL seconds in a worker
        thread (which stats the catalog's files, and parses them when they changed); the index
        is built again only when the catalog was."""
        index, expires = self._catalog
        now = time.monotonic()
        if expires > now:
            self._ahead("catalog", expires, CATALOG_TTL, now, self._refresh_catalog)
            return index
        return await self._refresh_catalog()

    async def _refresh_catalog(self, generation: int | None = None) -> CatalogIndex:
        from catalog.selectors import catalog

        generation = self._generation if generation is None else generation
        known = self._catalog[0]

        def build() -> CatalogIndex:  # in the worker thread, and only when the files changed
            source = catalog()
            if known.source is source:
                return known
            return CatalogIndex(source.entries.values(), source=source)

        index = await sync_to_async(build, thread_sensitive=False)()
        if generation == self._generation:
            self._catalog = (index, time.monotonic() + CATALOG_TTL)
        return index

    def vendor_engine(self, vendor: Vendor) -> Engine:
        cfg = settings.FLOCK
        key = (vendor.name, vendor.url(cfg), vendor.key(cfg), cfg.engine_timeout_seconds)
        engine = self._vendors.get(key)
        if engine is None:
            engine = self._vendors[key] = make_vendor_engine(vendor, cfg)
        return engine

    async def candidates(self, requested: str, *, session: str = "",
                         need: str | None = None) -> list[Candidate]:
        """Every engine that serves `requested`, best first (gateway.balancing: the session's
        replica, least outstanding, the leader on ties), then those of each model in its catalog
        fallback chain. 'auto' is the default model, or one with the capability `need` (vision,
        tools, embedding). A vendor model no engine here serves goes to its vendor."""
        pool = await self.pool()
        vendor = vendor_for(requested)
        if not pool and vendor is None:
            cfg = settings.FLOCK
            raise EngineUnreachable(engine="none", endpoint="(no engine configured)",
                                    hint="python manage.py up  (starts the embedded llama.cpp "
                                         "engine), or set FLOCK_ENGINE and its endpoint" if not
                                    cfg.engine else "")
        listings = [(node, engine, await self.listing(engine)) for node, engine in pool]
        index = await self.catalog_index()
        auto = is_auto(requested)
        name = requested
        if auto:
            served = [m.id for _, _, lst in listings for m in lst.models]
            name = auto_pick(served, index, default=settings.FLOCK.default_model, need=need)
        entry = index.entry_of(name)
        groups = [await self._group(listings, index, name, entry, session, rank=0)]
        for rank, other in enumerate(entry.fallback if entry else (), start=1):
            fallback = index.entries.get(other)
            if fallback is not None:
                groups.append(await self._group(listings, index, other, fallback, session,
                                                rank=rank))
        if not groups[0] and vendor is not None and entry is None and not auto:
            if not vendor.key(settings.FLOCK):
                raise vendor_disabled(requested, vendor, sorted(
                    {m.id for _, _, lst in listings for m in lst.models}))
            groups[0] = [Candidate(vendor.name, self.vendor_engine(vendor), name.strip(),
                                   name=name.strip())]
        groups = [g for g in latency_order(groups, settings.FLOCK.latency_fallback_p95_seconds)
                  if g]
        if groups:
            return [c for group in groups for c in group]
        failures = [lst.error for _, _, lst in listings if lst.error is not None]
        if failures and (len(failures) == len(listings) or auto):
            raise failures[0]
        served_names = sorted({m.id for _, _, lst in listings for m in lst.models})
        raise ModelNotFound(
            f"The model '{requested}' does not exist or is not served by any engine. "
            f"Available: {', '.join(served_names) or 'none'}.", param="model")

    async def _group(self, listings: list, index: CatalogIndex, name: str, entry: Entry | None,
                     session: str, *, rank: int) -> list[Candidate]:
        """The engines serving `name` (or, for a catalog model, any name of its entry)."""
        found = [Candidate(node, engine, model.id, model.context_length, name=name, rank=rank)
                 for node, engine, lst in listings for model in lst.models
                 if name and (same_model(name, model.id)
                              or (entry is not None and index.entry_of(model.id) is entry))]
        if not found:
            return found
        return await balancing.order(found, requested=name, session=session,
                                     leaders=self.leaders)


def same_model(requested: str, engine_id: str) -> bool:
    if requested == engine_id:
        return True
    a, b = _normal(requested), _normal(engine_id)
    return a == b


def _normal(name: str) -> str:
    name = name.strip().lower()
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    name = name.rsplit("/", 1)[-1] if name.endswith(".gguf") else name
    if name.endswith(".gguf"):
        name = name[: -len(".gguf")]
    return name


router = Router()

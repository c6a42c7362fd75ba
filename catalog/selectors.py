"""Reads: the catalog, searches over it, installed models, and defaults."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from catalog import hardware, loader
from catalog.models import InstalledModel, InstallState
from catalog.schema import Entry
from flocksite.compiled_query import Compiled

SORTS = ("id", "released", "size")
# Words people search with that name a capability.
_CAPABILITY_WORDS = {"coding": "code", "coder": "code", "images": "vision", "image": "vision",
                     "multimodal": "vision", "embeddings": "embedding", "embed": "embedding",
                     "rag": "embedding", "thinking": "reasoning", "reason": "reasoning",
                     "function": "tools", "functions": "tools", "tool": "tools"}
# Assumed when no pull has finished yet: a 400 Mbit/s line.
ASSUMED_PULL_BPS = 50_000_000


def catalog() -> loader.Catalog:
    return loader.load_configured()


def entry_get(model_id: str) -> Entry | None:
    return catalog().get(model_id)


def _matches(entry: Entry, word: str) -> bool:
    word = word.lower()
    if _CAPABILITY_WORDS.get(word) in entry.capabilities:
        return True
    haystack = " ".join([entry.id, entry.name, entry.family, entry.description, entry.license,
                         entry.tier, *entry.capabilities]).lower()
    return word in haystack


def catalog_search(query: str = "", *, sort: str = "id", since: date | None = None,
                   capability: str | None = None) -> list[Entry]:
    """Entries matching every word of `query` (in id, name, family, description, licence, tier or
    capabilities), released on or after `since`; sorted by id, newest first, or smallest first."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    words = query.split()
    found = [e for e in catalog().entries.values()
             if all(_matches(e, w) for w in words)
             and (since is None or e.released >= since)
             and (capability is None or capability in e.capabilities)]
    if sort == "released":
        return sorted(found, key=lambda e: (e.released, e.id), reverse=True)
    if sort == "size":
        return sorted(found, key=lambda e: (e.size_gb, e.id))
    return sorted(found, key=lambda e: e.id)


def installed_all() -> QuerySet[InstalledModel]:
    return InstalledModel.objects.select_related("node").order_by("model_id", "node__name")


def installed_for(model_id: str) -> QuerySet[InstalledModel]:
    return installed_all().filter(model_id=model_id)


def installed_ids() -> set[str]:
    return set(InstalledModel.objects.values_list("model_id", flat=True))


def known_ids() -> list[str]:
    """Every id a user might mean: the catalog's and the installed ones."""
    return sorted(set(catalog().entries) | installed_ids())


def served_endpoints() -> list[tuple[str, str, str]]:
    """(node name, engine kind, endpoint) of the llama-servers started for added models on
    routable nodes; what the router needs to route to them besides each node's engine."""
    from cluster.sharding_selectors import coordinator_endpoints

    # Sharded models are served by their coordinator llama-server (cluster.sharding).
    return list(_SERVED.rows()) + coordinator_endpoints()


_SERVED = Compiled(lambda: installed_all().filter(state=InstallState.READY, node__state="ready")
                   .exclude(serve_endpoint="").values_list("node__name", "engine", "serve_endpoint"))


def pull_rate_bps() -> float:
    """Bytes per second of the recent finished pulls, for ETAs; an assumption before any."""
    rows = InstalledModel.objects.filter(state=InstallState.READY, ready_at__isnull=False,
                                         pull_started_at__isnull=False, bytes_total__gt=0) \
        .order_by("-ready_at")[:5]
    rates = []
    for row in rows:
        seconds = (row.ready_at - row.pull_started_at).total_seconds()
        if seconds > 0.5 and row.bytes_total > 10_000_000:
            rates.append(row.bytes_total / seconds)
    return sum(rates) / len(rates) if rates else ASSUMED_PULL_BPS


def default_model_for(hw: dict, engine: str) -> Entry | None:
    """The catalog model to use by default on a node with `hw` running `engine`."""
    return hardware.default_model_choose(catalog().entries.values(), hw, engine)

"""Models: what is installed on which node (with live pull progress), the catalog to install
from, and removal."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.http import require_POST

from catalog import planning, selectors, services
from catalog.errors import CatalogError
from catalog.models import InstallState
from catalog.schema import PERMISSIVE
from cluster.selectors import nodes_routable
from flocksite.dashboard.auth import actor_of, staff_required
from flocksite.dashboard.background import background_start
from flocksite.dashboard.layout import page
from flocksite.dashboard.responses import action_done, action_failed

SORTS = {"id": "id", "newest": "released", "size": "size"}  # what the page says -> the selector's
TO = "dashboard:models"


def installed_context(params: QueryDict) -> dict[str, Any]:
    rows = []
    for row in selectors.installed_all():
        fraction = row.fraction
        if row.state == InstallState.READY:
            fraction = 1.0
        rows.append({"row": row, "percent": None if fraction is None else int(fraction * 100),
                     "busy": row.state in (InstallState.PENDING, InstallState.PULLING,
                                           InstallState.REMOVING)})
    return {"installed": rows}


def catalog_context(params: QueryDict) -> dict[str, Any]:
    query = params.get("q", "").strip()
    sort = params.get("sort", "id")
    hide_installed = params.get("hide_installed") == "1"
    installed = selectors.installed_ids()
    entries = selectors.catalog_search(query, sort=SORTS.get(sort, "id"))
    rows = [{"entry": e, "installed": e.id in installed,
             "license_label": e.license_name,
             "license_kind": "permissive" if e.license in PERMISSIVE else "restricted",
             "min_nodes": e.sharding.min_nodes if e.sharding_required and e.sharding else 0}
            for e in entries if not (hide_installed and e.id in installed)]
    return {"catalog": rows, "q": query, "sort": sort if sort in SORTS else "id",
            "hide_installed": hide_installed, "catalog_total": len(selectors.catalog().entries)}


@staff_required
def models_page(request: HttpRequest) -> HttpResponse:
    nodes = [n.name for n in nodes_routable()]
    return page(request, "dashboard/models.html", "models", nodes=nodes, sorts=list(SORTS),
                **installed_context(request.GET), **catalog_context(request.GET))


@require_POST
@staff_required
def model_install(request: HttpRequest) -> HttpResponse:
    spec = request.POST.get("spec", "").strip()
    node_name = request.POST.get("node", "").strip() or None
    if not spec:
        return action_failed(request, "Name a model to install.", to=TO)
    try:
        # The checks model_add makes first, answered now; the pull itself takes minutes.
        plan = planning.plan(spec, node_name=node_name)
        if plan.sharding:
            return action_failed(request, f"{plan.choice.model_id} must be split across "
                                          f"{plan.sharding['min_nodes']} nodes (see Shards).", to=TO)
        services.fit_guard(plan, force=False)
    except CatalogError as exc:
        return action_failed(request, str(exc), to=TO)
    model_id, node = plan.choice.model_id, plan.node.name
    if selectors.installed_for(model_id).filter(node=plan.node, state=InstallState.READY).exists():
        return action_done(request, f"{model_id} is already installed on {node}.", to=TO)
    background_start(services.model_add, spec=spec, node_name=node, actor=actor_of(request),
                     wait=False)
    return action_done(request, f"Installing {model_id} on {node}…", to=TO, model=model_id,
                       node=node)


@require_POST
@staff_required
def model_remove(request: HttpRequest) -> HttpResponse:
    model_id = request.POST.get("model", "").strip()
    node_name = request.POST.get("node", "").strip() or None
    try:
        nodes = services.model_remove(model_id=model_id, node_name=node_name,
                                      actor=actor_of(request))
    except CatalogError as exc:
        return action_failed(request, str(exc), to=TO)
    return action_done(request, f"Removed {model_id} from {', '.join(nodes)}.", to=TO)

"""Writes for models: add (record, pull on the node, serve), and remove (unload, forget).

Pulls run as the Celery task `catalog.model_pull` on the node's queue. When Celery is eager (no
REDIS_URL) or the node is this machine, the task runs here with `.apply()`, so the caller sees
every progress event; for another node it is sent to that node's queue and the caller follows
the progress the task writes to the InstalledModel row."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog import planning, progress
from catalog.errors import DoesNotFit, NotInstalled, PullFailed, ShardingRequired
from catalog.models import InstalledModel, InstallState
from catalog.suggest import suggest

if TYPE_CHECKING:
    from accounts.audit import Actor

log = logging.getLogger("catalog")
WAIT_POLL = 0.5


def _actor_name(actor: Actor | None) -> str:
    return getattr(actor, "name", "") or "system:flock"


def _audit(actor: Actor | None, action: str, target: str, details: dict) -> None:
    # One entry per admin mutation; the audit log arrives with the team-controls issue.
    try:
        from accounts.audit import Actor as AuditActor
        from accounts.audit import audit_record
    except ImportError:
        log.info("%s %s %s %s", _actor_name(actor), action, target, details)
        return
    audit_record(actor=actor or AuditActor.system(), action=action, target=target,
                 details=details)


def is_local(node: Any) -> bool:
    from cluster.services import local_node_name

    return node.name == local_node_name()


def runs_here(node: Any) -> bool:
    return bool(settings.CELERY_TASK_ALWAYS_EAGER) or is_local(node)


def _dispatch(task: Any, installed: InstalledModel, on_progress: progress.Listener | None) -> None:
    kwargs = {"installed_id": installed.pk}
    if runs_here(installed.node):
        with progress.listening(installed.pk, on_progress):
            task.apply(kwargs=kwargs, throw=True)
        return
    from flocksite.celery import node_queue

    queue = node_queue(installed.node.name)
    transaction.on_commit(lambda: task.apply_async(kwargs=kwargs, queue=queue))


def model_add(*, spec: str, node_name: str | None = None, force: bool = False,
              actor: Actor | None = None, on_progress: progress.Listener | None = None,
              wait: bool = True, timeout: float | None = None) -> InstalledModel:
    """Adds a model to a node: checks it fits (unless `force`), records it, pulls its weights
    through a task on the node, starts or reloads what serves it, and (with `wait`) returns once
    it is ready. Raises ShardingRequired for models that must be split across nodes."""
    plan = planning.plan(spec, node_name=node_name)
    if plan.sharding:
        raise ShardingRequired(
            f"{plan.choice.model_id} must be split across at least "
            f"{plan.sharding['min_nodes']} nodes: use `manage.py shard create "
            f"{plan.choice.model_id} {plan.sharding['min_nodes']}`",
            plan.choice.model_id, plan.sharding["min_nodes"])
    fit_guard(plan, force=force)
    existing = InstalledModel.objects.filter(model_id=plan.choice.model_id, node=plan.node,
                                             state=InstallState.READY).first()
    if existing is not None and not force:
        return existing  # adding twice is a no-op; --force pulls and reloads again
    installed = _record(plan, actor)
    _audit(actor, "model.add", installed.model_id,
           {"node": plan.node.name, "engine": plan.choice.engine, "source": plan.choice.source,
            "forced": force and not plan.fit.ok})
    _dispatch_pull(installed, on_progress)
    if wait:
        installed = model_wait(installed_id=installed.pk, on_progress=on_progress,
                               timeout=timeout)
    else:
        installed.refresh_from_db()
    return installed


def fit_guard(plan: planning.Plan, *, force: bool) -> None:
    """Refuses a model that does not fit its node, unless forced."""
    if not plan.fit.ok and not force:
        raise DoesNotFit(f"{plan.choice.model_id} does not fit node {plan.node.name}: "
                         f"{'; '.join(plan.fit.reasons)} (add --force to install anyway)", plan.fit)


def _record(plan: planning.Plan, actor: Actor | None) -> InstalledModel:
    choice, entry = plan.choice, plan.wanted.entry
    fields = {"spec": plan.wanted.spec, "engine": choice.engine,
              "engine_model": choice.engine_model, "source": choice.source,
              "catalog_id": entry.id if entry else "",
              "gguf": (plan.wanted.sources.get("llamacpp") or {}) if choice.engine == "llamacpp"
              else {},
              "context_length": entry.context_length if entry else None,
              "embeddings": "embedding" in plan.wanted.capabilities,
              "added_by": _actor_name(actor)}
    with transaction.atomic():
        installed, created = InstalledModel.objects.select_for_update().get_or_create(
            model_id=choice.model_id, node=plan.node,
            defaults={**fields, "bytes_total": plan.size_bytes or 0})
        if not created and installed.state in (InstallState.PULLING, InstallState.REMOVING):
            raise PullFailed(f"{choice.model_id} on {plan.node.name} is already "
                             f"{installed.state}; wait for it to finish")
        if not created:
            InstalledModel.objects.filter(pk=installed.pk).update(
                **fields, state=InstallState.PENDING, error="")
    installed.refresh_from_db()
    return installed


def _dispatch_pull(installed: InstalledModel, on_progress: progress.Listener | None) -> None:
    from catalog.tasks import model_pull as pull_task

    try:
        _dispatch(pull_task, installed, on_progress)
    except PullFailed:
        raise
    except Exception as exc:  # the row already says why; the caller gets it in one line
        installed.refresh_from_db()
        raise PullFailed(installed.error or f"pull failed: {exc}") from exc


def model_wait(*, installed_id: int, on_progress: progress.Listener | None = None,
               timeout: float | None = None) -> InstalledModel:
    """Follows a pull running elsewhere through its row, until ready or failed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        installed = InstalledModel.objects.select_related("node").get(pk=installed_id)
        if on_progress is not None and installed.state == InstallState.PULLING:
            on_progress(progress.Progress(installed.bytes_done, installed.bytes_total,
                                          installed.status_text))
        if installed.state == InstallState.FAILED:
            raise PullFailed(installed.error or f"pulling {installed.model_id} failed")
        if installed.state == InstallState.READY:
            return installed
        if deadline is not None and time.monotonic() > deadline:
            raise PullFailed(f"{installed.model_id} is still {installed.state} on "
                             f"{installed.node.name}; follow it with `manage.py model ls`")
        time.sleep(WAIT_POLL)


def model_pull(*, installed_id: int) -> InstalledModel:
    """The pull itself, on the node (the task's body): weights, then what serves them."""
    from catalog import installers

    started = InstalledModel.objects.filter(pk=installed_id).exclude(
        state__in=[InstallState.READY, InstallState.REMOVING]).update(
        state=InstallState.PULLING, pull_started_at=timezone.now(), error="", status_text="")
    installed = InstalledModel.objects.select_related("node").get(pk=installed_id)
    if not started:
        return installed  # already done (a retried or duplicated task): nothing to do
    try:
        changes = installers.pull(installed, progress.Reporter(installed_id))
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        InstalledModel.objects.filter(pk=installed_id).update(
            state=InstallState.FAILED, error=message[:2000])
        log.warning("pulling %s on %s failed: %s", installed.model_id, installed.node.name, exc)
        raise
    InstalledModel.objects.filter(pk=installed_id).update(
        state=InstallState.READY, ready_at=timezone.now(), **changes)
    installed.refresh_from_db()
    return installed


def model_remove(*, model_id: str, node_name: str | None = None, force: bool = False,
                 actor: Actor | None = None) -> list[str]:
    """Unloads `model_id` from its engine(s), deletes weights Flock downloaded, and forgets it;
    returns the nodes it was removed from. With `force`, forgets it even when an engine cannot
    be reached."""
    from catalog import selectors

    rows = list(selectors.installed_for(model_id))
    if node_name:
        rows = [r for r in rows if r.node.name == node_name]
    if not rows:
        close = suggest(model_id, selectors.installed_ids())
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            "; see `manage.py model ls`"
        where = f" on {node_name}" if node_name else ""
        raise NotInstalled(f"{model_id!r} is not installed{where}{hint}", close)
    removed = []
    for row in rows:
        _remove_one(row, force)
        removed.append(row.node.name)
    _audit(actor, "model.remove", model_id, {"nodes": removed, "forced": force})
    return removed


def _remove_one(row: InstalledModel, force: bool) -> None:
    from catalog.tasks import model_unload

    InstalledModel.objects.filter(pk=row.pk).update(state=InstallState.REMOVING)
    try:
        if runs_here(row.node):
            model_unload.apply(kwargs={"installed_id": row.pk}, throw=True)
        else:
            from flocksite.celery import node_queue

            model_unload.apply_async(kwargs={"installed_id": row.pk},
                                     queue=node_queue(row.node.name)).get(timeout=120)
    except Exception as exc:
        if not force:
            InstalledModel.objects.filter(pk=row.pk).update(state=InstallState.FAILED,
                                                            error=f"remove failed: {exc}")
            raise PullFailed(f"could not unload {row.model_id} from {row.node.name}: "
                             f"{str(exc).splitlines()[0] if str(exc) else exc!r} "
                             "(add --force to forget it anyway)") from exc
        log.warning("forgetting %s on %s although unloading failed: %s", row.model_id,
                    row.node.name, exc)
    InstalledModel.objects.filter(pk=row.pk).delete()


def model_unload(*, installed_id: int) -> dict[str, Any]:
    """The engine side of a removal, on the node (the task's body)."""
    from catalog import installers

    row = InstalledModel.objects.select_related("node").filter(pk=installed_id).first()
    if row is None:
        return {"unloaded": False, "reason": "already forgotten"}
    return installers.unload(row)


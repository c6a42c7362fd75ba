"""`manage.py model search|info|ls|add|remove`: the model catalog and the models on the nodes."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from catalog import hardware, planning, rendering, selectors, services
from catalog.errors import CatalogError, ShardingRequired
from catalog.progress import Progress
from catalog.suggest import did_you_mean
from catalog.terminal import ProgressBar, human_bytes, pick

ACTIONS = ("search", "info", "ls", "add", "remove")


def _suggest_commands(parser: argparse.ArgumentParser) -> None:
    """Makes the parser answer an unknown command word with the nearest real one. argparse
    checks the choice before any action runs, so the check itself is wrapped."""
    check = parser._check_value

    def checked(action: argparse.Action, value: Any) -> None:
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            raise argparse.ArgumentError(
                action, f"unknown command {value!r}{did_you_mean(value, ACTIONS)} "
                        f"(commands: {', '.join(ACTIONS)})")
        check(action, value)

    parser._check_value = checked  # type: ignore[method-assign]


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-01-31") from None


class _Raw:
    """Writes through a command's stdout without the newline Django appends."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


def interactive(stdout: OutputWrapper) -> bool:
    return sys.stdin.isatty() and stdout.isatty()


def _latest(tag: str) -> str:
    return tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest"


def _cli_actor() -> Any:
    try:
        from accounts.audit import Actor
    except ImportError:
        return None
    return Actor.cli()


class Command(BaseCommand):
    help = ("Find models in the catalog and manage the models on your nodes: search, info, ls, "
            "add, remove. `manage.py model COMMAND --help` explains each.")

    def add_arguments(self, parser) -> None:
        _suggest_commands(parser)
        sub = parser.add_subparsers(dest="action", metavar="COMMAND")
        search = sub.add_parser("search", help="search the catalog",
                                description="List catalog models whose id, name, family, "
                                "capabilities or licence match every word of QUERY.")
        search.add_argument("query", nargs="*", help="words to match, e.g. coding or vision")
        search.add_argument("--sort", choices=selectors.SORTS, default="id",
                            help="order: id (default), released (newest first), size "
                                 "(smallest first)")
        search.add_argument("--since", type=_date, metavar="YYYY-MM-DD",
                            help="only models released on or after this date")
        search.add_argument("--json", action="store_true", help="print JSON")
        info = sub.add_parser("info", help="show everything about one catalog model",
                              description="Facts, sources and fit on each node for one model.")
        info.add_argument("id", nargs="?", help="catalog id (picker on a terminal if omitted)")
        info.add_argument("--json", action="store_true", help="print JSON")
        ls = sub.add_parser("ls", help="list the models on the nodes",
                            description="Models added with `model add`, and (unless --no-probe) "
                            "models the nodes' engines serve besides.")
        ls.add_argument("--json", action="store_true", help="print JSON")
        ls.add_argument("--no-probe", action="store_true", help="do not ask the engines")
        self._add_add(sub)
        remove = sub.add_parser("remove", help="unload and forget a model",
                                description="Unload the model from its engine(s), delete weights "
                                "Flock downloaded for it, and forget it.")
        remove.add_argument("id", nargs="?", help="installed model (picker if omitted)")
        remove.add_argument("--node", help="only on this node")
        remove.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm")
        remove.add_argument("--force", action="store_true",
                            help="forget it even when its engine cannot be reached")

    def _add_add(self, sub) -> None:
        add = sub.add_parser(
            "add", help="add a model to a node",
            description="Check the model fits, record it, pull its weights on the node through "
            "its Celery queue, start or reload what serves it, and make it routable.",
            epilog="SPEC is a catalog id, hf:OWNER/REPO[:QUANT|/FILE.gguf], ollama:TAG or "
                   "file:PATH.gguf")
        add.add_argument("spec", nargs="?", metavar="SPEC", help="what to add (picker if omitted)")
        add.add_argument("--node", help="the node to add it to (default: the best fit)")
        add.add_argument("--force", action="store_true",
                         help="install even when RAM/VRAM checks fail; pull again if present")
        add.add_argument("--dry-run", action="store_true",
                         help="print size, engine, node, RAM check and ETA; pull nothing")
        add.add_argument("--json", action="store_true", help="with --dry-run: print JSON")

    def handle(self, *args, **options) -> None:
        action = options.get("action")
        if not action:
            raise CommandError(f"missing command: one of {', '.join(ACTIONS)} "
                               "(`manage.py model --help`)")
        try:
            getattr(self, f"_{action}")(options)
        except CatalogError as exc:
            raise CommandError(str(exc)) from None

    def _emit_json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=str))

    # --- reads ---------------------------------------------------------------------------

    def _search(self, options: dict) -> None:
        entries = selectors.catalog_search(" ".join(options["query"]), sort=options["sort"],
                                           since=options["since"])
        if options["json"]:
            return self._emit_json([e.as_dict() for e in entries])
        if not entries:
            raise CommandError("no catalog model matches; try fewer words or "
                               "`manage.py model search`")
        self.stdout.write(rendering.search_table(entries, selectors.installed_ids()))

    def _info(self, options: dict) -> None:
        model_id = options["id"] or self._pick_catalog("info")
        entry = selectors.entry_get(model_id)
        if entry is None:
            raise CommandError(f"unknown model {model_id!r}"
                               f"{did_you_mean(model_id, selectors.known_ids())}")
        installed = list(selectors.installed_for(model_id))
        fits = self._fits(entry)
        if options["json"]:
            return self._emit_json({**entry.as_dict(),
                                    "installed": [rendering.installed_dict(r) for r in installed],
                                    "fit": {name: fit.as_dict() for name, fit in fits}})
        self.stdout.write("\n".join(rendering.entry_lines(entry, installed, fits)))

    def _fits(self, entry) -> list[tuple[str, hardware.Fit]]:
        from cluster.selectors import nodes_routable

        return [(node.name, hardware.entry_fit(entry, node.hardware or {}, node.engine))
                for node in nodes_routable()]

    def _ls(self, options: dict) -> None:
        installed = list(selectors.installed_all())
        rows = [rendering.installed_dict(r) for r in installed]
        if not options["no_probe"]:
            known = {(name, r.node.name) for r in installed
                     for name in (r.model_id, r.engine_model, _latest(r.engine_model))}
            rows += self._served_elsewhere(known)
        if options["json"]:
            return self._emit_json(rows)
        if not rows:
            self.stdout.write("No models yet. Find one with `manage.py model search`, then "
                              "`manage.py model add ID`.")
            return
        self.stdout.write(rendering.ls_table(rows))

    def _served_elsewhere(self, known: set[tuple[str, str]]) -> list[dict]:
        from cluster.agent import engine_access
        from cluster.selectors import nodes_routable
        from cluster.services import engine_probe

        rows = []
        for node in nodes_routable():
            endpoint, agent_key = engine_access(node)  # a worker: through its agent
            probe = engine_probe(node.engine, endpoint, timeout=1.0, api_key=agent_key or "")
            for name in probe.models:
                if (name, node.name) not in known:
                    rows.append({"model": name, "node": node.name, "engine": node.engine,
                                 "state": "served", "source": "engine", "size_bytes": None,
                                 "bytes_done": 0, "endpoint": node.engine_endpoint,
                                 "error": "", "added_by": "", "added_at": None, "ready_at": None})
        return rows

    # --- writes --------------------------------------------------------------------------

    def _add(self, options: dict) -> None:
        spec = options["spec"] or self._pick_catalog("add")
        entry = selectors.entry_get(spec)
        if entry is not None and entry.sharding_required and entry.sharding \
                and not options["dry_run"]:
            # Split across workers: no single node need fit it, or even run an engine.
            return self._hand_to_shard(entry.id, entry.sharding.min_nodes)
        plan = planning.plan(spec, node_name=options["node"])
        if options["dry_run"]:
            if options["json"]:
                return self._emit_json(plan.as_dict())
            return self.stdout.write("\n".join(["Dry run: nothing pulled.",
                                                *rendering.plan_lines(plan)]))
        if plan.sharding:
            return self._hand_to_shard(plan.choice.model_id, plan.sharding["min_nodes"])
        services.fit_guard(plan, force=options["force"])
        for note in plan.notes:
            self.stdout.write(f"note: {note}")
        bar = ProgressBar(_Raw(self.stdout), f"pulling {plan.choice.model_id}",
                          tty=self.stdout.isatty())
        self.stdout.write(f"adding {plan.choice.model_id} on {plan.node.name} "
                          f"({plan.choice.engine}, from {plan.choice.source})")

        def on_progress(event: Progress) -> None:
            bar.update(event.done, event.total, event.status)

        installed = services.model_add(spec=spec, node_name=plan.node.name,
                                       force=options["force"], actor=_cli_actor(),
                                       on_progress=on_progress)
        bar.finish(f"✔ {installed.model_id} ready on {installed.node.name}"
                   + (f" ({human_bytes(installed.bytes_total)})" if installed.bytes_total else ""))
        where = installed.serve_endpoint or installed.node.engine_endpoint
        self.stdout.write(f"  served at {where} as {installed.engine_model}")

    def _hand_to_shard(self, model_id: str, nodes: int) -> None:
        if "shard" in get_commands():
            from django.core.management import call_command

            self.stdout.write(f"{model_id} must be sharded; handing over to `shard create`")
            call_command("shard", "create", model_id, str(nodes), stdout=self.stdout._out)
            return
        raise ShardingRequired(f"{model_id} must be split across at least {nodes} nodes; "
                               "sharding is not available in this build yet", model_id, nodes)

    def _remove(self, options: dict) -> None:
        model_id = options["id"] or self._pick_installed()
        rows = [r for r in selectors.installed_for(model_id)
                if not options["node"] or r.node.name == options["node"]]
        if not rows and not options["node"] and self._sharded(model_id):
            from django.core.management import call_command

            self.stdout.write(f"{model_id} is sharded; handing over to `shard remove`")
            call_command("shard", "remove", model_id, *(["--yes"] if options["yes"] else []),
                         stdout=self.stdout._out)
            return
        if rows and not options["yes"]:
            where = ", ".join(r.node.name for r in rows)
            if not interactive(self.stdout):
                raise CommandError(f"removing {model_id} from {where} needs confirmation: "
                                   "add --yes")
            if not self._confirm(f"Remove {model_id} from {where}? [y/N] "):
                raise CommandError("cancelled; nothing removed")
        nodes = services.model_remove(model_id=model_id, node_name=options["node"],
                                      force=options["force"], actor=_cli_actor())
        self.stdout.write(f"✔ removed {model_id} from {', '.join(nodes)}")

    def _sharded(self, model_id: str) -> bool:
        if "shard" not in get_commands():
            return False
        from cluster.sharding_selectors import sharded_models

        return model_id in sharded_models()

    # --- prompts -------------------------------------------------------------------------

    def _read(self, prompt: str) -> str | None:
        self.stdout.write(prompt, ending="")
        self.stdout.flush()
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    def _confirm(self, question: str) -> bool:
        answer = self._read(question)
        return (answer or "").strip().lower() in ("y", "yes")

    def _pick_catalog(self, action: str) -> str:
        if not interactive(self.stdout):
            raise CommandError(f"missing model: `manage.py model {action} ID` (ids: "
                               "`manage.py model search`)")
        items = [(e.id, f"{e.size_gb:g} GB · {', '.join(e.capabilities)}")
                 for e in selectors.catalog_search()]
        return self._picked(pick(items, self._read, _Raw(self.stdout)))

    def _pick_installed(self) -> str:
        if not interactive(self.stdout):
            raise CommandError("missing model: `manage.py model remove ID` (installed: "
                               "`manage.py model ls`)")
        items = [(r.model_id, f"{r.node.name} · {r.state}") for r in selectors.installed_all()]
        if not items:
            raise CommandError("no models are installed")
        return self._picked(pick(items, self._read, _Raw(self.stdout),
                                 title="Pick a model to remove"))

    def _picked(self, chosen: str | None) -> str:
        if chosen is None:
            raise CommandError("nothing picked")
        return chosen

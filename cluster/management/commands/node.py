"""`manage.py node ls|show|drain|undrain|remove`: the cluster's machines from the command line."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Prefetch

from accounts.audit import Actor
from cluster import membership, serializers
from cluster.console import Console, table
from cluster.models import Placement
from cluster.selectors import node_find, nodes_all


def _nodes():
    return nodes_all().prefetch_related(Prefetch("placements", Placement.objects.order_by("model")))


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def _models(row: dict) -> str:
    names = [p["model"] + ("" if p["state"] == "loaded" else " (unavailable)")
             for p in row["placements"]]
    return ", ".join(names) or "—"


def _state(row: dict) -> str:
    if row["state"] == "ready" and not row["routable"]:
        return "ready (silent)"
    return row["state"]


class Command(BaseCommand):
    help = ("List and inspect the cluster's nodes, drain one (no new requests; those in flight "
            "finish), undrain it, or remove it (forget it and revoke its key).")

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True,
                                    metavar="ls|show|drain|undrain|remove")
        ls = sub.add_parser("ls", help="list nodes")
        ls.add_argument("--json", action="store_true", help="print JSON")
        show = sub.add_parser("show", help="hardware, models, recent requests and errors")
        show.add_argument("id", help="node id or name")
        show.add_argument("--json", action="store_true", help="print JSON")
        for name, text in (("drain", "route no new requests to the node"),
                           ("undrain", "route to a drained node again")):
            cmd = sub.add_parser(name, help=text)
            cmd.add_argument("id", help="node id or name")
        remove = sub.add_parser("remove", help="forget a node and revoke its key (tears down sharded models "
                                                  "with a process on it)")
        remove.add_argument("id", help="node id or name")
        remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, **opts) -> None:
        getattr(self, f"_{opts['action']}")(opts)

    def _find(self, ref: str):
        node = node_find(ref)
        if node is None:
            names = ", ".join(n.name for n in nodes_all()) or "none"
            raise CommandError(f"no node {ref!r} (nodes: {names})")
        return node

    def _ls(self, opts: dict) -> None:
        membership.nodes_sweep()
        rows = [serializers.node_dict(n) for n in _nodes()]
        if opts["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No nodes yet: start the leader with `manage.py up`.")
            return
        for row in rows:
            row.update(state_text=_state(row), models_text=_models(row),
                       seen=_ago(row["last_seen_seconds"]) if row["role"] == "worker" else "-",
                       engine_text=row["engine"] or "-")
        self.stdout.write(table(rows, [
            ("id", "ID"), ("name", "NAME"), ("role", "ROLE"), ("state_text", "STATE"),
            ("address", "ADDRESS"), ("hardware_summary", "HARDWARE"), ("engine_text", "ENGINE"),
            ("models_text", "MODELS"), ("in_flight", "LOAD"), ("seen", "LAST HEARTBEAT")]))

    def _show(self, opts: dict) -> None:
        membership.nodes_sweep()
        node = _nodes().get(pk=self._find(opts["id"]).pk)
        data = {**serializers.node_dict(node), **serializers.node_activity(node)}
        if opts["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        console = Console(self.stdout)
        engine = data["engine"] or "none"
        reach = "" if data["engine_reachable"] else f" (unreachable: {data['engine_error']})"
        lines = [
            f"Node {data['id']}: {data['name']} ({data['role']})",
            f"  State:      {_state(data)}" + (" — drain requested" if data["draining"] else ""),
            f"  Address:    {data['address'] or '-'}",
            f"  Hardware:   {data['hardware_summary']}",
            f"  Engine:     {engine} at {data['engine_local_endpoint'] or '-'}{reach}",
            f"  llama.cpp:  {data['llama_cpp_build'] or '-'}",
            f"  Models:     {_models(data)}",
            f"  Load:       {data['in_flight']} in flight (last heartbeat "
            f"{_ago(data['last_seen_seconds'])})",
            f"  Last hour:  {data['last_hour']['requests']} requests, "
            f"{data['last_hour']['errors']} errors",
        ]
        for line in lines:
            console.line(line)
        for title, key in (("Recent requests", "recent_requests"), ("Recent errors", "recent_errors")):
            console.line("")
            console.line(f"{title}:")
            if not data[key]:
                console.line("  none")
                continue
            for row in data[key]:
                row["time"] = (row["time"] or "")[:19].replace("T", " ")
            console.line(table(data[key], [("time", "TIME"), ("user", "USER"), ("model", "MODEL"),
                                           ("status", "STATUS"), ("latency_ms", "MS"),
                                           ("error", "ERROR")]))

    def _drain(self, opts: dict) -> None:
        node = membership.node_drain(node=self._find(opts["id"]), actor=Actor.cli())
        self.stdout.write(f"Draining {node.name}: no new requests go to it; those in flight "
                          "finish. Undo with `manage.py node undrain`.")

    def _undrain(self, opts: dict) -> None:
        node = membership.node_undrain(node=self._find(opts["id"]), actor=Actor.cli())
        self.stdout.write(f"{node.name} takes requests again (state: {node.state}).")

    def _remove(self, opts: dict) -> None:
        node = self._find(opts["id"])
        if not opts["yes"]:
            if not sys.stdin.isatty():
                raise CommandError(f"removing {node.name} needs confirmation: add --yes")
            self.stdout.write(f"Remove node {node.name} and revoke its key? [y/N] ", ending="")
            self.stdout.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                raise CommandError("not removed")
        name = node.name
        try:
            membership.node_remove(node=node, actor=Actor.cli())
        except membership.MembershipError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Removed {name}; its key is revoked, so its worker stops. To add the "
                          "machine again: `manage.py token create --node`, then join.")

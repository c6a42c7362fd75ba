"""`manage.py status`: this machine's role and the cluster's nodes and engines."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand

from cluster import diagnostics
from cluster.console import Console


class Command(BaseCommand):
    help = (
        "Show this machine's role, the listen URL and whether the gateway answers there, the "
        "database, the engine and whether it is reachable, every node with its engine, and "
        "counts of nodes and API keys. --json prints the same as one JSON object."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")

    def handle(self, *args, **options) -> None:
        status = diagnostics.status_collect(settings.FLOCK)
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2))
            return
        self._render(Console(self.stdout), status)

    def _render(self, console: Console, status: dict) -> None:
        role = status["role"] if status["role"] != "none" else "not set up (run `manage.py up`)"
        gateway = console.paint("running", "green") if status["gateway_running"] \
            else console.paint("not running", "red")
        db = status["database"]
        db_state = "reachable" if db["reachable"] else f"unreachable: {db['error']}"
        if db["pending_migrations"]:
            db_state += f", {db['pending_migrations']} migrations pending"
        console.line(f"Role:      {role} (node {status['node']})")
        console.line(f"Gateway:   {status['api_base_url']}  [{gateway}]  listen {status['listen']}")
        console.line(f"Database:  {db['vendor']} {db['location']}  [{db_state}]")
        console.line(f"Engine:    {self._engine(console, status['engine'])}")
        counts = status["counts"]
        if counts:
            console.line(f"Counts:    {counts['nodes']} nodes ({counts['nodes_ready']} ready, "
                         f"{counts['nodes_routable']} routable), "
                         f"{counts['api_keys_active']} active API keys")
        console.line("")
        self._nodes(console, status["nodes"])

    def _engine(self, console: Console, engine: dict) -> str:
        if not engine["kind"]:
            return "none found (`manage.py doctor` tells you how to start one)"
        kind = "llamacpp (embedded)" if engine["embedded"] else engine["kind"]
        state = console.paint("reachable", "green") if engine["reachable"] \
            else console.paint("unreachable", "red")
        models = f"  models: {', '.join(engine['models'])}" if engine["models"] else ""
        return f"{kind} at {engine['endpoint']}  [{state}]{models}"

    def _nodes(self, console: Console, nodes: list[dict]) -> None:
        if not nodes:
            console.line("No nodes registered yet.")
            return
        header = ("NAME", "ROLE", "STATE", "ENGINE", "ENDPOINT", "ENGINE UP", "MODELS")
        rows = [header] + [
            (n["name"], n["role"], n["state"],
             (n["engine"] + (" (embedded)" if n["embedded"] else "")) or "-",
             n["endpoint"] or "-", "yes" if n["reachable"] else "no",
             ", ".join(n["models"]) or "-")
            for n in nodes
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            console.line("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())

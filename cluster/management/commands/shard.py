"""`manage.py shard create|ls|remove|logs`: one model split across several machines with
llama.cpp RPC."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.audit import Actor
from cluster import sharding
from cluster import sharding_selectors as selectors
from cluster.console import Console, table


class Command(BaseCommand):
    help = ("Split a model across several workers with llama.cpp RPC: an rpc-server on each "
            "worker, a coordinator llama-server on the leader that serves the model. "
            "`manage.py shard COMMAND --help` explains each command.")

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="create|ls|remove|logs")
        create = sub.add_parser(
            "create", help="shard a model across N workers",
            description="Pick the N ready workers with the most free memory, start rpc-server on "
            "each (through its Celery queue, bound to its cluster address), wait for their "
            "ports, start the coordinator `llama-server --rpc ...` on the leader (or "
            "FLOCK_COORDINATOR_NODE), and route the model to it. A failed step stops "
            "everything started and names the step and the node.")
        create.add_argument("model", help="catalog id (with a llama.cpp source), or any id with "
                                          "--gguf")
        create.add_argument("count", nargs="?", type=int, metavar="N",
                            help="workers to split across (default: the catalog's min_nodes, "
                                 "else 2)")
        create.add_argument("--gguf", metavar="PATH", help="the model file on the coordinator's "
                                                           "node (default: from the catalog)")
        create.add_argument("--bind-all", action="store_true",
                            help="bind rpc-servers to 0.0.0.0 instead of each worker's cluster "
                                 "address (rpc-server has no authentication: trusted networks "
                                 "only)")
        create.add_argument("--json", action="store_true", help="print JSON")
        ls = sub.add_parser("ls", help="list every shard and coordinator",
                            description="Every sharded model's processes: node, port, state, "
                            "restarts.")
        ls.add_argument("--json", action="store_true", help="print JSON")
        remove = sub.add_parser("remove", help="stop a sharded model and forget it",
                                description="Stop the coordinator and every rpc-server of MODEL "
                                "and delete their rows and placement.")
        remove.add_argument("model")
        remove.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm")
        logs = sub.add_parser("logs", help="show the processes' logs",
                              description="The last lines of each process's log, read on its node.")
        logs.add_argument("model")
        logs.add_argument("--node", metavar="ID", help="only this node's process (id or name)")
        logs.add_argument("--lines", "-n", type=int, default=50, help="lines per log (50)")
        logs.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **opts) -> None:
        self.console = Console(self.stdout)
        try:
            getattr(self, f"_{opts['action']}")(opts)
        except sharding.ShardError as exc:
            raise CommandError(str(exc)) from None

    def _rows(self, shards: list) -> str:
        rows = [selectors.shard_dict(s) for s in shards]
        for row in rows:
            row["pid"] = row["pid"] or "-"
        return table(rows, [("model", "MODEL"), ("role", "ROLE"), ("node", "NODE"),
                            ("endpoint", "ADDRESS"), ("pid", "PID"), ("state", "STATE"),
                            ("restarts", "RESTARTS")])

    def _create(self, opts: dict) -> None:
        model = opts["model"]
        if not opts["json"]:
            self.console.step(f"sharding {model} across "
                              f"{opts['count'] or 'the default number of'} workers...")
        shards = sharding.shard_create(model=model, count=opts["count"], actor=Actor.cli(),
                                       gguf=opts["gguf"], bind_all=opts["bind_all"])
        if opts["json"]:
            self.stdout.write(json.dumps([selectors.shard_dict(s) for s in shards], indent=2))
            return
        self.console.ok(f"{model} is served by its coordinator; requests for it go there")
        self.stdout.write(self._rows(shards))

    def _ls(self, opts: dict) -> None:
        shards = selectors.shards_all()
        if opts["json"]:
            self.stdout.write(json.dumps([selectors.shard_dict(s) for s in shards], indent=2))
            return
        if not shards:
            self.stdout.write("No sharded models. Create one with `manage.py shard create MODEL N`.")
            return
        self.stdout.write(self._rows(shards))
        for shard in shards:
            if shard.state == "crashloop":
                self.console.warn(f"{shard.role} of {shard.model} on {shard.node.name} is in "
                                  f"crashloop: see `manage.py shard logs {shard.model} --node "
                                  f"{shard.node.name}`, then remove and create it again")

    def _remove(self, opts: dict) -> None:
        model = opts["model"]
        shards = selectors.shards_for(model)
        if shards and not opts["yes"]:
            nodes = ", ".join(sorted({s.node.name for s in shards}))
            if not sys.stdin.isatty():
                raise CommandError(f"removing {model} (processes on {nodes}) needs "
                                   "confirmation: add --yes")
            self.stdout.write(f"Stop {model} on {nodes}? [y/N] ", ending="")
            self.stdout.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                raise CommandError("not removed")
        stopped = sharding.shard_remove(model=model, actor=Actor.cli())
        where = ", ".join(f"{s['role']} on {s['node']}" for s in stopped)
        self.console.ok(f"removed {model}: stopped {where}")

    def _logs(self, opts: dict) -> None:
        found = sharding.shard_logs(model=opts["model"], node=opts["node"], lines=opts["lines"])
        if opts["json"]:
            self.stdout.write(json.dumps(found, indent=2))
            return
        for row in found:
            self.stdout.write(f"==> {row['role']} on {row['node']} ({row['state']}, "
                              f"{row['log_path'] or 'no log'}) <==")
            self.stdout.write(row["log"] or "(empty)")

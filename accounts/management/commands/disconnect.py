"""`manage.py disconnect CLIENT`: take back exactly what `connect CLIENT --write` added."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import snippets
from accounts.snippets.connections import ConnectFailed, connection_remove, connections_list
from accounts.snippets.formats import UnreadableConfig
from accounts.snippets.resolve import PLACEHOLDER
from cluster.console import Console, table


class Command(BaseCommand):
    help = (
        "Undo `connect CLIENT --write`: if the tool's config file is still as Flock left it, "
        "the backed-up original is put back byte for byte; if you edited it since, only the "
        "settings Flock added are removed and your edits stay. For a client set up by hand, "
        "prints what to undo. `disconnect --list` shows what connect has written."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("client", nargs="?", metavar="CLIENT",
                            help="a client connected with `connect CLIENT --write`")
        parser.add_argument("--list", action="store_true",
                            help="list the clients connect --write has configured")
        parser.add_argument("--json", action="store_true", help="print JSON (with --list)")

    def handle(self, *args, **opts) -> None:
        console = Console(self.stdout)
        data_dir = settings.FLOCK.data_dir
        if opts["list"]:
            return self._list(opts["json"], data_dir)
        if not opts["client"]:
            raise CommandError("name a client, e.g. `disconnect claude-code` (`disconnect "
                               "--list` shows the connected ones)")
        try:
            client = snippets.client_get(opts["client"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            removed = connection_remove(client=client.name, data_dir=data_dir)
        except ConnectFailed:
            return self._by_hand(console, client)
        except UnreadableConfig as exc:
            raise CommandError(str(exc)) from None
        if removed.how == "restored":
            console.ok(f"Restored {removed.path} to how it was before connect.\n")
        elif removed.how == "deleted":
            console.ok(f"Removed {removed.path}, which connect had created.\n")
        else:
            console.ok(f"Took Flock's settings out of {removed.path}.\n")
        for note in removed.notes:
            console.hint(note + "\n")

    def _by_hand(self, console: Console, client: snippets.Client) -> None:
        snippet = client.build(snippets.Target("http://localhost", PLACEHOLDER, "auto"))
        console.line(f"connect --write has not configured {client.name}; nothing to remove.\n")
        if snippet.undo:
            console.line(f"If you set it up by hand, this undoes it:\n  {snippet.undo}\n")

    def _list(self, as_json: bool, data_dir) -> None:
        try:
            rows = connections_list(data_dir=data_dir)
        except ConnectFailed as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No clients connected with `connect --write`.")
            return
        self.stdout.write(table(rows, [("client", "CLIENT"), ("path", "FILE"),
                                       ("url", "URL"), ("written_at", "WRITTEN")]))

"""`manage.py connect CLIENT`: the setup snippet for one client, optionally merged into that
tool's own config file."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import snippets
from accounts.snippets.connections import ConnectFailed, connection_write, connections_list
from accounts.snippets.formats import UnreadableConfig
from accounts.snippets.render import DIALECT_LABELS, snippet_text
from accounts.snippets.resolve import base_url_resolve, model_resolve, token_resolve
from cluster.console import Console, table


class Command(BaseCommand):
    help = (
        "Print what to set, paste or click to point one client at this Flock gateway: "
        "environment variables, the tool's config file in its current format, or the steps in "
        "its settings screen. --write also merges the config into the tool's own file (the "
        "original is backed up next to it, and `disconnect CLIENT` undoes it). The key comes "
        "from --token, else $FLOCK_TOKEN, else $FLOCK_DATA_DIR/admin.key. `connect --list` "
        "shows the clients."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("client", nargs="?", metavar="CLIENT",
                            help="e.g. claude-code, cursor, aider (see --list); without it, a "
                                 "numbered picker on a terminal")
        parser.add_argument("--model", metavar="M",
                            help="model the snippet selects (default: FLOCK_DEFAULT_MODEL or auto)")
        parser.add_argument("--base-url", metavar="URL",
                            help="gateway URL as clients reach it, with or without /v1 (default: "
                                 "FLOCK_EXTERNAL_URL, else http://localhost:<port>)")
        parser.add_argument("--token", metavar="T", help="the API key to put in the snippet")
        parser.add_argument("--write", action="store_true",
                            help="merge the config into the tool's config file under $HOME")
        parser.add_argument("--list", action="store_true", help="list the clients and exit")
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")

    def handle(self, *args, **opts) -> None:
        self.console = Console(self.stdout)
        cfg = settings.FLOCK
        if opts["list"]:
            return self._list(opts["json"], cfg.data_dir)
        try:
            client = snippets.client_get(opts["client"] or self._pick())
            target = snippets.Target(base_url_resolve(opts["base_url"], cfg), "",
                                     model_resolve(opts["model"], cfg))
            token = token_resolve(opts["token"], cfg.data_dir)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["write"] and token.is_placeholder:
            raise CommandError("no key to write: pass --token, set FLOCK_TOKEN, or run "
                               "`manage.py up` once to create the admin key")
        snippet = client.build(snippets.Target(target.root, token.value, target.model))
        if opts["json"]:
            self.stdout.write(json.dumps({**snippet.as_dict(), "token_source": token.source},
                                         indent=2))
        else:
            self._token_note(token)
            self.stdout.write(snippet_text(snippet))
        if opts["write"]:  # with --json, stdout stays pure JSON and the report goes to stderr
            self._write(snippet, cfg.data_dir, Console(self.stderr) if opts["json"] else
                        self.console)

    def _token_note(self, token) -> None:
        if token.is_placeholder:
            self.console.warn("No key found: replace <your-flock-key> below, or pass --token "
                              "(`manage.py invite NAME` issues a key for a teammate).\n")
        elif token.source not in ("--token", "$FLOCK_TOKEN"):
            self.console.warn(f"Using the admin key from {token.source}. For someone else's "
                              "tool, give them their own key with `manage.py invite NAME`.\n")

    def _write(self, snippet, data_dir, console: Console) -> None:
        try:
            written = connection_write(snippet=snippet, data_dir=data_dir)
        except (ConnectFailed, UnreadableConfig) as exc:
            raise CommandError(str(exc)) from None
        console.line("\n")
        if not written.changed:
            console.ok(f"{written.path} already has these settings; nothing written.\n")
        elif written.created:
            console.ok(f"Created {written.path}.\n")
        else:
            console.ok(f"Merged into {written.path} (original saved as {written.backup}).\n")
        for note in written.notes:
            console.hint(note + "\n")
        if written.changed and snippet.config and snippet.config.after:
            console.line(f"Still needed in the shell you start it from:\n  "
                         f"{snippet.config.after}\n")
        if written.changed:
            console.line(f"Undo with `manage.py disconnect {snippet.client}`.\n")

    def _list(self, as_json: bool, data_dir) -> None:
        try:
            connected = {row["client"] for row in connections_list(data_dir=data_dir)}
        except ConnectFailed as exc:
            raise CommandError(str(exc)) from None
        sample = snippets.Target("http://localhost", "", "auto")
        rows: list[dict[str, Any]] = []
        for client in snippets.CLIENTS:
            config = client.build(sample).config
            rows.append({"client": client.name, "title": client.title, "dialect": client.dialect,
                         "kind": client.kind, "config_file": config.path if config else None,
                         "connected": client.name in connected})
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for row in rows:
            row["file"] = f"{row['config_file'] or '-'}{'  [connected]' if row['connected'] else ''}"
        self.stdout.write(table(rows, [("client", "CLIENT"), ("title", "TOOL"),
                                       ("dialect", "API"), ("kind", "KIND"),
                                       ("file", "CONFIG (--write)")]))

    def _pick(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError("name a client, e.g. `connect claude-code` (`connect --list` "
                               "shows all of them)")
        for n, client in enumerate(snippets.CLIENTS, 1):
            self.stdout.write(f"{n:>3}. {client.name:<14} {client.title} "
                              f"({DIALECT_LABELS[client.dialect]})")
        try:
            answer = input("Client number or name: ").strip()
        except EOFError:
            answer = ""
        if answer.isdigit() and 1 <= int(answer) <= len(snippets.CLIENTS):
            return snippets.CLIENTS[int(answer) - 1].name
        if not answer:
            raise CommandError("no client chosen")
        return answer

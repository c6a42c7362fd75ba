"""`manage.py token create|ls|revoke`: API keys from the command line."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts import serializers, services
from accounts.audit import Actor
from accounts.durations import parse_duration
from accounts.models import ApiKey, Scope
from cluster.console import table


class Command(BaseCommand):
    help = "Create, list and revoke API keys. `token create --help` shows every option."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="create|ls|revoke")
        create = sub.add_parser("create", help="issue a key; its plaintext is printed once")
        create.add_argument("name", nargs="?", default="", help="a label, e.g. the teammate's name")
        scope = create.add_mutually_exclusive_group()
        scope.add_argument("--admin", action="store_true", help="admin scope (reaches /admin/v1)")
        scope.add_argument("--node", action="store_true",
                           help="a single-use join token for a worker (valid 5 minutes, or "
                                "--expires), printed with the `manage.py join` command to run")
        create.add_argument("--quota", type=int, default=0, metavar="N",
                            help="daily token quota, 0 for unlimited (default)")
        create.add_argument("--rpm", type=int, default=0, metavar="N",
                            help="requests per minute, 0 for unlimited (default)")
        create.add_argument("--models", default="", metavar="A,B",
                            help="comma-separated models this key may use (default: all)")
        create.add_argument("--expires", metavar="DURATION", help="e.g. 12h, 30d, 8w")
        create.add_argument("--json", action="store_true", help="print JSON")
        ls = sub.add_parser("ls", help="list keys (never their secrets)")
        ls.add_argument("--all", action="store_true", help="include revoked keys")
        ls.add_argument("--json", action="store_true", help="print JSON")
        revoke = sub.add_parser("revoke", help="revoke a key at once, in every gateway process")
        revoke.add_argument("id", type=int, help="the key's id (see `token ls`)")

    def handle(self, *args, **opts) -> None:
        getattr(self, f"_{opts['action']}")(opts)

    def _create(self, opts: dict) -> None:
        if opts["node"]:
            self._create_join_token(opts)
            return
        scope = Scope.ADMIN if opts["admin"] else Scope.USER
        name = opts["name"] or f"{scope}-{timezone.now():%Y%m%d-%H%M%S}"
        if opts["quota"] < 0 or opts["rpm"] < 0:
            raise CommandError("--quota and --rpm cannot be negative")
        try:
            expires = timezone.now() + parse_duration(opts["expires"]) if opts["expires"] else None
            issued = services.key_create(
                name=name, scope=scope, daily_token_quota=opts["quota"], rpm_limit=opts["rpm"],
                allowed_models=[m.strip() for m in opts["models"].split(",") if m.strip()],
                expires_at=expires, actor=Actor.cli())
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps({"token": issued.plaintext,
                                          "key": serializers.key_dict(issued.key)}, indent=2))
            return
        self.stdout.write(f"Created {scope} key {issued.key.id} ({name}). It is shown only now:\n")
        self.stdout.write(f"  {issued.plaintext}\n")

    def _create_join_token(self, opts: dict) -> None:
        from cluster.joining import join_command
        from cluster.membership import join_token_create
        from cluster.models import JOIN_TOKEN_TTL

        if opts["quota"] or opts["rpm"] or opts["models"] or opts["name"]:
            raise CommandError("a join token takes no name, --quota, --rpm or --models; the "
                               "node's own key is issued when it joins")
        try:
            ttl = parse_duration(opts["expires"]) if opts["expires"] else JOIN_TOKEN_TTL
            issued = join_token_create(actor=Actor.cli(), ttl=ttl)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        command = join_command(issued.plaintext)
        if opts["json"]:
            self.stdout.write(json.dumps({"token": issued.plaintext, "join_command": command,
                                          "expires_at": issued.token.expires_at.isoformat()},
                                         indent=2))
            return
        minutes = max(1, round(ttl.total_seconds() / 60))
        self.stdout.write(f"Join token (single use, valid for {minutes} minutes):\n"
                          f"  {issued.plaintext}\n\nOn the new worker machine, run:\n"
                          f"  {command}\n(the URL is FLOCK_EXTERNAL_URL, or this machine's "
                          "address; add --advertise HOST on the worker if it has several)")

    def _ls(self, opts: dict) -> None:
        keys = ApiKey.objects.select_related("owner").order_by("id")
        if not opts["all"]:
            keys = keys.filter(revoked_at__isnull=True)
        rows = [serializers.key_dict(k) for k in keys]
        if opts["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for row in rows:
            row["quota"] = row["daily_token_quota"] or "unlimited"
            row["rpm"] = row["rpm_limit"] or "-"
            row["last_used"] = (row["last_used_at"] or "never")[:19]
        self.stdout.write(table(rows, [("id", "ID"), ("name", "NAME"), ("scope", "SCOPE"),
                                       ("prefix", "KEY"), ("quota", "QUOTA/DAY"), ("rpm", "RPM"),
                                       ("status", "STATUS"), ("last_used", "LAST USED")]))

    def _revoke(self, opts: dict) -> None:
        try:
            key = ApiKey.objects.get(pk=opts["id"])
        except ApiKey.DoesNotExist:
            raise CommandError(f"no key with id {opts['id']} (see `manage.py token ls`)") from None
        if key.revoked_at:
            raise CommandError(f"key {key.id} ({key.name}) was already revoked")
        services.key_revoke(key=key, actor=Actor.cli())
        self.stdout.write(f"Revoked key {key.id} ({key.name}).")

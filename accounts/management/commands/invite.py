"""`manage.py invite NAME`: a user key for a teammate and a share card with setup snippets."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import snippets
from accounts.audit import Actor
from accounts.models import Scope
from accounts.services import key_create
from accounts.snippets.render import invite_card
from accounts.snippets.resolve import PLACEHOLDER, base_url_resolve, model_resolve


class Command(BaseCommand):
    help = (
        "Create a user-scope API key for a teammate and print a share card (Markdown, ready for "
        "chat) with the key, shown this once, and setup snippets for their tools. Default "
        f"clients: {', '.join(snippets.DEFAULT_INVITE_CLIENTS)}; --clients all for every one. "
        "Revoke later with `manage.py token revoke ID`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", metavar="NAME", help="the teammate, used as the key's name")
        parser.add_argument("--quota", type=int, default=0, metavar="N",
                            help="daily token quota, 0 for unlimited (default)")
        parser.add_argument("--clients", metavar="A,B",
                            help="comma-separated clients to include, or `all`")
        parser.add_argument("--model", metavar="M",
                            help="model the snippets select (default: FLOCK_DEFAULT_MODEL or auto)")
        parser.add_argument("--base-url", metavar="URL",
                            help="gateway URL as the teammate reaches it (default: "
                                 "FLOCK_EXTERNAL_URL, else http://localhost:<port>)")
        parser.add_argument("--format", choices=("markdown", "json"), default="markdown",
                            help="markdown share card (default) or JSON for scripts")

    def handle(self, *args, **opts) -> None:
        cfg = settings.FLOCK
        if opts["quota"] < 0:
            raise CommandError("--quota cannot be negative")
        try:
            clients = self._clients(opts["clients"])
            root = base_url_resolve(opts["base_url"], cfg)
            model = model_resolve(opts["model"], cfg)
            issued = key_create(name=opts["name"], scope=Scope.USER,
                                daily_token_quota=opts["quota"], actor=Actor.cli())
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        # The snippets carry a placeholder so the key itself appears exactly once in the card.
        cards = [c.build(snippets.Target(root, PLACEHOLDER, model)) for c in clients]
        key, quota = issued.key, opts["quota"]
        if opts["format"] == "json":
            self.stdout.write(json.dumps({
                "name": key.name, "key_id": key.id, "scope": key.scope, "token": issued.plaintext,
                "daily_token_quota": quota, "base_url": root, "openai_base_url": root + "/v1",
                "anthropic_base_url": root, "model": model, "placeholder": PLACEHOLDER,
                "clients": [card.as_dict() for card in cards],
            }, indent=2))
            return
        self.stderr.write(f"Created user key {key.id} for {key.name}. The card below shows it "
                          "once; it cannot be shown again.")
        self.stdout.write(self._card(key.name, issued.plaintext, root, model, quota, cards))

    def _clients(self, spec: str | None) -> list[snippets.Client]:
        if spec and spec.strip().lower() == "all":
            return list(snippets.CLIENTS)
        names = [n for n in (spec or "").split(",") if n.strip()]
        chosen = [snippets.client_get(n) for n in names or snippets.DEFAULT_INVITE_CLIENTS]
        return list(dict.fromkeys(chosen))

    def _card(self, name: str, token: str, root: str, model: str, quota: int,
              cards: list[snippets.Snippet]) -> str:
        return invite_card(name=name, token=token, root=root, model=model, quota=quota,
                           cards=cards)

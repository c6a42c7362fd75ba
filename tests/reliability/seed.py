"""Run in a gateway's environment by tests.reliability.stack: registers the leader node whose
engine is at argv[1], issues an admin key and two user keys with a daily quota of argv[2] tokens,
and prints them as JSON."""

from __future__ import annotations

import json
import sys

import django


def main() -> None:
    django.setup()
    from accounts.services import key_create
    from cluster.models import Node, NodeRole

    endpoint, quota = sys.argv[1], int(sys.argv[2])
    Node.objects.update_or_create(name="leader", defaults={
        "role": NodeRole.LEADER, "engine": "vllm", "engine_endpoint": endpoint})
    keys = {"admin": key_create(name="admin", scope="admin").plaintext}
    for name in ("alice", "bob"):
        issued = key_create(name=name, scope="user", daily_token_quota=quota)
        keys[name] = issued.plaintext
        keys[name + "_id"] = issued.key.id
    print(json.dumps(keys))


if __name__ == "__main__":
    main()

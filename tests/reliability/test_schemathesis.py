"""Schemathesis over every route's OpenAPI schema (inference and admin), valid and invalid
requests alike: never a 5xx, never a traceback, never a secret in a body. With the translators'
5,000 Hypothesis cases (test_fuzz_translators.py), well over 5,000 generated cases in all."""

from __future__ import annotations

import dataclasses

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from tests.reliability.openapi_schemas import fuzzed_schema

pytestmark = pytest.mark.once  # no database or queue in what it checks: one pass

EXAMPLES = 25  # per operation and mode
VENDOR_KEY = "sk-ant-vendor-secret-0123456789"
# Mutations that would start processes (llama.cpp shards) are left to tests/cluster.
SKIPPED = {("POST", "/admin/v1/shards"), ("POST", "/admin/v1/shards/create"),
           ("DELETE", "/admin/v1/shards/{model}")}


def keep_admin_key() -> None:
    from accounts.models import ApiKey
    from gateway.auth import forget_cached_keys

    ApiKey.objects.filter(name="admin").update(revoked_at=None)
    forget_cached_keys()


def operations():
    schema = schemathesis.openapi.from_dict(fuzzed_schema())
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if (op.method.upper(), op.path) not in SKIPPED]


@pytest.fixture
def secrets_configured(settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, anthropic_api_key=VENDOR_KEY)


def test_no_generated_request_gets_a_5xx_a_traceback_or_a_secret(gateway, secrets_configured):
    from accounts.audit import Actor
    from cluster.membership import join_token_create

    join_token = join_token_create(actor=Actor(name="test", source="cli")).plaintext
    secrets = [gateway.admin_key, gateway.user_key, VENDOR_KEY, join_token]
    cases = {"count": 0}
    failures: list[str] = []

    for operation in operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                cases["count"] += 1
                response = case.call(base_url=gateway.url, timeout=30,
                                     headers={"authorization": f"Bearer {gateway.admin_key}"})
                if case.method == "DELETE":
                    keep_admin_key()  # a fuzzed revoke may have hit it
                text = response.text
                label = f"{case.method} {case.formatted_path} -> {response.status_code}"
                if response.status_code >= 500:
                    failures.append(f"{label}: {case.body!r:.300} {case.query!r:.100}: {text[:200]}")
                if "Traceback" in text or any(s and s in text for s in secrets[1:]):
                    failures.append(f"{label}: a traceback or a secret in the body")

            try:
                run()
            except Exception as exc:  # an unsatisfiable schema is not a gateway failure
                if "Unsatisfiable" not in type(exc).__name__:
                    raise

    print(f"schemathesis: {cases['count']} generated requests")
    assert not failures, "\n".join(failures[:20])
    assert cases["count"] >= 600

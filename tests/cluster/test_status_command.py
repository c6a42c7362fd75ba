from __future__ import annotations

import dataclasses
import json
from io import StringIO

import pytest
from django.core.management import call_command

from cluster import services
from tests.cluster.conftest import closed_endpoints, free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def flock(settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, engine="", endpoints=closed_endpoints(),
                                         listen_host="127.0.0.1", listen_port=free_port())
    return settings


def status(*args: str) -> str:
    out = StringIO()
    call_command("status", *args, stdout=out)
    return out.getvalue()


def test_status_json_shows_the_leader_its_engine_and_the_counts(flock, fake_engine):
    services.node_register_leader(
        name=services.local_node_name(), address="http://127.0.0.1:8080", engine="vllm",
        endpoint=fake_engine.url, embedded=False, hardware={})
    data = json.loads(status("--json"))
    assert data["role"] == "leader"
    assert data["gateway_running"] is False
    assert data["database"]["reachable"] is True
    assert data["engine"] == {"kind": "vllm", "endpoint": fake_engine.url, "embedded": False,
                              "reachable": True, "models": ["fake-model", "fake-embed"]}
    assert data["counts"]["nodes_routable"] == 1
    assert [n["name"] for n in data["nodes"]] == [services.local_node_name()]


def test_status_on_a_machine_that_never_ran_up_says_what_to_do(flock):
    text = status()
    assert "not set up (run `manage.py up`)" in text
    assert "none found (`manage.py doctor` tells you how to start one)" in text
    assert "No nodes registered yet." in text

from __future__ import annotations

import dataclasses
import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.cluster.conftest import closed_endpoints, free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def flock(settings):
    """A configuration in which nothing answers on any engine endpoint."""
    settings.FLOCK = dataclasses.replace(
        settings.FLOCK, engine="", endpoints=closed_endpoints(), listen_host="127.0.0.1",
        listen_port=free_port(), redis_url="")
    return settings


def doctor() -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("doctor", stdout=out)
    except CommandError as failure:
        return out.getvalue(), failure
    return out.getvalue(), None


def test_doctor_names_every_engine_and_the_command_that_starts_it_when_none_answers(flock):
    text, failure = doctor()
    assert failure is not None and failure.returncode == 1
    assert "✖ no engine is reachable" in text
    cfg = flock.FLOCK
    assert f"ollama at {cfg.endpoints['ollama']}: start it with `ollama serve`" in text
    assert f"vllm at {cfg.endpoints['vllm']}: start it with `vllm serve" in text
    assert "mlx_lm.server" in text and "llama-server -m" in text
    assert "run `manage.py up`: when no other engine answers it starts the embedded llama.cpp" \
        in text
    assert "✔ database" in text and "✔ data dir" in text and "is free" in text


def test_doctor_names_the_configured_engine_that_does_not_answer(flock):
    flock.FLOCK = dataclasses.replace(flock.FLOCK, engine="ollama")
    text, failure = doctor()
    assert failure is not None
    assert f"✖ ollama (FLOCK_ENGINE) at {flock.FLOCK.endpoints['ollama']} is not reachable" in text
    assert "start it with: ollama serve" in text


def test_doctor_passes_when_an_engine_answers(flock, fake_engine):
    flock.FLOCK = dataclasses.replace(
        flock.FLOCK, engine="vllm", endpoints={**flock.FLOCK.endpoints, "vllm": fake_engine.url})
    text, failure = doctor()
    assert failure is None, text
    assert f"✔ vllm answers at {fake_engine.url} (models: fake-model, fake-embed)" in text
    assert "✖" not in text


def test_doctor_reports_a_listen_port_held_by_another_program(flock, fake_engine):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        flock.FLOCK = dataclasses.replace(flock.FLOCK, listen_port=port)
        text, failure = doctor()
    assert failure is not None
    assert f"✖ port {port} on 127.0.0.1 is in use by another program" in text
    assert f"FLOCK_LISTEN=:{port + 1}" in text


def test_doctor_reports_redis_that_does_not_answer(flock):
    flock.FLOCK = dataclasses.replace(flock.FLOCK, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    text, failure = doctor()
    assert failure is not None
    assert "✖ Redis at redis://127.0.0.1:" in text and "unset REDIS_URL" in text

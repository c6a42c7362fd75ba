"""Each check `doctor` added for observability fails with its exact fix, and passes once fixed:
data dir permissions, disk space for models, migrations, llama.cpp builds across nodes, the clock
against the leader and the model catalog; and `--json` for scripts."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from cluster import doctor_checks
from tests.cluster.conftest import closed_endpoints, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg(settings, tmp_path):
    """This process's configuration with a data dir of the test's own."""
    data_dir = tmp_path / "flock"
    data_dir.mkdir(mode=0o700)
    settings.FLOCK = dataclasses.replace(settings.FLOCK, data_dir=data_dir, catalog_dirs=())
    return settings.FLOCK


# --- data dir permissions ---------------------------------------------------------------------

def test_a_data_dir_open_to_other_users_fails_with_the_chmod_that_closes_it(cfg):
    cfg.data_dir.chmod(0o755)
    secret = cfg.data_dir / "admin.key"
    secret.write_text("sk-flock-x\n")
    secret.chmod(0o644)
    check = doctor_checks.check_data_dir_permissions(cfg)
    assert not check.ok and "open to other users (mode 755)" in check.title
    assert check.hints == [f"chmod 700 {cfg.data_dir}", f"chmod 600 {secret}"]

    cfg.data_dir.chmod(0o700)
    secret.chmod(0o600)
    assert doctor_checks.check_data_dir_permissions(cfg).ok


# --- disk space for models --------------------------------------------------------------------

def test_too_little_disk_for_the_smallest_model_fails_and_names_the_way_out(cfg, monkeypatch):
    monkeypatch.setattr(doctor_checks, "MODELS_HEADROOM_BYTES", 2**60)
    check = doctor_checks.check_disk_space(cfg)
    assert not check.ok and f"free for models in {cfg.data_dir / 'models'}" in check.title
    assert any("FLOCK_DATA_DIR=/path/with/space" in hint for hint in check.hints)

    monkeypatch.undo()
    assert doctor_checks.check_disk_space(cfg).ok


# --- migrations -------------------------------------------------------------------------------

def doctor_json(env: dict[str, str]) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "manage.py", "doctor", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def status(report: dict, name: str) -> tuple[str, list[str]]:
    (found,) = [c for c in report["checks"] if c["check"] == name]
    return found["status"], found["fix"]


def test_unapplied_migrations_fail_until_migrate_runs(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOCK_", "PROMETHEUS_")) and k not in ("DATABASE_URL",
                                                                          "REDIS_URL")}
    env.update(FLOCK_DATA_DIR=str(tmp_path / "fresh"), FLOCK_LISTEN=f"127.0.0.1:{free_port()}",
               **{f"FLOCK_{kind.upper()}_ENDPOINT": url for kind, url in closed_endpoints().items()})
    code, report = doctor_json(env)
    assert code == 1 and report["ok"] is False
    state, fix = status(report, "migrations")
    assert state == "fail" and fix[0].startswith("python manage.py migrate")

    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    code, report = doctor_json(env)
    assert status(report, "migrations") == ("ok", [])
    assert code == 1  # still: no engine answers
    assert status(report, "engine")[0] == "fail"


@pytest.mark.django_db
def test_the_test_database_has_every_migration_applied():
    assert doctor_checks.check_migrations().ok


# --- llama.cpp builds across nodes ------------------------------------------------------------

@pytest.mark.django_db
def test_nodes_on_different_llama_cpp_builds_fail_naming_the_nodes_to_fix():
    from cluster.models import Node

    Node.objects.create(name="lead", role="leader", llama_cpp_build="b5000 cpu")
    Node.objects.create(name="w1", role="worker", llama_cpp_build="b5000 cpu")
    odd = Node.objects.create(name="w2", role="worker", llama_cpp_build="b4800 cpu")
    check = doctor_checks.check_llama_cpp_builds()
    assert not check.ok
    assert "b5000 cpu on lead, w1; b4800 cpu on w2" in check.title
    assert len(check.hints) == 1 and check.hints[0].startswith("on w2: run `bash scripts/engine")
    assert "build b5000 cpu" in check.hints[0]

    odd.llama_cpp_build = "b5000 cpu"
    odd.save()
    check = doctor_checks.check_llama_cpp_builds()
    assert check.ok and "on all 3 nodes" in check.title


@pytest.mark.django_db
def test_a_cluster_without_llama_cpp_has_no_build_to_compare():
    assert doctor_checks.check_llama_cpp_builds() is None


# --- the clock against the leader -------------------------------------------------------------

class FakeLeader:
    """A real HTTP server whose Date header is `offset` seconds off this machine's clock."""

    def __init__(self) -> None:
        self.offset = 0.0
        leader = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def date_time_string(self, timestamp=None) -> str:
                import time

                return formatdate(time.time() + leader.offset, usegmt=True)

            def do_GET(self) -> None:
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def leader():
    found = FakeLeader()
    yield found
    found.server.shutdown()


def joined(cfg, leader_url: str) -> None:
    (cfg.data_dir / "node.json").write_text(json.dumps(
        {"leader": leader_url, "node_id": 2, "name": "w1", "key": "k", "agent_secret": "s"}))


def test_a_clock_minutes_off_the_leaders_fails_with_how_to_sync_it(cfg, leader):
    joined(cfg, leader.url)
    leader.offset = 120
    check = doctor_checks.check_clock_skew(cfg)
    assert not check.ok and "s behind the leader's" in check.title
    assert "timedatectl set-ntp true" in check.hints[0]
    leader.offset = -120
    assert "ahead of the leader's" in doctor_checks.check_clock_skew(cfg).title

    leader.offset = 0
    check = doctor_checks.check_clock_skew(cfg)
    assert check.ok and not check.warning and "agrees with the leader's" in check.title


def test_a_leader_that_does_not_answer_fails_the_clock_check(cfg):
    joined(cfg, f"http://127.0.0.1:{free_port()}")
    check = doctor_checks.check_clock_skew(cfg)
    assert not check.ok and "did not answer" in check.title
    assert check.hints[0].startswith("check that Flock runs there")


def test_a_machine_that_never_joined_has_no_clock_to_compare(cfg):
    assert doctor_checks.check_clock_skew(cfg) is None


# --- the model catalog ------------------------------------------------------------------------

def test_a_catalog_file_that_fails_validation_names_the_file_and_the_field(cfg, settings,
                                                                           tmp_path):
    mine = tmp_path / "catalog"
    mine.mkdir()
    broken = mine / "tiny-broken.yaml"
    broken.write_text(Path(ROOT / "catalog/entries/gemma-3-270m.yaml").read_text()
                      .replace("id: gemma-3-270m", "id: tiny-broken")
                      .replace("size_gb:", "size_gb: -1 #"))
    settings.FLOCK = dataclasses.replace(cfg, catalog_dirs=(mine,))
    check = doctor_checks.check_catalog()
    assert not check.ok and str(broken) in check.title
    assert any(h.startswith(f"edit {broken}: fix `size_gb`") for h in check.hints)

    broken.unlink()
    assert doctor_checks.check_catalog().ok


# --- the command ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_doctor_json_reports_every_check_and_exits_0_when_all_pass(settings, cfg, fake_engine):
    settings.FLOCK = dataclasses.replace(
        cfg, engine="vllm", endpoints={**closed_endpoints(), "vllm": fake_engine.url},
        listen_host="127.0.0.1", listen_port=free_port(), redis_url="")
    out = StringIO()
    call_command("doctor", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] is True
    names = [c["check"] for c in report["checks"]]
    for name in ("data_dir", "data_dir_permissions", "disk_space", "database", "migrations",
                 "listen_port", "engine", "catalog"):
        assert name in names
    assert all(c["status"] in ("ok", "warn") for c in report["checks"])


@pytest.mark.django_db
def test_doctor_exits_1_and_prints_each_fix_when_a_check_fails(settings, cfg, fake_engine):
    settings.FLOCK = dataclasses.replace(
        cfg, engine="vllm", endpoints={**closed_endpoints(), "vllm": fake_engine.url},
        listen_host="127.0.0.1", listen_port=free_port(), redis_url="")
    cfg.data_dir.chmod(0o777)
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("doctor", stdout=out)
    assert failure.value.returncode == 1
    assert f"→ chmod 700 {cfg.data_dir}" in out.getvalue()
    cfg.data_dir.chmod(0o700)


def test_the_clock_check_reads_the_date_a_real_gateway_sends(cfg, gateway):
    joined(cfg, gateway.url)
    check = doctor_checks.check_clock_skew(cfg)
    assert check.ok and not check.warning, check.title

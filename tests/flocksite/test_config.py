"""Configuration: env vars over ~/.flock/config.yaml over defaults; bad values name themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flocksite.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_the_original(tmp_path):
    cfg = load({"FLOCK_DATA_DIR": str(tmp_path)})
    assert (cfg.listen_host, cfg.listen_port) == ("0.0.0.0", 8080)
    assert cfg.endpoints["ollama"] == "http://127.0.0.1:11434"
    assert cfg.require_keys is True and cfg.engine == ""
    assert cfg.api_base_url == "http://localhost:8080"


def test_the_config_file_is_read_and_env_wins_over_it(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "listen: ':9000'\nengine: ollama\ndefault_model: qwen3\n"
        "engines:\n  ollama:\n    endpoint: http://10.0.0.5:11434\n")
    cfg = load({"FLOCK_DATA_DIR": str(tmp_path)})
    assert cfg.listen_port == 9000 and cfg.engine == "ollama" and cfg.default_model == "qwen3"
    assert cfg.endpoints["ollama"] == "http://10.0.0.5:11434"
    cfg = load({"FLOCK_DATA_DIR": str(tmp_path), "FLOCK_LISTEN": "127.0.0.1:9100",
                "FLOCK_OLLAMA_ENDPOINT": "http://127.0.0.1:1234"})
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 9100)
    assert cfg.endpoints["ollama"] == "http://127.0.0.1:1234"


@pytest.mark.parametrize("name,value", [
    ("FLOCK_LISTEN", "8080"),
    ("FLOCK_LISTEN", ":99999"),
    ("FLOCK_ENGINE", "tensorrt"),
    ("FLOCK_LOG_LEVEL", "loud"),
    ("FLOCK_REQUIRE_KEYS", "maybe"),
    ("FLOCK_VLLM_ENDPOINT", "localhost:8000"),
    ("REDIS_URL", "localhost:6379"),
    ("FLOCK_MAX_BODY_MB", "-1"),
])
def test_a_bad_value_is_refused_with_its_name(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load({"FLOCK_DATA_DIR": str(tmp_path), name: value})


def test_a_bad_value_in_the_file_names_the_file_and_the_setting(tmp_path):
    (tmp_path / "config.yaml").write_text("engine: nonsense\n")
    with pytest.raises(ConfigError, match=r"config.yaml.*FLOCK_ENGINE"):
        load({"FLOCK_DATA_DIR": str(tmp_path)})


def test_secrets_are_redacted_for_display(tmp_path):
    cfg = load({"FLOCK_DATA_DIR": str(tmp_path), "VLLM_API_KEY": "sekrit",
                "DATABASE_URL": "postgres://flock:hunter2@db:5432/flock"})
    shown = str(cfg.redacted())
    assert "sekrit" not in shown and "hunter2" not in shown
    assert "postgres://***@db:5432/flock" in shown


def test_manage_py_stops_at_start_with_the_variable_named(tmp_path):
    env = {**os.environ, "FLOCK_DATA_DIR": str(tmp_path), "FLOCK_LISTEN": "nope"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "FLOCK_LISTEN" in result.stderr and "Traceback" not in result.stderr

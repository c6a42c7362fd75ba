"""Loaded with `-p tests.pytest_env` before Django starts: gives the test run its own data dir
and drops engine settings inherited from the developer's shell."""

from __future__ import annotations

import os
import tempfile

os.environ["FLOCK_DATA_DIR"] = tempfile.mkdtemp(prefix="flock-test-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flocksite.settings")
for name in ("FLOCK_ENGINE", "FLOCK_DEFAULT_MODEL", "FLOCK_LISTEN", "FLOCK_CONFIG",
             "FLOCK_OLLAMA_ENDPOINT", "FLOCK_VLLM_ENDPOINT", "FLOCK_MLX_ENDPOINT",
             "FLOCK_LLAMACPP_ENDPOINT", "FLOCK_EXTERNAL_URL", "FLOCK_REQUIRE_KEYS"):
    os.environ.pop(name, None)

"""Catalog entries for tests: small valid YAML files in a directory of their own, so a test can
give the models its fake engines serve capabilities and fallback chains."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml


def write_entry(directory: Path, model_id: str, *, capabilities: Iterable[str] = ("chat",),
                fallback: Iterable[str] = ()) -> Path:
    entry = {
        "id": model_id, "name": model_id.title(), "family": "test",
        "description": "A model a fake engine serves in tests.", "parameters": "1B",
        "quantization": "Q4_K_M", "size_gb": 0.5,
        "hardware": {"min_ram_gb": 1, "min_vram_gb": 0},
        "context_length": 8192, "capabilities": list(capabilities), "license": "apache-2.0",
        "released": "2025-01-01", "sources": {"vllm": f"test/{model_id}"},
    }
    if fallback:
        entry["fallback"] = list(fallback)
    path = directory / f"{model_id}.yaml"
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    return path

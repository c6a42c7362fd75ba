"""Settings: the effective configuration, secrets redacted, and where each value comes from."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from flocksite.dashboard.auth import staff_required
from flocksite.dashboard.layout import page

# Setting -> (environment variable, key in config.yaml). Variables win over the file.
SOURCES = {
    "listen": ("FLOCK_LISTEN", "listen"),
    "data_dir": ("FLOCK_DATA_DIR", "—"),
    "log_level": ("FLOCK_LOG_LEVEL", "log_level"),
    "external_url": ("FLOCK_EXTERNAL_URL", "external_url"),
    "engine": ("FLOCK_ENGINE", "engine"),
    "endpoints.ollama": ("FLOCK_OLLAMA_ENDPOINT", "engines.ollama.endpoint"),
    "endpoints.vllm": ("FLOCK_VLLM_ENDPOINT", "engines.vllm.endpoint"),
    "endpoints.mlx": ("FLOCK_MLX_ENDPOINT", "engines.mlx.endpoint"),
    "endpoints.llamacpp": ("FLOCK_LLAMACPP_ENDPOINT", "engines.llamacpp.endpoint"),
    "vllm_api_key": ("VLLM_API_KEY", "engines.vllm.api_key"),
    "anthropic_api_key": ("ANTHROPIC_API_KEY", "vendors.anthropic.api_key"),
    "openai_api_key": ("OPENAI_API_KEY", "vendors.openai.api_key"),
    "anthropic_url": ("FLOCK_ANTHROPIC_URL", "vendors.anthropic.url"),
    "openai_url": ("FLOCK_OPENAI_URL", "vendors.openai.url"),
    "require_keys": ("FLOCK_REQUIRE_KEYS", "require_keys"),
    "default_model": ("FLOCK_DEFAULT_MODEL", "default_model"),
    "latency_fallback_p95_seconds": ("FLOCK_LATENCY_P95_SECONDS",
                                     "router.latency_fallback_p95_seconds"),
    "catalog_dirs": ("FLOCK_CATALOG_DIR", "catalog_dir"),
    "database_url": ("DATABASE_URL", "database_url"),
    "redis_url": ("REDIS_URL", "redis_url"),
    "observability.otlp_endpoint": ("FLOCK_OTLP_ENDPOINT", "observability.otlp_endpoint"),
    "observability.metrics_allow": ("FLOCK_METRICS_ALLOW", "observability.metrics_allow"),
    "config_file": ("FLOCK_CONFIG", "—"),
}


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, name + ".")
        else:
            rows.append((name, value))
    return rows


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if value is None or value == "":
        return ""
    return str(value)


@staff_required
def settings_page(request: HttpRequest) -> HttpResponse:
    cfg = settings.FLOCK
    rows = [{"name": name, "value": _shown(value), "env": SOURCES.get(name, ("", ""))[0],
             "file_key": SOURCES.get(name, ("", ""))[1]}
            for name, value in _flatten(cfg.redacted())]
    config_file = cfg.config_file
    return page(request, "dashboard/settings.html", "settings", rows=rows,
                config_file=str(config_file) if config_file else "",
                config_file_exists=bool(config_file and config_file.is_file()),
                session_hours=settings.SESSION_COOKIE_AGE // 3600)

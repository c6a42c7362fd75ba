"""Flock's runtime configuration: environment variables over ~/.flock/config.yaml over defaults.

Names follow the Go original. Every value is parsed by a small typed helper, so a bad value stops
start-up with a message naming the variable (ConfigError).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ENGINES = ("ollama", "vllm", "mlx", "llamacpp")
DEFAULT_ENDPOINTS = {
    "ollama": "http://127.0.0.1:11434",
    "vllm": "http://127.0.0.1:8000",
    "mlx": "http://127.0.0.1:8088",
    "llamacpp": "http://127.0.0.1:8081",
}
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class FlockConfig:
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    data_dir: Path = Path.home() / ".flock"
    log_level: str = "info"
    external_url: str = ""
    engine: str = ""  # empty: probe the default ports, then fall back to the embedded engine
    endpoints: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ENDPOINTS))
    vllm_api_key: str = ""
    anthropic_api_key: str = ""
    openai_api_key: str = ""
    anthropic_url: str = "https://api.anthropic.com"
    openai_url: str = "https://api.openai.com"
    require_keys: bool = True
    default_model: str = ""
    latency_fallback_p95_seconds: float = 0.0  # 0: off (gateway/fallback.py)
    catalog_dirs: tuple[Path, ...] = ()
    database_url: str = ""
    redis_url: str = ""
    max_body_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 16 * 1024  # request line and headers together; more is a 431
    body_timeout_seconds: float = 30.0  # a body still arriving after this is a 408
    engine_timeout_seconds: float = 600.0
    engine_connect_timeout_seconds: float = 5.0
    otlp_endpoint: str = ""  # OTLP/HTTP traces endpoint; empty: tracing off
    metrics_allow: tuple[str, ...] = ()  # CIDRs that may read /metrics without an admin key
    config_file: Path | None = None

    @property
    def api_base_url(self) -> str:
        if self.external_url:
            return self.external_url.rstrip("/")
        host = "localhost" if self.listen_host in ("0.0.0.0", "::", "") else self.listen_host
        return f"http://{host}:{self.listen_port}"

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with every secret replaced, for display."""
        return {
            "listen": f"{self.listen_host}:{self.listen_port}",
            "data_dir": str(self.data_dir),
            "log_level": self.log_level,
            "external_url": self.external_url,
            "engine": self.engine or "auto",
            "endpoints": dict(self.endpoints),
            "vllm_api_key": _redact(self.vllm_api_key),
            "anthropic_api_key": _redact(self.anthropic_api_key),
            "openai_api_key": _redact(self.openai_api_key),
            "anthropic_url": self.anthropic_url,
            "openai_url": self.openai_url,
            "require_keys": self.require_keys,
            "default_model": self.default_model,
            "latency_fallback_p95_seconds": self.latency_fallback_p95_seconds,
            "catalog_dirs": [str(p) for p in self.catalog_dirs],
            "database_url": _redact_url(self.database_url),
            "redis_url": _redact_url(self.redis_url),
            "observability": {"otlp_endpoint": _redact_url(self.otlp_endpoint),
                              "metrics_allow": list(self.metrics_allow)},
            "config_file": str(self.config_file) if self.config_file else None,
        }


def _redact(secret: str) -> str:
    return "***" if secret else ""


def _redact_url(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def parse_listen(value: str, name: str = "FLOCK_LISTEN") -> tuple[str, int]:
    """':8080' -> ('0.0.0.0', 8080); '127.0.0.1:9000' -> ('127.0.0.1', 9000)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep:
        raise ConfigError(f"{name}={value!r}: expected HOST:PORT or :PORT")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port_number = int(port)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: port {port!r} is not a number") from None
    if not 0 < port_number < 65536:
        raise ConfigError(f"{name}={value!r}: port must be between 1 and 65535")
    return host, port_number


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r}: expected true or false")


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return text


def _url(value: Any, name: str) -> str:
    text = str(value).strip().rstrip("/")
    if text and not text.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={value!r}: expected an http:// or https:// URL")
    return text


def _otlp_endpoint(value: Any, name: str) -> str:
    """A collector base URL (`/v1/traces` is added) or a full traces URL; a bare HOST:PORT
    means http://HOST:PORT."""
    text = str(value).strip().rstrip("/")
    if not text:
        return ""
    if "://" not in text:
        text = "http://" + text
    text = _url(text, name)
    return text if text.endswith("/v1/traces") else text + "/v1/traces"


def _cidrs(value: Any, name: str) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    networks = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}={value!r}: {text!r} is not an IP address or CIDR "
                              "(e.g. 10.0.0.0/8)") from None
    return tuple(networks)


def _number(value: Any, name: str, kind: type = int) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r}: expected a number") from None
    if number <= 0:
        raise ConfigError(f"{name}={value!r}: must be greater than 0")
    return number


def _seconds_or_off(value: Any, name: str) -> float:
    """A number of seconds, where 0 means the feature is off."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r}: expected a number of seconds (0 turns it off)") from None
    if number < 0:
        raise ConfigError(f"{name}={value!r}: must be 0 (off) or more")
    return number


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load(env: dict[str, str] | None = None) -> FlockConfig:
    """Builds the configuration from `env` (default os.environ) and the config file."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("FLOCK_DATA_DIR") or Path.home() / ".flock").expanduser()
    config_file = Path(env.get("FLOCK_CONFIG") or data_dir / "config.yaml").expanduser()
    file = _read_file(config_file)
    engines = file.get("engines") or {}
    observability = file.get("observability") or {}

    def pick(env_name: str, file_value: Any, default: Any) -> tuple[Any, str]:
        if env.get(env_name, "") != "":
            return env[env_name], env_name
        if file_value not in (None, ""):
            return file_value, f"{config_file}: {env_name}"
        return default, env_name

    listen, name = pick("FLOCK_LISTEN", file.get("listen"), ":8080")
    host, port = parse_listen(str(listen), name)
    level, name = pick("FLOCK_LOG_LEVEL", file.get("log_level"), "info")
    external, name_ext = pick("FLOCK_EXTERNAL_URL", file.get("external_url"), "")
    engine, name_engine = pick("FLOCK_ENGINE", file.get("engine"), "")
    endpoints = {}
    for kind in ENGINES:
        var = f"FLOCK_{kind.upper()}_ENDPOINT"
        value, var_name = pick(var, (engines.get(kind) or {}).get("endpoint"), DEFAULT_ENDPOINTS[kind])
        endpoints[kind] = _url(value, var_name)
    vllm_key, _ = pick("VLLM_API_KEY", (engines.get("vllm") or {}).get("api_key"), "")
    vendors = file.get("vendors") or {}
    anthropic_key, _ = pick("ANTHROPIC_API_KEY", (vendors.get("anthropic") or {}).get("api_key"), "")
    openai_key, _ = pick("OPENAI_API_KEY", (vendors.get("openai") or {}).get("api_key"), "")
    anthropic_url, name_aurl = pick("FLOCK_ANTHROPIC_URL", (vendors.get("anthropic") or {}).get("url"),
                                    "https://api.anthropic.com")
    openai_url, name_ourl = pick("FLOCK_OPENAI_URL", (vendors.get("openai") or {}).get("url"),
                                 "https://api.openai.com")
    require, name_req = pick("FLOCK_REQUIRE_KEYS", file.get("require_keys"), True)
    router = file.get("router") if isinstance(file.get("router"), dict) else {}
    default_model, _ = pick("FLOCK_DEFAULT_MODEL", file.get("default_model"), "")
    p95, name_p95 = pick("FLOCK_LATENCY_P95_SECONDS", router.get("latency_fallback_p95_seconds"), 0)
    catalog, _ = pick("FLOCK_CATALOG_DIR", file.get("catalog_dir"), "")
    db_url, _ = pick("DATABASE_URL", file.get("database_url"), "")
    redis_url, name_redis = pick("REDIS_URL", file.get("redis_url"), "")
    body_mb, name_body = pick("FLOCK_MAX_BODY_MB", file.get("max_body_mb"), 32)
    header_kb, name_header = pick("FLOCK_MAX_HEADER_KB", file.get("max_header_kb"), 16)
    body_timeout, name_body_timeout = pick("FLOCK_BODY_TIMEOUT", file.get("body_timeout_seconds"), 30)
    timeout, name_timeout = pick("FLOCK_ENGINE_TIMEOUT", file.get("engine_timeout_seconds"), 600)
    otlp, name_otlp = pick("FLOCK_OTLP_ENDPOINT", observability.get("otlp_endpoint"), "")
    allow, name_allow = pick("FLOCK_METRICS_ALLOW", observability.get("metrics_allow"), "")
    if redis_url and not str(redis_url).startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{name_redis}={redis_url!r}: expected a redis:// URL")
    return FlockConfig(
        listen_host=host,
        listen_port=port,
        data_dir=data_dir,
        log_level=_choice(level, name, LOG_LEVELS),
        external_url=_url(external, name_ext),
        engine=_choice(engine, name_engine, ENGINES) if engine else "",
        endpoints=endpoints,
        vllm_api_key=str(vllm_key),
        anthropic_api_key=str(anthropic_key),
        openai_api_key=str(openai_key),
        anthropic_url=_url(anthropic_url, name_aurl),
        openai_url=_url(openai_url, name_ourl),
        require_keys=_bool(require, name_req),
        default_model=str(default_model),
        latency_fallback_p95_seconds=_seconds_or_off(p95, name_p95),
        catalog_dirs=tuple(Path(p).expanduser() for p in str(catalog).split(os.pathsep) if p),
        database_url=str(db_url),
        redis_url=str(redis_url),
        max_body_bytes=int(_number(body_mb, name_body, float) * 1024 * 1024),
        max_header_bytes=int(_number(header_kb, name_header, float) * 1024),
        body_timeout_seconds=_number(body_timeout, name_body_timeout, float),
        engine_timeout_seconds=_number(timeout, name_timeout, float),
        otlp_endpoint=_otlp_endpoint(otlp, name_otlp),
        metrics_allow=_cidrs(allow, name_allow),
        config_file=config_file,
    )

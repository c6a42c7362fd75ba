"""Django settings, all read from flocksite.config (env vars over ~/.flock/config.yaml)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

from flocksite import config as flock_config
from flocksite.prometheus_dir import prometheus_dir_prepare

BASE_DIR = Path(__file__).resolve().parent.parent
FLOCK = flock_config.load()
FLOCK.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
# Before anything imports prometheus_client: several gateway processes share one /metrics.
try:
    prometheus_dir_prepare(FLOCK.data_dir)
except OSError:  # an unwritable data dir: `manage.py doctor` says how to fix it
    pass


def _secret_key() -> str:
    if os.environ.get("FLOCK_SECRET_KEY"):
        return os.environ["FLOCK_SECRET_KEY"]
    path = FLOCK.data_dir / "secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("FLOCK_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",
    "catalog",
    "cluster",
    "gateway",
]

MIDDLEWARE = [
    "gateway.metrics_middleware.PrometheusBeforeMiddleware",
    "gateway.date_header.DateHeaderMiddleware",
    "gateway.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "gateway.metrics_middleware.PrometheusAfterMiddleware",
]

# The API routes (/v1, /admin/v1, probes, /metrics) run through a handler with only these,
# all async-native: see flocksite/api_handler.py.
API_MIDDLEWARE = [
    "gateway.metrics_middleware.APIRequestMetrics",
    "gateway.date_header.DateHeaderMiddleware",
    "gateway.middleware.RequestIdMiddleware",
]

ROOT_URLCONF = "flocksite.urls"
ASGI_APPLICATION = "flocksite.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if FLOCK.database_url:
    DATABASES = {"default": dj_database_url.parse(FLOCK.database_url, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": FLOCK.data_dir / "flock.db",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;"},
            # Tests use a file too: the live server's threads (websocket panels, background
            # pulls) read and write at once, which an in-memory database answers with "table is
            # locked" instead of waiting.
            "TEST": {"NAME": FLOCK.data_dir / "test-flock.db"},
        }
    }

if FLOCK.redis_url:
    CACHES = {"default": {"BACKEND": "flocksite.resilient_cache.ResilientRedisCache",
                          "LOCATION": FLOCK.redis_url, "KEY_PREFIX": "flock"}}
else:
    CACHES = {"default": {"BACKEND": "flocksite.local_cache.LocalCache", "LOCATION": "flock"}}

# Celery: through Redis when REDIS_URL is set, otherwise tasks run in-process.
CELERY_BROKER_URL = FLOCK.redis_url or "memory://"
CELERY_RESULT_BACKEND = FLOCK.redis_url or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not FLOCK.redis_url
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "flock"

DATA_UPLOAD_MAX_MEMORY_SIZE = FLOCK.max_body_bytes
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = FLOCK.data_dir / "static"

# Dashboard (flocksite/dashboard): staff users log in with Django's auth; sessions end when the
# browser closes and after 12 hours at most.
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:home"
SESSION_COOKIE_AGE = 12 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # pages carry the token in a <meta> tag for fetch()
_external = urlsplit(FLOCK.external_url)
CSRF_TRUSTED_ORIGINS = [f"{_external.scheme}://{_external.netloc}"] if FLOCK.external_url else []

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"level": FLOCK.log_level.upper(), "propagate": True}
        for name in ("flock", "gateway", "cluster", "accounts", "catalog")
    },
}

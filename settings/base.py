"""Settings shared by every environment. Values come from the environment only."""

from pathlib import Path
from urllib.parse import quote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_url(name: str, default: str, parse):
    """Read a URL variable; a malformed value fails with one line naming it and the fix."""
    raw = env.str(name, default="") or default
    try:
        return parse(raw)
    except (ValueError, KeyError, ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a valid URL ({exc}); use the form shown in .env.example"
        ) from None


SECRET_KEY = env.str("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "core",  # first: its runserver (wait for the database, migrate) wins over staticfiles'
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # API tokens (`manage.py drf_create_token <user>`)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc assets, served locally: docs work offline
    "notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _postgres(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"} or not parts.path.strip("/"):
        raise ValueError("expected postgres://user:password@host:port/name")
    return environ.Env.db_url_config(url)


def _database_url_from_parts() -> str:
    """The compose stack's database, from the same POSTGRES_* variables the db service uses."""
    user, password = (
        quote(env.str(name, default="app"), safe="")
        for name in ("POSTGRES_USER", "POSTGRES_PASSWORD")
    )
    host = env.str("POSTGRES_HOST", default="db")
    port = env.int("POSTGRES_PORT", default=5432)
    return f"postgres://{user}:{password}@{host}:{port}/{env.str('POSTGRES_DB', default='app')}"


DATABASES = {"default": env_url("DATABASE_URL", _database_url_from_parts(), _postgres)}
# Persistent connections, checked before reuse so a restarted database is not an error.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Short, so a database that is gone makes readiness answer 503 within seconds: a new
# connection gives up after connect_timeout; a persistent one whose server vanished (no
# reset ever comes) after tcp_user_timeout (ms) of unacknowledged data, or keepalives.
DATABASES["default"].setdefault("OPTIONS", {}).update(
    connect_timeout=env.int("DB_CONNECT_TIMEOUT", default=2),
    tcp_user_timeout=2000,
    keepalives=1,
    keepalives_idle=5,
    keepalives_interval=2,
    keepalives_count=2,
)


def _redis_cache(url: str) -> dict:
    if not url.startswith(("redis://", "rediss://")):
        raise ValueError("expected redis://host:port/db")
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            # One attempt: redis-py retries with backoff by default, which turns a Redis that
            # is gone into seconds of waiting on every request (and on readiness).
            "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 0)},
            # The cache is an optimisation: without Redis, reads and writes of the API go on
            # (throttling counts nothing meanwhile); readiness still reports the cache down.
            "IGNORE_EXCEPTIONS": True,
        },
    }


CACHES = {"default": env_url("REDIS_URL", "redis://redis:6379/0", _redis_cache)}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True  # an ignored Redis error is still logged

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Containers log to stdout; the runtime collects it (`nox -s logs`).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {
            "handlers": ["stdout"],
            "level": env.str("LOG_LEVEL", default="INFO"),
            "propagate": False,
        }
    },
}

# The JSON API (docs/api.md). Development opens it (settings/dev.py); production requires a
# user for writes and throttles (settings/prod.py).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous write is then a 401 with WWW-Authenticate: Token.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.BoundedLimitOffsetPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "NON_FIELD_ERRORS_KEY": "__all__",
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_THROTTLE_RATES": {},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "djstack API",
    "DESCRIPTION": "Notes, and the health of the service. Errors: docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,  # request bodies without the read-only fields
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two health bodies share the field name "status"; each choice set gets its own name.
    "ENUM_NAME_OVERRIDES": {"HealthStatusEnum": ["ok", "error"], "LiveStatusEnum": ["ok"]},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.document_errors",
    ],
}

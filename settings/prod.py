"""Production: fails fast on missing configuration and passes `check --deploy` cleanly."""

import os
import re

from django.core.exceptions import ImproperlyConfigured

# Checked before anything else, so no development default can stand in for them.
_REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL")
_missing = [name for name in _REQUIRED if not os.environ.get(name, "").strip()]
if _missing:
    raise ImproperlyConfigured(
        f"production settings need {', '.join(_missing)} in the environment; "
        "see docs/configuration.md"
    )

from .base import *  # noqa: E402, F403
from .base import REST_FRAMEWORK, env  # noqa: E402

# DEBUG stays off whatever the environment says: a leaked traceback is a leaked secret.
DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=[f"https://{host.lstrip('.')}" for host in ALLOWED_HOSTS if host != "*"],
)

# TLS ends at the proxy in front of the app, which says so in this header.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# The health endpoints are probed over plain HTTP from inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/(live/)?$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Secure-sessionid"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_NAME = "__Secure-csrftoken"
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def _throttle_rate(name: str, default: str) -> str:
    """A DRF rate such as 100/minute; a malformed value stops the start, naming the variable."""
    rate = env.str(name, default=default)
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", rate):
        raise ImproperlyConfigured(
            f"{name}={rate!r} is not a rate; use <requests>/<second|minute|hour|day>, "
            f"e.g. {default}"
        )
    return rate


# The API: reads open, writes need a user (token or session); every client throttled.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _throttle_rate("API_THROTTLE_ANON", "100/minute"),
        "user": _throttle_rate("API_THROTTLE_USER", "1000/minute"),
    },
    # Anonymous clients are counted by IP: the address the nearest proxy (the ingress) put
    # last in X-Forwarded-For, which a client cannot forge; the peer address without one.
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=1),
}

"""Tests: run inside the app container against the stack's PostgreSQL and Redis.

pytest-django creates its own test database (test_<name>) and reuses it between runs; the
cache uses its own Redis database so tests never see the developer's cached data.
"""

from .base import *  # noqa: F403
from .base import CACHES, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-test-only-key")
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
CACHES["default"]["LOCATION"] = env.str("TEST_REDIS_URL", default="redis://redis:6379/15")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user fixtures

"""Development: the stack started by `nox -s up`. Safe defaults, so no .env is needed."""

from .base import *  # noqa: F403
from .base import INSTALLED_APPS, env

DEBUG = env.bool("DEBUG", default=True)
# Only ever used on the developer's machine; production refuses to start without its own.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-dev-only-key-never-used-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "app"])

# inotify-based reloader (polls when WATCHFILES_FORCE_POLLING=true, e.g. on macOS VMs).
INSTALLED_APPS = [*INSTALLED_APPS, "django_watchfiles"]

# runserver's WSGI application: config.wsgi's, listening for a debugger when DEBUGPY=true.
WSGI_APPLICATION = "config.dev_wsgi.application"

"""Development: the stack started by `nox -s up`. Safe defaults, so no .env is needed."""

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, TEMPLATES, env

DEBUG = env.bool("DEBUG", default=True)
# Only ever used on the developer's machine; production refuses to start without its own.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-dev-only-key-never-used-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "app"])

# The dev server runs without Django's reloader (watchfiles restarts it on a .py edit), and
# so without the reset of cached templates: read templates afresh, an edit shows at once.
TEMPLATES = [
    {
        **TEMPLATES[0],
        "APP_DIRS": False,
        "OPTIONS": {
            **TEMPLATES[0]["OPTIONS"],
            "loaders": [
                "django.template.loaders.filesystem.Loader",
                "django.template.loaders.app_directories.Loader",
            ],
        },
    }
]

# The browsable, open API: anyone may write, as before authentication was added.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
# `manage.py test`, typed by habit, runs the pytest suite (tests/app) as `nox -s tests` does.
TEST_RUNNER = "config.test_runner.PytestRunner"
# runserver's WSGI application: config.wsgi's, listening for a debugger when DEBUGPY=true.
WSGI_APPLICATION = "config.dev_wsgi.application"

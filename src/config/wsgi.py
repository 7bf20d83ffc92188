"""WSGI entry point for gunicorn (prod) and runserver (dev)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.prod")
application = get_wsgi_application()

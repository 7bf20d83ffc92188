"""Container entrypoint: wait for the database, apply migrations if asked, exec the command.

    python3 -m config.entrypoint <command> [args...]

DB_WAIT_TIMEOUT (seconds, default 60) bounds the wait; MIGRATE_ON_START=false skips migrate
(the default in production, where migrating is an explicit one-shot step).
"""

from __future__ import annotations

import os
import sys
import time


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in {"1", "true", "yes", "on"}


def wait_for_database(timeout: float) -> None:
    """Return once the database answers a query; exit with one clear line on timeout."""
    from django.db import connection
    from django.db.utils import OperationalError

    settings = connection.settings_dict
    where = f"{settings.get('HOST') or 'localhost'}:{settings.get('PORT') or 5432}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            connection.close()
            return
        except OperationalError as exc:
            last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            connection.close()
        if time.monotonic() >= deadline:
            sys.exit(
                f"entrypoint: database at {where} not ready after {timeout:g}s "
                f"({last_error}); check `nox -s logs -- db`, or raise DB_WAIT_TIMEOUT"
            )
        time.sleep(0.25)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("entrypoint: no command given (e.g. gunicorn config.wsgi)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
    if _flag("WAIT_FOR_DB", True) or _flag("MIGRATE_ON_START", False):
        import django
        from django.core.exceptions import ImproperlyConfigured

        try:
            django.setup()
        except ImproperlyConfigured as exc:
            sys.exit(f"entrypoint: {exc}")
        wait_for_database(float(os.environ.get("DB_WAIT_TIMEOUT", "60")))
        if _flag("MIGRATE_ON_START", False):
            from django.core.management import call_command

            call_command("migrate", interactive=False, verbosity=1)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])

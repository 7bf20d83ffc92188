"""`manage.py runserver` (the dev image's command), once the database answers and, when
MIGRATE_ON_START is true, after applying pending migrations. Everything else is Django's
own runserver, reloader included (staticfiles' variant, which serves the static files)."""

from __future__ import annotations

import os

from django.contrib.staticfiles.management.commands.runserver import Command as Runserver
from django.core.management import call_command
from django.db import connections

# Set once the database answered: the reloader's restarts (fresh processes that inherit the
# environment) go straight to serving, as they would without this command.
STARTED = "DJSTACK_RUNSERVER_STARTED"


class Command(Runserver):
    help = "Wait for the database, migrate if MIGRATE_ON_START, then Django's runserver."

    def handle(self, *args, **options) -> None:
        if os.environ.get(STARTED) != "1":
            call_command("wait_for_db")
            if os.environ.get("MIGRATE_ON_START", "").lower() in {"1", "true", "yes", "on"}:
                migrate_if_pending()
            connections.close_all()  # the reloader's parent does not serve: no idle session
            os.environ[STARTED] = "1"
        super().handle(*args, **options)


def migrate_if_pending() -> None:
    """`migrate --check` exits 1 when a migration is pending: only then migrate (a no-op
    migrate still runs its post-migrate queries on every start)."""
    try:
        call_command("migrate", check_unapplied=True)
    except SystemExit:
        call_command("migrate", interactive=False)

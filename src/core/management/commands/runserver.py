"""`manage.py runserver`: once the database answers and, when MIGRATE_ON_START is true, after
applying pending migrations, Django's own runserver (staticfiles' variant, which serves the
static files).

The dev image runs it as `runserver --noreload` under the watchfiles CLI, which restarts it
on a .py edit: one Django process instead of the reloader's two, watching from the start.
"""

from __future__ import annotations

import atexit
import os
import signal

from django.contrib.staticfiles.management.commands.runserver import Command as Runserver
from django.core.management import call_command
from django.db import connections

# watchfiles sets it to "[]" for its first start and to the changed files for a restart
# (documented in watchfiles.run_process): restarts go straight to serving.
RESTART_CHANGES = "WATCHFILES_CHANGES"


class Command(Runserver):
    help = "Wait for the database, migrate if MIGRATE_ON_START, then Django's runserver."

    def handle(self, *args, **options) -> None:
        under_watchfiles = RESTART_CHANGES in os.environ
        if os.environ.get(RESTART_CHANGES, "[]") == "[]":  # not a restart
            try:
                call_command("wait_for_db")
                if os.environ.get("MIGRATE_ON_START", "").lower() in {"1", "true", "yes", "on"}:
                    migrate_if_pending()
            except Exception:  # not KeyboardInterrupt: watchfiles restarting us after an edit
                if under_watchfiles:
                    atexit.register(stop_watchfiles)
                raise
            connections.close_all()  # the serving threads open their own: no idle session
        if under_watchfiles:
            # watchfiles stops the server with SIGINT before each restart. Python's orderly
            # teardown of Django would add 0.15 s to every reload, for nothing: output is
            # unbuffered and PostgreSQL ends the sessions of a closed socket by itself.
            signal.signal(signal.SIGINT, lambda *_: os._exit(0))
        super().handle(*args, **options)


def migrate_if_pending() -> None:
    """`migrate --check` exits 1 when a migration is pending: only then migrate (a no-op
    migrate still runs its post-migrate queries on every start)."""
    try:
        call_command("migrate", check_unapplied=True)
    except SystemExit:
        call_command("migrate", interactive=False)


def stop_watchfiles() -> None:
    """A start without a database (or with a failing migration) ends the container, once the
    error is printed, instead of waiting for an edit: watchfiles, our parent, stops on
    SIGTERM (documented), and its SIGINT to us is moot."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.kill(os.getppid(), signal.SIGTERM)

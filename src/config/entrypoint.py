"""Container entrypoint: wait for the database, apply migrations if asked, start the command.

    python3 -m config.entrypoint <command> [args...]

DB_WAIT_TIMEOUT (seconds, default 60) bounds the wait; MIGRATE_ON_START=false skips migrate
(the default in production, where migrating is an explicit one-shot step).

The dev server (`manage.py runserver` with its reloader) starts from this process instead of
being exec'd: Django is already set up here, so a forked child serves at once, and only the
restarts after an edit start a fresh interpreter, as Django's own reloader does. That saves
two Django boots on every start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STARTED = time.time()  # before any of the project's code is read
RELOADER_ENV = "RUN_MAIN"  # django.utils.autoreload.DJANGO_AUTORELOAD_ENV
RESTART_CODE = 3  # what a reloader child exits with when a file changed


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
            return
        except OperationalError as exc:
            last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            connection.close()
        if time.monotonic() >= deadline:
            sys.exit(
                f"entrypoint: database at {where} not ready after {timeout:g}s "
                f"({last_error}); check `nox -s logs -- db`, or raise DB_WAIT_TIMEOUT"
            )
        time.sleep(0.1)


def migrate_if_needed() -> None:
    """`migrate` only when a migration is unapplied: a no-op migrate still costs a Django
    command and its post-migrate queries on every start."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=1)
    else:
        print("entrypoint: migrations are up to date", flush=True)


def _manage_args(argv: list[str]) -> list[str]:
    """The command without the interpreter: `python3 src/manage.py ...` -> `src/manage.py ...`."""
    return argv[1:] if os.path.basename(argv[0]).startswith("python") else argv


def is_reloading_runserver(argv: list[str]) -> bool:
    """`[python] .../manage.py runserver ...` with the reloader on (the dev image's command)."""
    args = _manage_args(argv)
    return (len(args) >= 2 and os.path.basename(args[0]) == "manage.py"
            and args[1] == "runserver" and "--noreload" not in args)


def serve_with_reloader(argv: list[str], *, migrated: bool) -> None:
    """Fork the first server from this set-up, migrated process; restart fresh ones after
    edits, as Django's reloader parent does.

    The forked server skips the migration check when this process just migrated, and the
    system checks, which this process runs meanwhile. If they fail, or if the code does not
    even import, a fresh server takes over: it shows the error and waits for a fix, as
    runserver does.
    """
    # Stopping must be instant: leave quietly on TERM, as Django's reloader parent does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    code = RESTART_CODE
    try:
        if preloaded():
            sys.stdout.flush()
            sys.stderr.flush()
            child = os.fork()
            if child == 0:
                serve_forked(argv, migrated=migrated)
            if system_checks_pass():
                code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
            else:
                os.kill(child, signal.SIGTERM)
                os.waitpid(child, 0)
        while code == RESTART_CODE:
            code = subprocess.run(argv, env={**os.environ, RELOADER_ENV: "true"}).returncode
    except KeyboardInterrupt:  # Ctrl-C on an attached `compose up`: the child stops too
        code = 0
    sys.exit(code)


def serve_forked(argv: list[str], *, migrated: bool) -> None:
    from django.core.management import execute_from_command_line
    from django.core.management.commands import runserver

    if migrated:
        runserver.Command.check_migrations = lambda _command: None
    catch_up_on_early_edits()
    os.environ[RELOADER_ENV] = "true"
    execute_from_command_line([*_manage_args(argv), "--skip-checks"])
    sys.exit(0)


def catch_up_on_early_edits() -> None:
    """The forked server answers before django-watchfiles watches anything, so `up` may
    return, and a file be saved, before there is a watch to see it. Once the watches are in
    place (the first tick), a file changed since this process started restarts the server,
    as the watch would have."""
    try:
        from django_watchfiles import WatchfilesReloader
    except ImportError:  # another reloader: it has its own first look
        return
    tick = WatchfilesReloader.tick

    def tick_then_catch_up(reloader):
        ticks = tick(reloader)
        yield next(ticks)
        for path in reloader.watched_files():
            try:
                changed = path.stat().st_mtime > STARTED
            except OSError:
                continue
            if changed:
                reloader.notify_file_changed(path)
                break
        yield from ticks

    WatchfilesReloader.tick = tick_then_catch_up


def preloaded() -> bool:
    """Import what the first request needs (the URLconf with its views, the cache client)
    before the fork, so that the forked server answers it at once. Nothing connects here:
    no socket may be shared with the child. False when the code does not import."""
    from django.core.cache import caches
    from django.urls import get_resolver

    try:
        get_resolver().url_patterns
        for alias in caches:
            getattr(caches[alias], "client", None)  # django-redis builds its client lazily
    except Exception:  # noqa: BLE001 - any error in the project's code: a fresh server shows it
        return False
    return True


def system_checks_pass() -> bool:
    """`manage.py check`, as runserver runs it; the errors are shown by the next server."""
    from django.core.management import call_command

    try:
        call_command("check")
    except Exception:  # noqa: BLE001 - SystemCheckError, or a check that crashes
        return False
    return True


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("entrypoint: no command given (e.g. gunicorn config.wsgi)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
    migrate = _flag("MIGRATE_ON_START", False)
    if not (_flag("WAIT_FOR_DB", True) or migrate):
        os.execvp(argv[0], argv)
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    reloading = is_reloading_runserver(argv) and os.environ.get(RELOADER_ENV) != "true"
    try:
        django.setup()
    except ImproperlyConfigured as exc:
        sys.exit(f"entrypoint: {exc}")
    except Exception:
        if not reloading:
            raise
        # The project's code does not import (a typo in models.py, ...): the dev server
        # shows the error and reloads once it is fixed, instead of the container exiting.
        serve_with_reloader(argv, migrated=False)

    wait_for_database(float(os.environ.get("DB_WAIT_TIMEOUT", "60")))
    if migrate:
        migrate_if_needed()
    connections.close_all()  # neither a forked server nor the exec'd command may share it
    if reloading:
        serve_with_reloader(argv, migrated=migrate)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])

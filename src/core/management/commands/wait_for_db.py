"""`manage.py wait_for_db`: return once the database answers a query, or fail in one line."""

from __future__ import annotations

import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.utils import OperationalError


class Command(BaseCommand):
    help = "Wait until the database answers a query (at most --timeout seconds)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=float(os.environ.get("DB_WAIT_TIMEOUT", "60")),
            help="seconds to wait (default: DB_WAIT_TIMEOUT, else 60)",
        )

    def handle(self, *args, timeout: float, **options) -> None:
        settings = connection.settings_dict
        where = f"{settings.get('HOST') or 'localhost'}:{settings.get('PORT') or 5432}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                return
            except OperationalError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
                connection.close()
            if time.monotonic() >= deadline:
                raise CommandError(
                    f"database at {where} not ready after {timeout:g}s "
                    f"({reason}); check `nox -s logs -- db`, or raise "
                    "DB_WAIT_TIMEOUT"
                )
            time.sleep(0.1)

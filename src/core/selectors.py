"""Read-only checks of the services the app depends on."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from django.db import connection
from django_redis import get_redis_connection


@dataclass(frozen=True)
class ServiceState:
    name: str
    ok: bool
    latency_ms: float
    error: str = ""

    def as_dict(self) -> dict:
        state = {"status": "ok" if self.ok else "error", "latency_ms": round(self.latency_ms, 1)}
        if self.error:
            state["error"] = self.error
        return state


def _timed(name: str, probe) -> ServiceState:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure of a dependency is a state to report, not a crash
        return ServiceState(name, False, (time.perf_counter() - started) * 1000, _one_line(exc))
    return ServiceState(name, True, (time.perf_counter() - started) * 1000)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _probe_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (value,) = cursor.fetchone()
    if value != 1:
        raise RuntimeError(f"SELECT 1 returned {value!r}")


def _probe_cache() -> None:
    # The raw client: the cache backend ignores Redis errors (IGNORE_EXCEPTIONS, so the API
    # keeps working without its cache), the probe must see them.
    client = get_redis_connection("default")
    key, token = f"health:{uuid.uuid4().hex}", uuid.uuid4().hex.encode()
    client.set(key, token, ex=10)
    try:
        if client.get(key) != token:
            raise RuntimeError("value written to the cache was not read back")
    finally:
        client.delete(key)


def services_health() -> list[ServiceState]:
    """The state of the database and the cache, each checked with a real round trip."""
    return [_timed("database", _probe_database), _timed("cache", _probe_cache)]

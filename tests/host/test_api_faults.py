"""Faults under the running app, on a real isolated dev stack: PostgreSQL stopped, Redis
stopped, PostgreSQL killed (SIGKILL) in the middle of a stream of writes.

Readiness (/api/v1/health/) must notice within seconds and name what failed; liveness
(/api/v1/health/live/) must stay 200; the app must recover without being restarted."""

import json
import os
import signal
import threading
import time

from devstack.net import http, poll
from devstack.snapshots import psql

READY, LIVE, NOTES = "/api/v1/health/", "/api/v1/health/live/", "/api/v1/notes/"
NOTICE_WITHIN = 5.0  # seconds for readiness to report a dependency that went away


def get(stack, path):
    return http("GET", f"{stack.app_url}{path}")


def live(stack) -> bool:
    status, body = get(stack, LIVE)
    return status == 200 and json.loads(body) == {"status": "ok"}


def readiness_fails(stack, service):
    """A check for poll(): readiness is 503 and names `service` (and only it) as failed."""

    def check():
        status, body = get(stack, READY)
        failed = json.loads(body).get("failed") if status == 503 else None
        return failed == [service], f"{status} {body}"

    return check


def readiness_ok(stack):
    def check():
        status, body = get(stack, READY)
        return status == 200, f"{status} {body}"

    return check


def compose(stack, *args):
    """A compose command that stops or starts a service, then the stack's names repaired as
    `nox -s up` repairs them: Podman 4's aardvark-dns may drop a whole network's names on any
    stop or start (Runtime.repair_names). The fault under test is the service going away."""
    stack.compose(*args, capture=True)
    stack.repair_names()


def container(stack, service):
    return next(c for c in stack.runtime.containers(stack.config.project) if c.service == service)


def started_at(stack, service) -> str:
    name = container(stack, service).name
    return (
        stack.runtime.engine_cmd(
            "inspect", "--format", "{{.State.StartedAt}}", name, capture=True, quiet=True
        )
        .stdout.decode()
        .strip()
    )


def test_redis_stopped_readiness_names_the_cache_and_the_notes_api_keeps_working(isolated_stack):
    stack = isolated_stack
    compose(stack, "stop", "redis")
    try:
        ok, seen, took = poll(readiness_fails(stack, "cache"), timeout=NOTICE_WITHIN)
        assert ok, f"readiness after {took:.1f}s: {seen}"
        print(f"readiness named the cache after {took:.2f}s")
        assert live(stack)
        status, body = http("POST", f"{stack.app_url}{NOTES}", {"title": "written without Redis"})
        assert status == 201, body
        note_id = json.loads(body)["id"]
        assert get(stack, f"{NOTES}{note_id}/")[0] == 200
        assert get(stack, NOTES)[0] == 200
    finally:
        compose(stack, "start", "redis")
    ok, seen, _ = poll(readiness_ok(stack), timeout=30)
    assert ok, seen


def test_postgres_stopped_readiness_names_the_database_liveness_stays_200_and_the_app_recovers(
    isolated_stack,
):
    stack = isolated_stack
    app_started = started_at(stack, "app")
    assert get(stack, NOTES)[0] == 200  # the app holds a persistent connection now
    compose(stack, "stop", "db")
    try:
        ok, seen, took = poll(readiness_fails(stack, "database"), timeout=NOTICE_WITHIN)
        assert ok, f"readiness after {took:.1f}s: {seen}"
        print(f"readiness named the database after {took:.2f}s")
        started = time.monotonic()
        status, body = get(stack, READY)
        assert status == 503 and time.monotonic() - started < NOTICE_WITHIN, body
        assert json.loads(body)["services"]["cache"]["status"] == "ok"
        assert live(stack)
        status, body = get(stack, NOTES)  # an API request says what is wrong, in the one shape
        assert status == 503, body
        assert "database is unavailable" in json.loads(body)["errors"]["__all__"][0]
    finally:
        compose(stack, "start", "db")
    ok, seen, _ = poll(lambda: stack.service_ready("db"), timeout=30)
    assert ok, seen
    # Back for the app too (its name resolves again on the stack's network, which may lag
    # the published port): readiness says so, without a restart of the app ...
    ok, seen, _ = poll(readiness_ok(stack), timeout=30)
    assert ok, seen
    # ... and then the very first API request and the very first write succeed.
    status, body = get(stack, NOTES)
    assert status == 200, body
    status, body = http("POST", f"{stack.app_url}{NOTES}", {"title": "after the outage"})
    assert status == 201, body
    assert started_at(stack, "app") == app_started, "the app was restarted"


def test_every_acknowledged_write_survives_a_kill_9_of_postgres(isolated_stack):
    stack = isolated_stack
    acknowledged: dict[int, str] = {}
    lock, stop = threading.Lock(), threading.Event()

    def writer(number: int) -> None:
        sequence = 0
        while not stop.is_set():
            title = f"writer {number} #{sequence}"
            status, body = http("POST", f"{stack.app_url}{NOTES}", {"title": title})
            if status == 201:
                with lock:
                    acknowledged[json.loads(body)["id"]] = title
            else:
                time.sleep(0.05)  # the database is gone: do not spin
            sequence += 1

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    try:
        time.sleep(2)
        with lock:
            before_kill = len(acknowledged)
        stack.runtime.engine_cmd("kill", "-s", "KILL", container(stack, "db").name, capture=True)
        time.sleep(1.5)  # writes keep coming while the database is dead
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=30)
    assert before_kill >= 20, f"only {before_kill} writes before the kill: no real stream"

    stack.up()  # starts the killed database; PostgreSQL replays its WAL
    # Read from the database itself: what it holds, whatever the app answers meanwhile.
    rows = psql(stack, "SELECT id, title FROM notes_note").stdout.decode().splitlines()
    stored = dict(row.split("|", 1) for row in rows)
    missing = {i: title for i, title in acknowledged.items() if stored.get(str(i)) != title}
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes lost"
    print(f"{len(acknowledged)} acknowledged writes ({before_kill} before the kill), all stored")
    status, body = http("POST", f"{stack.app_url}{NOTES}", {"title": "after the crash"})
    assert status == 201, body


def _stored(stack, note_id: int, title: str) -> bool:
    status, body = get(stack, f"{NOTES}{note_id}/")
    return status == 200 and json.loads(body)["title"] == title


def _killed_with_their_watchers(stack) -> None:
    """kill -9 of every container's processes and of Podman's conmon beside each, as a
    logout that ends the user's processes does (KillUserProcesses, no lingering). Docker's
    daemon watches its containers itself (no ConmonPid): only their processes die."""
    names = [c.name for c in stack.runtime.containers(stack.config.project)]
    for name in names:
        conmon = stack.runtime.engine_cmd(
            "inspect",
            "--format",
            "{{.State.ConmonPid}}",
            name,
            capture=True,
            check=False,
            quiet=True,
        )
        if conmon.returncode == 0:
            os.kill(int(conmon.stdout.decode().strip()), signal.SIGKILL)
    stack.runtime.engine_cmd("kill", *names, capture=True, check=False, quiet=True)
    # Then `nox -s down`: Podman 4 reports them stopping for good, and refuses to start them.
    stack.runtime.engine_cmd("stop", "-t", "1", *names, capture=True, check=False, quiet=True)


def test_up_brings_back_a_stack_killed_with_its_watchers_and_keeps_its_data(isolated_stack):
    stack = isolated_stack
    status, body = http("POST", f"{stack.app_url}{NOTES}", {"title": "before the logout"})
    assert status == 201, body
    note_id = json.loads(body)["id"]
    _killed_with_their_watchers(stack)
    stack.up()
    assert _stored(stack, note_id, "before the logout")

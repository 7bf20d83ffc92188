"""`nox -s verify`: prove the stack works, on an isolated copy that is removed afterwards.

The copy has its own project name, volumes, free ports and a copy of the source tree, so
the developer's stack, data and working tree are never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .config import StackConfig
from .errors import StackError
from .file_events import watching_mode
from .isolated import checkout_copy, isolated_overrides
from .net import http, poll
from .runtime import Runtime, invoking_user
from .stack import Stack


@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, criterion: str, detail: str) -> None:
        self.rows.append((criterion, "PASS", detail))

    def table(self) -> str:
        width = max(len(row[0]) for row in self.rows)
        return "\n".join(
            f"  {name:<{width}}  {state}  {detail}" for name, state, detail in self.rows
        )


def give_to_developer(workdir: Path, runtime: Runtime) -> None:
    """As root (e.g. under sudo), make the copy look like the developer's own checkout."""
    if os.getuid() != 0:
        return
    uid, gid = invoking_user()
    for path in [workdir, *workdir.rglob("*")]:
        os.lchown(path, uid, gid)


def fail(number: int, name: str, seen: str) -> StackError:
    return StackError(f"verify: criterion {number} ({name}) failed: {seen}")


def verify(runtime: Runtime, source: StackConfig) -> Report:
    suffix = secrets.token_hex(3)
    workdir = checkout_copy(source.root, f"djstack-verify-{suffix}-")
    give_to_developer(workdir, runtime)
    config = StackConfig.load(
        workdir, overrides=isolated_overrides(source, f"djstack-verify-{suffix}")
    )
    stack = Stack(runtime, config)
    runtime.log(f"verify: isolated stack {config.project} in {workdir}")
    try:
        return _run_criteria(stack, workdir)
    finally:
        runtime.log(f"verify: removing {config.project} and its volumes")
        stack.compose("down", "-v", capture=True, check=False)
        runtime.remove_volumes(config.volume_names())
        shutil.rmtree(workdir, ignore_errors=True)


def _run_criteria(stack: Stack, workdir: Path) -> Report:
    report = Report()
    base = stack.config.app_url

    # 1. every service healthy, health endpoint 200
    try:
        seconds = stack.up()
    except StackError as exc:
        raise fail(1, "all services healthy", str(exc)) from None
    status, body = stack.health()
    if status != 200 or json.loads(body).get("status") != "ok":
        raise fail(1, "all services healthy", f"health endpoint answered {status}: {body}")
    report.add("1 services healthy", f"db, redis, app answer; health 200 ({seconds:.1f}s from up)")

    # 2. a source edit under the bind mount is served without a rebuild
    token = secrets.token_hex(8)
    urls = workdir / "src" / "config" / "urls.py"
    urls.write_text(
        urls.read_text()
        + (
            "\n\nfrom django.http import HttpResponse as _VerifyResponse  # added by nox -s verify\n"
            f"urlpatterns.append(path('__verify__/', lambda request: _VerifyResponse('{token}')))\n"
        )
    )

    def edit_served() -> tuple[bool, str]:
        status, body = http("GET", f"{base}/__verify__/")
        return status == 200 and body == token, f"{status} {body[:80]}"

    ok, seen, reload_seconds = poll(edit_served, timeout=30)
    if not ok:
        raise fail(
            2,
            "code reload",
            f"edited src/config/urls.py, still not served after 30s (last answer: {seen})",
        )
    report.add(
        "2 code reload",
        f"edit served after {reload_seconds:.2f}s, no rebuild, noticed by {watching_mode(stack)}",
    )

    # 3. a migration applies
    migrations = workdir / "src" / "notes" / "migrations"
    latest = max(p.stem for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.py"))
    name = f"{int(latest[:4]) + 1:04d}_verify_probe"
    (migrations / f"{name}.py").write_text(
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('notes', '{latest}')]\n"
        "    operations = [migrations.RunSQL('CREATE TABLE verify_probe (id integer)',\n"
        "                                    'DROP TABLE verify_probe')]\n"
    )
    stack.migrate()
    values = stack.config.values
    table = stack.exec(
        "db",
        "psql",
        "-U",
        values["POSTGRES_USER"],
        "-d",
        values["POSTGRES_DB"],
        "-tAc",
        "SELECT to_regclass('verify_probe') IS NOT NULL",
        capture=True,
        check=False,
    )
    if table.stdout.strip() != b"t":
        raise fail(
            3,
            "migration applies",
            f"migrate ran but table verify_probe is missing "
            f"({table.stdout.decode().strip() or table.stderr.decode().strip()})",
        )
    report.add("3 migration applies", f"notes.{name} applied, table verify_probe exists")

    # 4. data written before the containers are removed is read back from the named volumes
    #    by new ones (`down` alone keeps the containers, which would prove less)
    title = f"verify {token}"
    status, body = http("POST", f"{base}/api/v1/notes/", {"title": title})
    if status != 201:
        raise fail(4, "data survives restart", f"creating a note answered {status}: {body}")
    note_id = json.loads(body)["id"]
    stack.exec("redis", "redis-cli", "SET", "verify:token", token, capture=True)
    stack.remove()
    left = [c.name for c in stack.containers().values()]
    if left:
        raise fail(4, "data survives restart", f"containers still there after removal: {left}")
    missing = [v for v in stack.config.volume_names() if not stack.runtime.volume_exists(v)]
    if missing:
        raise fail(4, "data survives restart", f"named volumes missing after removal: {missing}")
    restart = stack.up()
    status, body = http("GET", f"{base}/api/v1/notes/{note_id}/")
    if status != 200 or json.loads(body).get("title") != title:
        raise fail(4, "data survives restart", f"note {note_id} after restart: {status} {body}")
    cached = stack.exec("redis", "redis-cli", "GET", "verify:token", capture=True)
    if cached.stdout.strip() != token.encode():
        raise fail(4, "data survives restart", f"redis key after restart: {cached.stdout!r}")
    report.add(
        "4 data survives restart",
        f"note {note_id} and a redis key read back by new containers ({restart:.1f}s); "
        f"volumes {', '.join(stack.config.volume_names()[:2])} exist",
    )
    # 5. files the container writes into the source tree belong to the developer
    before = set(migrations.iterdir())
    stack.exec(
        "app",
        "python3",
        "manage.py",
        "makemigrations",
        "notes",
        "--empty",
        "--name",
        "ownership_probe",
        capture=True,
    )
    created = sorted(set(migrations.iterdir()) - before)
    uid = invoking_user()[0]
    expected = workdir.stat().st_uid  # the checkout's owner
    if not created:
        raise fail(5, "files belong to you", "makemigrations created no file in the bind mount")
    owner = created[0].stat().st_uid
    if owner != expected:
        raise fail(
            5,
            "files belong to you",
            f"{created[0].name} written by the container is "
            f"owned by UID {owner}, expected {expected} (you are {uid})",
        )
    report.add(
        "5 files belong to you",
        f"makemigrations wrote {created[0].name} owned by UID {owner} "
        f"({stack.runtime.describe()}, you are UID {uid})",
    )
    return report

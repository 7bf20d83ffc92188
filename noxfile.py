#!/usr/bin/env python3
"""Develop the Django backend in containers: `nox -l` lists the sessions.

No nox installed? `python3 noxfile.py -s up` installs it (and podman-compose) into
.nox/_tools on first use and runs it. The container runtime is CONTAINER_RUNTIME
(podman or docker), auto-detected when unset; see docs/runtimes.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # the devstack package: host-side logic behind these sessions

if __name__ == "__main__":
    from devstack.bootstrap import run_nox

    sys.exit(run_nox(sys.argv[1:]))

from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import nox  # noqa: E402

from devstack.config import StackConfig  # noqa: E402
from devstack.errors import StackError  # noqa: E402
from devstack.runtime import detect  # noqa: E402
from devstack.stack import Stack  # noqa: E402
from devstack.verify import verify as verify_stack  # noqa: E402

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["up"]
nox.options.reuse_venv = "yes"

PYPROJECT = nox.project.load_toml("pyproject.toml")


@contextmanager
def stack(session: nox.Session) -> Iterator[Stack]:
    """The stack for this checkout; a StackError ends the session with its one-line message."""
    try:
        config = StackConfig.load(ROOT)
        runtime = detect(config.values.get("CONTAINER_RUNTIME"), log=session.log)
        yield Stack(runtime, config)
    except StackError as exc:
        session.error(str(exc))


@nox.session(venv_backend="none")
def build(session: nox.Session) -> None:
    """Build the app image (and stand-in base images when no registry answers)."""
    with stack(session) as s:
        s.build(force=True)


@nox.session(venv_backend="none")
def up(session: nox.Session) -> None:
    """Build if needed, start the stack, wait until every service answers, print the URLs."""
    with stack(session) as s:
        seconds = s.up()
        session.log(f"stack {s.config.project} is up ({seconds:.1f}s) on {s.runtime.name}:")
        for name, url in s.urls().items():
            session.log(f"  {name:<11} {url}")


@nox.session(venv_backend="none")
def down(session: nox.Session) -> None:
    """Stop and remove the stack's containers; the data volumes are kept."""
    with stack(session) as s:
        s.down()


@nox.session(venv_backend="none")
def migrate(session: nox.Session) -> None:
    """Apply migrations in the running app container (arguments go to manage.py migrate)."""
    with stack(session) as s:
        s.migrate(*session.posargs)


@nox.session(venv_backend="none", requires=["up"])
def tests(session: nox.Session) -> None:
    """Run the Django tests in the app container against the stack's PostgreSQL and Redis."""
    with stack(session) as s:
        result = s.exec("app", "pytest", *session.posargs, check=False)
        if result.returncode != 0:
            session.error(f"the Django tests failed (pytest exit code {result.returncode})")


@nox.session(venv_backend="none", default=False)
def verify(session: nox.Session) -> None:
    """Prove on an isolated copy: services healthy, code reload, migration, data survives restart."""
    with stack(session) as s:
        report = verify_stack(s.runtime, s.config)
        session.log(f"verify passed on {s.runtime.name}:\n{report.table()}")


@nox.session(default=False)
def tooling(session: nox.Session) -> None:
    """Test the host-side tooling (runtime seam, .env checks, preflight) with pytest."""
    session.install(*[r for r in PYPROJECT["dependency-groups"]["dev"] if r.startswith("pytest>")])
    session.install(*PYPROJECT["dependency-groups"]["host"])
    session.run("pytest", "-p", "no:django", "-p", "no:cacheprovider", "-o", "addopts=",
                "tests/host", *session.posargs)


@nox.session(venv_backend="none", default=False, requires=["tests", "tooling", "verify"])
def check(session: nox.Session) -> None:
    """Everything CI runs: the Django tests, the tooling tests and verify."""
    session.log("all checks passed")

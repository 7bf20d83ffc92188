#!/usr/bin/env python3
"""Develop the Django backend in containers: `nox -l` lists the sessions.

No nox installed? `python3 noxfile.py -s up` installs it (with podman-compose and uv) into
.nox/_tools on first use and runs it; a nox installed on its own does the same. The
container runtime is CONTAINER_RUNTIME (podman or docker), auto-detected when unset; see
docs/runtimes.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # the devstack package: host-side logic behind these sessions

from devstack.bootstrap import run_nox, use_host_tools  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_nox(sys.argv[1:]))
use_host_tools()  # a nox without podman-compose & co. (pipx install nox) continues in .nox/_tools

import ipaddress  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import nox  # noqa: E402

# The modules of the occasional sessions (prod, kube, verify, bench) are imported there:
# `up` and the daily sessions start sooner.
from devstack import snapshots, workflow  # noqa: E402
from devstack.config import StackConfig  # noqa: E402
from devstack.errors import StackError  # noqa: E402
from devstack.runtime import ca_bundle_path, detect  # noqa: E402
from devstack.stack import Stack  # noqa: E402

nox.needs_version = ">=2025.2.9"
# pip, not uv, for session venvs: pip honours the pip.conf / PIP_CERT a TLS-intercepting
# proxy needs, and the bootstrap already proved it works here.
nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["up"]
nox.options.reuse_venv = "yes"

PYPROJECT = nox.project.load_toml("pyproject.toml")
DEVCONTAINERS_CLI = "0.89.0"  # npm's @devcontainers/cli, installed into .nox/devcontainer
SHIM = ROOT / ".devcontainer" / "compose-without-build"  # the CLI's compose: no `build`


ERROR_LOG = ROOT / ".nox" / "last-error.log"


@contextmanager
def one_line_failures(session: nox.Session) -> Iterator[None]:
    """A session ends in one line, never a traceback: a StackError's own message, or what
    failed unexpectedly and where its full traceback was written."""
    try:
        yield
    except StackError as exc:
        session.error(str(exc))
    except Exception as exc:
        if type(exc).__module__.startswith("nox"):  # session.error and friends: nox's own
            raise
        ERROR_LOG.parent.mkdir(exist_ok=True)
        ERROR_LOG.write_text(traceback.format_exc())
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        session.error(
            f"{session.name} failed unexpectedly ({type(exc).__name__}: {reason}); "
            f"full traceback in {ERROR_LOG}"
        )


@contextmanager
def stack(session: nox.Session, **overrides: str) -> Iterator[Stack]:
    """The stack of this checkout, on the runtime CONTAINER_RUNTIME names or detects."""
    with one_line_failures(session):
        config = StackConfig.load(ROOT, overrides=overrides)
        runtime = detect(config.values.get("CONTAINER_RUNTIME"), log=session.log)
        yield Stack(runtime, config)


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


@nox.session(venv_backend="none", default=False)
def debug(session: nox.Session) -> None:
    """Restart the app with debugpy listening on 127.0.0.1:DEBUG_PORT (`nox -s up` ends it)."""
    with stack(session, DEBUGPY="true") as s:
        if not ipaddress.ip_address(s.config.values["BIND_ADDRESS"]).is_loopback:
            session.error("a debugger runs any code it is sent: use BIND_ADDRESS=127.0.0.1")
        s.up()
        where = f"{s.config.host}:{s.config.port('debugger')}"
        session.log(
            f"debugpy listens on {where}; the app on {s.app_url}/ as usual. Attach with "
            "VS Code's 'Django: attach to the app container' (.vscode/launch.json) or any "
            f"DAP client at {where}, mapping src/ to /app/src; PyCharm's debugger cannot "
            "attach there (docs/how-to.md#attaching-a-debugger). Detach and attach again "
            "at will, and again after a reload; `nox -s up` ends debugging."
        )


@nox.session(venv_backend="none")
def down(session: nox.Session) -> None:
    """Stop the stack; containers and volumes are kept, so the next `up` is quick."""
    with stack(session) as s:
        s.down()


@nox.session(venv_backend="none")
def restart(session: nox.Session) -> None:
    """Restart all services or the ones named (`-- app`), then wait until they answer."""
    with stack(session) as s:
        seconds = workflow.restart(s, session.posargs)
        session.log(f"restarted and ready in {seconds:.1f}s")


@nox.session(venv_backend="none")
def status(session: nox.Session) -> None:
    """Show each service: container state, health (probed), published ports, URL."""
    with stack(session) as s:
        table = workflow.status_table(workflow.status(s))
        print(f"stack {s.config.project} on {s.runtime.name}:\n{table}", flush=True)


@nox.session(venv_backend="none")
def logs(session: nox.Session) -> None:
    """Show the logs of all services or one (`-- app`; `-- -f` follows, `--tail 50`)."""
    with stack(session) as s:
        workflow.logs(s, session.posargs)


@nox.session(venv_backend="none")
def clean(session: nox.Session) -> None:
    """Remove the containers; the volumes too after a yes at the prompt or `-- --yes`."""
    yes, _ = workflow.split_yes(session.posargs)
    with stack(session) as s:
        kept = f"snapshots in {snapshots.snapshot_dir(s.config)} are kept"
        workflow.clean(s, yes=yes, confirm=workflow.confirmer(), kept_elsewhere=kept)


@nox.session(venv_backend="none")
def migrate(session: nox.Session) -> None:
    """Apply migrations in the running app container (arguments go to manage.py migrate)."""
    with stack(session) as s:
        s.migrate(*session.posargs)


@nox.session(venv_backend="none")
def shell(session: nox.Session) -> None:
    """Open a shell in the app container (or run `-- <command>` there)."""
    with stack(session) as s:
        workflow.shell(s, session.posargs)


@nox.session(venv_backend="none")
def dbshell(session: nox.Session) -> None:
    """Open psql on the stack's database (arguments go to psql, e.g. `-- -c 'select 1'`)."""
    with stack(session) as s:
        workflow.dbshell(s, session.posargs)


@nox.session(venv_backend="none")
def manage(session: nox.Session) -> None:
    """Run any manage.py command in the app container: `-- <command> [args]`."""
    if not session.posargs:
        session.error("Usage: nox -s manage -- <manage.py command> [args], e.g. -- showmigrations")
    with stack(session) as s:
        workflow.manage(s, session.posargs)


@nox.session(venv_backend="none")
def makemigrations(session: nox.Session) -> None:
    """Write new migrations from model changes (arguments go to manage.py makemigrations)."""
    with stack(session) as s:
        workflow.manage(s, ["makemigrations", *session.posargs])


@nox.session(venv_backend="none")
def createsuperuser(session: nox.Session) -> None:
    """Create a Django admin user (asks on a terminal; or `-- --noinput --username ...`)."""
    with stack(session) as s:
        workflow.createsuperuser(s, session.posargs)


@nox.session(venv_backend="none")
def snapshot(session: nox.Session) -> None:
    """Save the database to a named, timestamped snapshot outside the volumes (`-- [name]`)."""
    if len(session.posargs) > 1:
        session.error("Usage: nox -s snapshot -- [name]")
    with stack(session) as s:
        taken = snapshots.take(s, *session.posargs)
        session.log(f"snapshot {taken.name!r}: {snapshots.human_size(taken.size)} in {taken.path}")


@nox.session(venv_backend="none", name="snapshots")
def list_snapshots(session: nox.Session) -> None:
    """List the database snapshots: name, date, size."""
    with stack(session) as s:
        found = snapshots.list_snapshots(s.config)
        empty = f"no snapshots in {snapshots.snapshot_dir(s.config)} yet"
        print(snapshots.snapshots_table(found) if found else empty, flush=True)


@nox.session(venv_backend="none")
def restore(session: nox.Session) -> None:
    """Replace the database with a snapshot, all or nothing (`-- <name> [--yes]`)."""
    yes, args = workflow.split_yes(session.posargs)
    if len(args) != 1:
        session.error("Usage: nox -s restore -- <name> [--yes]  (`nox -s snapshots` lists names)")
    with stack(session) as s:
        done = snapshots.restore(s, args[0], yes=yes, confirm=workflow.confirmer())
        session.log(f"restored {args[0]!r}" if done else "not restored: the database is unchanged")


@nox.session(venv_backend="none", name="db-export")
def db_export(session: nox.Session) -> None:
    """Export the database as SQL (`-- [file]`; gzipped when it ends in .gz)."""
    if len(session.posargs) > 1:
        session.error("Usage: nox -s db-export -- [file.sql | file.sql.gz]")
    with stack(session) as s:
        session.log(f"exported to {snapshots.export_sql(s, *session.posargs)}")


@nox.session(venv_backend="none", name="db-import")
def db_import(session: nox.Session) -> None:
    """Replace the database with a plain or gzipped SQL file (`-- <file> [--yes]`)."""
    yes, args = workflow.split_yes(session.posargs)
    if len(args) != 1:
        session.error("Usage: nox -s db-import -- <file.sql | file.sql.gz> [--yes]")
    with stack(session) as s:
        done = snapshots.import_sql(s, args[0], yes=yes, confirm=workflow.confirmer())
        session.log(f"imported {args[0]}" if done else "not imported: the database is unchanged")


@nox.session(venv_backend="none", default=False)
def prod(session: nox.Session) -> None:
    """Run the prod image hardened, with PostgreSQL and Redis, migrated (`-- down` stops it)."""
    with stack(session) as s:
        from devstack.production import ProdStack

        production = ProdStack.for_checkout(s.runtime, s.config)
        if session.posargs[:1] == ["down"]:
            return production.down()
        seconds = production.up()
        session.log(f"production-like stack {production.config.project} is up ({seconds:.1f}s):")
        for name, url in production.urls().items():
            session.log(f"  {name:<9} {url}")


@nox.session(venv_backend="none", default=False)
def kube(session: nox.Session) -> None:
    """Run the Kubernetes manifests with podman kube play until healthy (`-- up|down|render`)."""
    from devstack import kube as k8s

    with one_line_failures(
        session
    ):  # Podman whatever CONTAINER_RUNTIME says: kube play is Podman's
        print(k8s.command(StackConfig.load(ROOT), session.posargs, session.log), flush=True)


@nox.session(venv_backend="none", requires=["up"])
def tests(session: nox.Session) -> None:
    """Run the Django tests in the app container with coverage (HTML in tests/htmlcov/)."""
    with stack(session) as s:
        result = s.exec(
            "app", "coverage", "run", "-m", "pytest", *session.posargs, workdir="/app", check=False
        )
        if result.returncode != 0:
            session.error(f"the Django tests failed (pytest exit code {result.returncode})")
        # fail_under (pyproject.toml) holds for the whole suite; a chosen few tests only report.
        report = "coverage report" + (" --fail-under=0" if session.posargs else "")
        result = s.exec(
            "app",
            "sh",
            "-c",
            f"coverage combine -q; coverage html -q --fail-under=0; {report}",
            workdir="/app",
            check=False,
        )
        if result.returncode != 0:
            session.error("coverage is below [tool.coverage.report] fail_under (pyproject.toml)")


@nox.session(default=False, requires=["up"])
def lint(session: nox.Session) -> None:
    """Ruff (check and format check), then fail on a model change without its migration."""
    session.install(*PYPROJECT["dependency-groups"]["lint"])
    paths = ["src", "settings", "tests", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    with stack(session) as s:
        result = s.exec(
            "app", "python3", "manage.py", "makemigrations", "--check", "--dry-run", check=False
        )
        if result.returncode != 0:
            session.error(
                "a model change has no migration: `nox -s makemigrations`, then commit it"
            )


@nox.session(venv_backend="none", default=False, requires=["up"])
def devcontainer(session: nox.Session) -> None:
    """Run the stack as a dev container with the devcontainers CLI (`-- exec <command>`)."""
    command, *args = session.posargs or ["up"]
    cli = ROOT / ".nox" / "devcontainer" / "node_modules" / ".bin" / "devcontainer"
    with stack(session) as s:
        # For editors that start compose themselves (VS Code): the values nox passes to it.
        keys = ("APP_IMAGE", "APP_USER", "APP_USERNS")
        s.config.record(
            {
                "COMPOSE_PROJECT_NAME": s.config.project,
                **{key: s.compose_env()[key] for key in keys},
            }
        )
        ca = ca_bundle_path(s.config.values.get("CA_BUNDLE"))  # TLS-intercepting proxies
        env = {
            **s.compose_env(),
            **({"NODE_EXTRA_CA_CERTS": ca} if ca else {}),
            "COMPOSE_PROJECT_NAME": s.config.project,
            "DEVCONTAINER_COMPOSE": " ".join(s.runtime.compose_tool),
        }  # for the shim
        if not cli.exists():
            npm = ["npm", "install", "--prefix", str(cli.parents[2]), "--no-audit", "--no-fund"]
            session.run(*npm, f"@devcontainers/cli@{DEVCONTAINERS_CLI}", env=env, external=True)
        app = s.containers().get("app")
        if app and "devcontainer.local_folder" not in app.labels:
            if command == "exec":  # e.g. `up` recreated it after a rebuild
                session.error("the app container is not a dev container: `nox -s devcontainer`")
            if command == "up":
                # The CLI labels the app container as it creates it; podman-compose would keep
                # this unlabelled one, which the CLI then cannot find.
                s.runtime.engine_cmd("rm", "-f", app.name, capture=True, quiet=True)
        engines = ["--docker-path", s.runtime.engine[0], "--docker-compose-path", str(SHIM)]
        session.run(
            str(cli),
            command,
            "--workspace-folder",
            str(ROOT),
            *engines,
            *args,
            env=env,
            external=True,
        )
        if command == "up":
            s.wait_ready(timeout=float(s.config.values["UP_TIMEOUT"]))


@nox.session(venv_backend="none", default=False)
def verify(session: nox.Session) -> None:
    """Prove on an isolated copy: healthy, reload, migration, data survives restart, files yours."""
    with stack(session) as s:
        from devstack.verify import verify as verify_stack

        report = verify_stack(s.runtime, s.config)
        session.log(f"verify passed on {s.runtime.describe()}:\n{report.table()}")


@nox.session(default=False)
def tooling(session: nox.Session) -> None:
    """Test the host-side tooling (runtime seam, .env checks, preflight) with pytest."""
    session.install(*[r for r in PYPROJECT["dependency-groups"]["dev"] if r.startswith("pytest>")])
    session.install(*PYPROJECT["dependency-groups"]["host"])
    session.install("kubernetes-validate==1.37.0")  # bundles the schemas: validates offline
    paths = [] if any(arg.startswith("tests/") for arg in session.posargs) else ["tests/host"]
    session.run(
        "pytest",
        "-p",
        "no:django",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        *paths,
        *session.posargs,
    )


@nox.session(default=False, requires=["up"])
def contract(session: nox.Session) -> None:
    """Fuzz the running API against its own OpenAPI schema with schemathesis, every check."""
    session.install(*PYPROJECT["dependency-groups"]["contract"])
    with stack(session) as s:
        schema = f"{s.app_url}/api/v1/schema/"
    session.run("st", "run", schema, "--checks", "all", *session.posargs)


@nox.session(venv_backend="none", default=False, requires=["up"])
def browser(session: nox.Session) -> None:
    """Open the API docs (Swagger UI, ReDoc) in headless Chromium: every operation, offline."""
    from devstack.browser import check_docs_pages

    with stack(session) as s:
        for line in check_docs_pages(s.app_url):
            session.log(line)


@nox.session(
    venv_backend="none", default=False, requires=["lint", "tests", "contract", "tooling", "verify"]
)
def check(session: nox.Session) -> None:
    """Everything CI runs: lint, the Django tests, the API contract, the tooling and verify."""
    session.log("all checks passed")


@nox.session(venv_backend="none", default=False)
def bench(session: nox.Session) -> None:
    """Measure up, down, reload and rebuilds on an isolated copy; write docs/benchmarks.md."""
    with stack(session) as s:
        from devstack import bench as benchmarks

        options = benchmarks.parse_args(session.posargs)
        results = benchmarks.bench(s.runtime, s.config, **options)
        benchmarks.write_report(results, s.runtime, ROOT / "docs" / "benchmarks.md", **options)
        print(results.tables(), flush=True)

"""The daily workflow behind the Nox sessions: logs, status, restart, shells, manage.py, clean.

Everything goes through the compose tool of the runtime (`exec <service>`, never a container
name), so it behaves the same on Podman and Docker. Health is measured by asking each service
itself (Stack.service_ready), as `up` does, not by the runtime's healthcheck scheduler.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .errors import StackError
from .stack import SERVICES, Stack

Confirm = Callable[[str], bool]
YES_FLAGS = ("--yes", "-y")
SUPERUSER_VARIABLES = (
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_EMAIL",
    "DJANGO_SUPERUSER_PASSWORD",
)


# --- terminal and arguments --------------------------------------------------------------
def interactive() -> bool:
    """A person at a terminal: shells get a TTY, destructive steps may ask."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def tty_flags() -> list[str]:
    """`exec` allocates a TTY only when there is one to give it (-T otherwise: pipes, CI)."""
    return [] if interactive() else ["-T"]


def confirmer() -> Confirm | None:
    """A yes/no question on the terminal, or None without one (then nothing is deleted)."""
    if not interactive():
        return None

    def ask(question: str) -> bool:
        try:
            return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
        except EOFError:
            return False

    return ask


def split_yes(args: Sequence[str]) -> tuple[bool, list[str]]:
    """(`--yes` or `-y` given, the other arguments)."""
    rest = [arg for arg in args if arg not in YES_FLAGS]
    return len(rest) != len(args), rest


def check_services(names: Sequence[str]) -> list[str]:
    for name in names:
        if name not in SERVICES:
            raise StackError(f"unknown service {name!r}: choose from {', '.join(SERVICES)}")
    return list(names)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    columns = zip(headers, *rows, strict=True)
    widths = [max(len(str(cell)) for cell in column) for column in columns]
    lines = [headers, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(f"{cell!s:<{w}}" for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


# --- logs and status ---------------------------------------------------------------------
def logs(stack: Stack, args: Sequence[str]) -> None:
    """`compose logs` for all services or the ones named; -f follows, --tail N limits."""
    follow, tail, services, extra = False, None, [], []
    pending = list(args)
    while pending:
        arg = pending.pop(0)
        if arg in ("-f", "--follow"):
            follow = True
        elif arg == "--tail" or arg.startswith("--tail="):
            tail = arg.partition("=")[2] or (pending.pop(0) if pending else "")
            if not tail.isdigit():
                raise StackError(
                    f"--tail {tail!r} is not a number of lines: e.g. `nox -s logs -- --tail 50 app`"
                )
        elif arg.startswith("-"):
            extra.append(arg)  # e.g. --timestamps or --since=10m, passed on as given
        else:
            services.append(arg)
    check_services(services)
    if not stack.containers():
        raise StackError(
            f"stack {stack.config.project} has no containers, so no logs: start it with `nox -s up`"
        )
    color = [] if sys.stdout.isatty() else ["--no-color"]  # no escape codes in files and pipes
    command = [
        "logs",
        *(["-f"] if follow else []),
        *(["--tail", tail] if tail else []),
        *color,
        *extra,
        *services,
    ]
    # Compose v2 (2.26) starts every line with an erase-line code even so: dropped here.
    process = stack.runtime.compose_popen(
        stack.config.project,
        stack.config.compose_file,
        *command,
        env=stack.compose_env(),
        stdout=None if color == [] else subprocess.PIPE,
    )
    try:
        for line in process.stdout or ():
            sys.stdout.buffer.write(line.replace(b"\x1b[2K", b""))
            sys.stdout.flush()
        code = process.wait()
    except KeyboardInterrupt:  # Ctrl-C ends following; that is not a failure
        process.terminate()
        code = 0
    if code != 0 and not follow:
        raise StackError(
            f"`{' '.join(stack.runtime.compose_tool)} logs` failed with exit code {code}"
        )


@dataclass
class ServiceStatus:
    service: str
    state: str
    health: str
    ports: str
    url: str

    @property
    def healthy(self) -> bool:
        return self.health == "healthy"


def status(stack: Stack) -> list[ServiceStatus]:
    """One row per service: container state, a real probe of the service, ports, URL."""
    containers = stack.containers()
    urls = stack.urls()
    url_of = {"app": urls["App"], "db": urls["PostgreSQL"], "redis": urls["Redis"]}
    running = [s for s in SERVICES if s in containers and containers[s].state == "running"]
    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:  # probes in parallel
        probes = dict(zip(running, pool.map(stack.service_ready, running), strict=True))
    rows = []
    for service in SERVICES:
        container = containers.get(service)
        if service in probes:
            ok, detail = probes[service]
            health = "healthy" if ok else f"not ready: {detail[:60]}"
        else:
            health = "-"
        rows.append(
            ServiceStatus(
                service=service,
                state=container.state if container else "absent",
                health=health,
                ports=", ".join(container.ports) if container and container.ports else "-",
                url=url_of.get(service, "-"),
            )
        )
    return rows


def status_table(rows: Sequence[ServiceStatus]) -> str:
    return table(
        ("service", "state", "health", "published", "url"),
        [(r.service, r.state, r.health, r.ports, r.url) for r in rows],
    )


# --- restart, shells, manage.py ----------------------------------------------------------
def restart(stack: Stack, services: Sequence[str]) -> float:
    """Restart all services or the ones named, then wait until every service answers."""
    check_services(services)
    if not stack.containers():
        raise StackError(
            f"stack {stack.config.project} has no containers to restart: start it with `nox -s up`"
        )
    started = time.monotonic()
    stack.compose("restart", *services, capture=True, uninterrupted=True)
    stack.wait_ready(timeout=float(stack.config.values["UP_TIMEOUT"]))
    return time.monotonic() - started


def _exec(
    stack: Stack, service: str, command: Sequence[str], *, env_names: Sequence[str] = (), what: str
) -> None:
    stack.require_running(service)
    env = [flag for name in env_names for flag in ("-e", name)]  # values stay off the command line
    result = stack.compose("exec", *tty_flags(), *env, service, *command, check=False, quiet=True)
    if result.returncode != 0:
        raise StackError(
            f"{what} exited with code {result.returncode} in the {service} "
            "container (its message is above)"
        )


def shell(stack: Stack, command: Sequence[str]) -> None:
    """A shell in the app container (bash when the image has it), or run the command given."""
    if command:
        _exec(stack, "app", command, what=f"`{shlex.join(command)}`")
        return
    login = "if command -v bash >/dev/null; then exec bash; else exec sh; fi"
    _exec(stack, "app", ["sh", "-c", login], what="the shell")


def dbshell(stack: Stack, args: Sequence[str]) -> None:
    """psql on the stack's database, inside the db container (arguments go to psql)."""
    values = stack.config.values
    _exec(
        stack,
        "db",
        ["psql", "-U", values["POSTGRES_USER"], "-d", values["POSTGRES_DB"], *args],
        what="psql",
    )


def manage(stack: Stack, args: Sequence[str], *, env_names: Sequence[str] = ()) -> None:
    """`python3 manage.py <args>` in the app container, in src/ (bind-mounted): what
    startapp, makemessages or dumpdata -o write lands in the checkout's src/."""
    if not args:
        raise StackError("no manage.py command given: e.g. `nox -s manage -- showmigrations`")
    if args[0] == "runserver":  # typed by habit: a second server could only say "port in use"
        raise StackError(
            f"the dev server already runs in the app container and restarts on each edit: "
            f"{stack.app_url}/ (`nox -s logs -- -f app` follows it, `nox -s restart -- app` "
            "restarts it)"
        )
    _exec(
        stack,
        "app",
        ["python3", "manage.py", *args],
        env_names=env_names,
        what=f"manage.py {args[0]}",
    )


def createsuperuser(stack: Stack, args: Sequence[str]) -> None:
    """createsuperuser: interactive on a terminal; elsewhere --noinput with DJANGO_SUPERUSER_*."""
    if not interactive() and not {"--noinput", "--no-input"} & set(args):
        raise StackError(
            "createsuperuser asks for a password and needs a terminal: run it in "
            "one, or set DJANGO_SUPERUSER_PASSWORD and pass "
            "`-- --noinput --username NAME --email ADDRESS`"
        )
    manage(
        stack,
        ["createsuperuser", *args],
        env_names=[name for name in SUPERUSER_VARIABLES if name in os.environ],
    )


# --- clean -------------------------------------------------------------------------------
def clean(
    stack: Stack, *, yes: bool, confirm: Confirm | None, kept_elsewhere: str = ""
) -> list[str]:
    """Remove the containers; delete the volumes only after `--yes` or a yes at the prompt.

    Returns the volumes deleted (none when the answer was not yes).
    """
    from .production import ProdStack  # its production-like stack goes too

    log, runtime = stack.log, stack.runtime
    production = ProdStack.for_checkout(runtime, stack.config)
    stack.remove()
    production.remove()
    volumes = [
        name
        for name in [*stack.config.volume_names(), *production.config.volume_names()]
        if runtime.volume_exists(name)
    ]
    log(f"containers of stack {stack.config.project} and {production.config.project} removed")
    if not volumes:
        log("no volumes to delete")
        return []
    log("the stack's data is in these volumes:")
    for name in volumes:
        log(f"  {name}")
    question = f"Delete these {len(volumes)} volumes and their data?"
    if not yes and not (confirm and confirm(question)):
        why = "" if confirm else " (no terminal to ask on)"
        log(f"volumes kept{why}: `nox -s clean -- --yes` deletes them")
        return []
    runtime.remove_volumes(volumes)
    log(f"deleted {len(volumes)} volumes" + (f"; {kept_elsewhere}" if kept_elsewhere else ""))
    return volumes

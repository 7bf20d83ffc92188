"""The stack's life cycle: preflight, up, readiness, down, and commands in its containers."""

from __future__ import annotations

import errno
import os
import re
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from .config import PORT_VARIABLES, StackConfig
from .errors import StackError
from .images import ensure_app_image, ensure_base_images
from .runtime import Runtime, invoking_user

SERVICES = ("db", "redis", "app")


@dataclass
class Stack:
    runtime: Runtime
    config: StackConfig

    # What this stack runs; the production-like stack (production.py) changes these.
    services = SERVICES
    http_service = "app"
    port_variables = PORT_VARIABLES
    image_variable = "APP_IMAGE"

    @property
    def app_url(self) -> str:
        variable = self.port_variables[self.http_service]
        return f"http://{self.config.host}:{self.config.values[variable]}"

    @property
    def log(self):
        return self.runtime.log

    # --- compose ------------------------------------------------------------------------
    def compose_env(self) -> dict[str, str]:
        """The configuration, plus the user mapping of this runtime unless set explicitly."""
        mapping = self.runtime.app_user_env(*invoking_user())
        explicit = self.config.origin  # set in .env or the environment: the user's choice
        return {**self.config.compose_env(),
                **{key: value for key, value in mapping.items() if key not in explicit}}

    def compose(self, *args: str, **kwargs):
        return self.runtime.compose(self.config.project, self.config.compose_file, *args,
                                    env=self.compose_env(), **kwargs)

    def exec(self, service: str, *command: str, **kwargs):
        return self.compose("exec", "-T", service, *command, **kwargs)

    # --- life cycle ------------------------------------------------------------------------
    def preflight(self) -> None:
        """Fail before starting anything if a published port is taken by someone else."""
        running = self.runtime.running_services(self.config.project)
        for service, variable in self.port_variables.items():
            if service in running:
                continue  # our own container holds it
            port = int(self.config.values[variable])
            if port_in_use(self.config.values["BIND_ADDRESS"], port):
                raise StackError(
                    f"port {port} on {self.config.values['BIND_ADDRESS']} is already in use, so "
                    f"the {service} service cannot publish it: set {variable}=<free port> in "
                    f"{self.config.env_file.name} (or stop what uses it) and retry")

    def build(self, *, force: bool = False) -> None:
        ensure_base_images(self.runtime, self.config)
        ensure_app_image(self.runtime, self.config, force=force)

    def up(self) -> float:
        """Start (or keep) the stack and return once every service answers; returns seconds."""
        started = time.monotonic()
        self.preflight()
        self.build()
        if os.getuid() == 0 and "SUDO_UID" not in os.environ:
            self.log("note: as plain root, the app still runs as UID 1001 (never root) and cannot "
                     "write into a root-owned source tree; run as your user or with sudo")
        self.compose("up", "-d", capture=True)
        self.recreate_if_stale("app")
        self.wait_ready(timeout=float(self.config.values["UP_TIMEOUT"]))
        return time.monotonic() - started

    def recreate_if_stale(self, service: str) -> None:
        """After a rebuild the tag moves on, but compose keeps the old container: replace it."""
        current = self.runtime.image_id(self.config.values[self.image_variable])
        running = self.runtime.service_image_id(self.config.project, service)
        if current and running and running != current:
            self.log(f"{service} runs an older image: recreating it")
            self.compose("up", "-d", "--force-recreate", "--no-deps", service, capture=True)

    def down(self) -> None:
        self.compose("down", capture=True)

    def migrate(self, *args: str) -> None:
        self.exec("app", "python3", "src/manage.py", "migrate", "--noinput", *args)

    # --- readiness ---------------------------------------------------------------------------
    def service_ready(self, service: str) -> tuple[bool, str]:
        """Ask the service itself, not the runtime's healthcheck scheduler (absent without systemd)."""
        if service == "db":
            user, db = self.config.values["POSTGRES_USER"], self.config.values["POSTGRES_DB"]
            result = self.exec("db", "pg_isready", "-U", user, "-d", db, capture=True,
                               check=False, quiet=True, timeout=20)
            return result.returncode == 0, _last_line(result)
        if service == "redis":
            result = self.exec("redis", "redis-cli", "ping", capture=True, check=False,
                               quiet=True, timeout=20)
            return result.stdout.strip() == b"PONG", _last_line(result)
        status, body = self.health()
        return status == 200, f"health endpoint answered {status or 'nothing'} {body}".strip()

    def health(self) -> tuple[int | None, str]:
        try:
            with urllib.request.urlopen(f"{self.app_url}/api/v1/health/", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (OSError, ValueError) as exc:
            return None, f"({exc})"

    def wait_ready(self, timeout: float, services: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        pending = list(services or self.services)
        seen: dict[str, str] = {}
        while pending:
            running = self.runtime.running_services(self.config.project)
            for service in list(pending):
                if service not in running:
                    seen[service] = "container is not running"
                    if time.monotonic() - started > 5:
                        raise StackError(self._stopped_message(service))
                    continue
                ok, detail = self.service_ready(service)
                if ok:
                    pending.remove(service)
                    self.log(f"{service} ready after {time.monotonic() - started:.1f}s")
                else:
                    seen[service] = detail
            if pending and time.monotonic() >= deadline:
                waiting = "; ".join(f"{s}: {seen.get(s, 'no answer')}" for s in pending)
                raise StackError(f"not ready after {timeout:g}s ({waiting}); see "
                                 f"`nox -s logs -- {pending[0]}`, or raise UP_TIMEOUT")
            if pending:
                time.sleep(0.3)

    def _stopped_message(self, service: str) -> str:
        logs = self.compose("logs", "--tail", "5", service, capture=True, check=False, quiet=True)
        lines = [line for line in (logs.stdout + logs.stderr).decode(errors="replace").splitlines()
                 if line.strip()]
        last = re.sub(r"\x1b\[[0-9;]*m", "", lines[-1]).strip() if lines else "no output"
        return (f"the {service} container stopped while starting (last log line: {last}); "
                f"see `nox -s logs -- {service}`")

    def urls(self) -> dict[str, str]:
        host, values = self.config.host, self.config.values
        user, password, db = values["POSTGRES_USER"], values["POSTGRES_PASSWORD"], values["POSTGRES_DB"]
        return {
            "App": f"{self.app_url}/",
            "Health": f"{self.app_url}/api/v1/health/",
            "API docs": f"{self.app_url}/api/v1/docs/",
            "Admin": f"{self.app_url}/admin/",
            "PostgreSQL": f"postgres://{user}:{password}@{host}:{self.config.port('db')}/{db}",
            "Redis": f"redis://{host}:{self.config.port('redis')}/0",
        }

    # --- daily workflow ------------------------------------------------------------------
    def require_running(self, *services: str) -> None:
        """Fail with the fix when a service the command needs has no running container."""
        stopped = [s for s in services if s not in self.runtime.running_services(self.config.project)]
        if stopped:
            raise StackError(f"the {', '.join(stopped)} service of stack {self.config.project} is "
                             "not running: start the stack with `nox -s up` and retry")

    def exec_stream(self, service: str, *command: str, **popen):
        """`exec -T` with pipes (stdin/stdout/stderr as for subprocess.Popen): data streams."""
        return self.runtime.compose_popen(self.config.project, self.config.compose_file, "exec",
                                          "-T", service, *command, env=self.compose_env(),
                                          **popen)


def port_in_use(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _last_line(result) -> str:
    text = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()
    return text[-1] if text else f"exit code {result.returncode}"


def health_summary(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200]
    return ", ".join(f"{name} {state['status']}" for name, state in data.get("services", {}).items())

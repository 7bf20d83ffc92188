"""The stack's life cycle: preflight, up, readiness, down, and commands in its containers."""

from __future__ import annotations

import hashlib
import os
import re
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .config import PORT_VARIABLES, StackConfig
from .errors import StackError
from .net import port_in_use, postgres_answers, redis_answers
from .images import app_image_up_to_date, ensure_app_image, ensure_base_images
from .runtime import Runtime, invoking_user

SERVICES = ("db", "redis", "app")
CONFIG_LABEL = "io.djstack.config"
# Read by the tooling only: changing them must not recreate containers.
NOT_COMPOSE_KEYS = {"UP_TIMEOUT", "CONTAINER_RUNTIME", "CA_BUNDLE", "SNAPSHOT_DIR"}


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
        env = {**self.config.compose_env(),
               **{key: value for key, value in mapping.items() if key not in explicit}}
        env["DJSTACK_CONFIG"] = self._digest(env)  # the containers' io.djstack.config label
        return env

    def _digest(self, env: dict[str, str]) -> str:
        """What the containers are created from: compose.yaml and the values it reads."""
        keys = (set(self.config.values) | {"APP_USER", "APP_USERNS"}) - NOT_COMPOSE_KEYS
        relevant = {key: env[key] for key in sorted(keys) if key in env}
        digest = hashlib.sha256(self.config.compose_file.read_bytes())
        digest.update(json.dumps(relevant, sort_keys=True).encode())
        return digest.hexdigest()[:16]

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
        digest = self.config_digest()
        with ThreadPoolExecutor(max_workers=2) as pool:  # two engine queries at once
            listing = pool.submit(self.runtime.containers, self.config.project)
            image = pool.submit(app_image_up_to_date, self.runtime, self.config)
            containers = {c.service: c for c in listing.result()}
            current = self.is_current(containers, digest, image.result())
        stopped = [s for s in self.services if current and containers[s].state != "running"]
        if current and stopped:
            if self.start_stopped(containers, stopped):
                for service in stopped:  # the probes notice if one stops again
                    containers[service].state = "running"
            else:
                current = False
        if not current:
            self.preflight()
            self.build()
            if os.getuid() == 0 and "SUDO_UID" not in os.environ:
                self.log("note: as plain root, the app still runs as UID 1001 (never root) and "
                         "cannot write into a root-owned source tree; run as your user or with sudo")
            # podman-compose does not notice a changed configuration by itself. --no-deps with
            # every service named: all start, in dependency order, but Podman records no
            # start-up dependency (--requires), so a later `up` can start the app first and
            # let it boot while the database starts; the app waits for it by itself.
            changed = any(c.labels.get(CONFIG_LABEL) != digest for c in containers.values())
            self.compose("up", "-d", "--no-deps", *(["--force-recreate"] if changed else []),
                         *self.services, capture=True)
            self.recreate_if_stale("app")
        self.wait_ready(timeout=float(self.config.values["UP_TIMEOUT"]),
                        known=containers if current else None)
        return time.monotonic() - started

    def start_stopped(self, containers: dict, stopped: list[str]) -> bool:
        """`down` keeps the containers: starting them again skips the compose tool (1 s or
        more). The app goes first, so Python boots while the database starts. A port taken
        meanwhile fails the start; the compose path then names it (preflight)."""
        order = sorted(stopped, key=lambda s: s != self.http_service)
        result = self.runtime.engine_cmd("start", *(containers[s].name for s in order),
                                         capture=True, check=False, quiet=True)
        if result.returncode != 0:
            self.log(f"starting the existing containers failed ({_last_line(result)}); "
                     "creating them again")
        return result.returncode == 0

    def config_digest(self) -> str:
        return self.compose_env()["DJSTACK_CONFIG"]

    def is_current(self, containers: dict, digest: str, current_image: str | None) -> bool:
        """Every service has a container (running or stopped) made from this configuration
        and the current app image (`current_image`: its ID, None when it is out of date)."""
        if any(containers.get(s) is None for s in self.services):
            return False
        if any(containers[s].labels.get(CONFIG_LABEL) != digest for s in self.services):
            return False
        return current_image is not None and containers["app"].image == current_image

    def recreate_if_stale(self, service: str) -> None:
        """After a rebuild the tag moves on, but compose keeps the old container: replace it."""
        current = self.runtime.image_id(self.config.values[self.image_variable])
        running = next((c.image for c in self.runtime.containers(self.config.project)
                        if c.service == service), None)
        if current and running and running != current:
            self.log(f"{service} runs an older image: recreating it")
            self.compose("up", "-d", "--force-recreate", "--no-deps", service, capture=True)

    def down(self) -> None:
        """Stop the containers and keep them: the next `up` only starts them again."""
        running = [c.name for c in self.runtime.containers(self.config.project)
                   if c.state == "running"]
        if running:
            self.runtime.engine_cmd("stop", *running, capture=True, quiet=True)

    def remove(self) -> None:
        """Remove the containers and the network; the volumes stay."""
        self.compose("down", capture=True)

    def migrate(self, *args: str) -> None:
        self.exec("app", "python3", "src/manage.py", "migrate", "--noinput", *args)

    # --- readiness ---------------------------------------------------------------------------
    def service_ready(self, service: str) -> tuple[bool, str]:
        """Ask the service itself on its published port, as your own tools reach it: not the
        runtime's healthcheck scheduler (absent without systemd), and no `exec` either, which
        costs a process in the container and CPU the starting app needs."""
        port = int(self.config.values[self.port_variables.get(service) or PORT_VARIABLES[service]])
        if service == "db":
            values = self.config.values
            return postgres_answers(self.config.host, port, values["POSTGRES_USER"],
                                    values["POSTGRES_DB"])
        if service == "redis":
            return redis_answers(self.config.host, port)
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

    def wait_ready(self, timeout: float, services: tuple[str, ...] | None = None,
                   known: dict | None = None) -> None:
        """Probe every service in parallel until all answer (`known`: containers just listed).

        Rounds are 20 ms apart (a probe is a socket or one HTTP request); the container list
        (is anything stopped?) is read again at most every second, since it costs more than a
        probe.
        """
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        pending = list(services or self.services)
        seen: dict[str, str] = {}
        containers, listed = known, time.monotonic()
        with ThreadPoolExecutor(max_workers=len(pending)) as pool:
            while pending:
                if containers is None or (seen and time.monotonic() - listed > 1):
                    containers = {c.service: c for c in
                                  self.runtime.containers(self.config.project)}
                    listed = time.monotonic()
                probes = {}
                for service in pending:
                    container = containers.get(service)
                    if container is None or container.state != "running":
                        seen[service] = "container is not running"
                        if time.monotonic() - started > 5:
                            raise StackError(self._stopped_message(service))
                        continue
                    probes[service] = pool.submit(self.service_ready, service)
                for service, probe in probes.items():
                    ok, seen[service] = probe.result()
                    if ok:
                        pending.remove(service)
                        self.log(f"{service} ready after {time.monotonic() - started:.1f}s")
                if pending and time.monotonic() >= deadline:
                    waiting = "; ".join(f"{s}: {seen.get(s, 'no answer')}" for s in pending)
                    raise StackError(f"not ready after {timeout:g}s ({waiting}); see "
                                     f"`nox -s logs -- {pending[0]}`, or raise UP_TIMEOUT")
                if pending:
                    time.sleep(0.02)

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


def _last_line(result) -> str:
    text = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()
    return text[-1] if text else f"exit code {result.returncode}"


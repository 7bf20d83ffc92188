"""The stack's life cycle: preflight, up, readiness, down, and commands in its containers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .config import LEGACY_STACK_NAME, PORT_VARIABLES, PROD_PORT_VARIABLES, StackConfig, image_tags
from .errors import StackError
from .file_events import events_reach
from .images import app_image_up_to_date, ensure_app_image, ensure_base_images
from .net import http, port_in_use, postgres_answers, redis_answers
from .runtime import Container, Runtime

SERVICES = ("db", "redis", "app")
# The dev image's command (Containerfile): watchfiles, restarting the server on an edit.
DEV_WATCHER, DEV_SERVER = "watchfiles", "manage.py runserver"
# The last line of a Python traceback, or Django's one-line CommandError.
ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|ImproperlyConfigured)\b")
CONFIG_LABEL = "io.djstack.config"
# States a container cannot be started from: its monitor process died (Podman's conmon,
# killed with the session that started it) or the engine gave up on it; only removal works.
STUCK_STATES = {"stopping", "removing", "dead"}
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
        """The configuration, plus the user mapping of this runtime unless set explicitly:
        the app writes files into the tree as the tree's owner."""
        tree = self.config.root.stat()
        mapping = self.runtime.app_user_env(tree.st_uid, tree.st_gid)
        env = {
            **self.config.compose_env(),
            **{key: value for key, value in mapping.items() if not self.config.chosen_by_user(key)},
        }
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
        return self.runtime.compose(
            self.config.project, self.config.compose_file, *args, env=self.compose_env(), **kwargs
        )

    def exec(self, service: str, *command: str, workdir: str | None = None, **kwargs):
        where = ["-w", workdir] if workdir else []
        return self.compose("exec", "-T", *where, service, *command, **kwargs)

    def containers(self) -> dict[str, Container]:
        """This checkout's containers by service; another checkout's are never touched."""
        found = self.runtime.containers(self.config.project)
        other = next((c for c in found if not self.is_ours(c)), None)
        if other is not None:
            raise StackError(
                f"stack {self.config.project} belongs to the checkout in {checkout_of(other)}, "
                f"not to this one ({self.config.root}): set STACK_NAME=<another name> in "
                f"{self.config.env_file} and retry"
            )
        return {c.service: c for c in found}

    def is_ours(self, container: Container) -> bool:
        """Made from this checkout, or from one that no longer exists (moved, renamed or
        deleted: compose, too, reuses a project's volumes by its name alone)."""
        where = checkout_of(container)
        if not where or checkout_gone(container):
            return True
        return os.path.realpath(where) == os.path.realpath(self.config.root)

    # --- life cycle ------------------------------------------------------------------------
    def claimed_containers(self) -> dict[str, Container]:
        """This checkout's containers, after giving it a name of its own unless the user chose
        one: carry on with the stack an earlier version made here under the fixed name
        `djstack`, or move off a name another checkout (the same directory name elsewhere)
        already uses. Choices are recorded in .env."""
        if self.config.chosen_by_user("STACK_NAME"):
            return self.containers()
        base, name = self.config.project, self.config.project
        found = self.runtime.containers(name)
        for number in range(2, 100):
            if all(self.is_ours(c) for c in found):
                break
            name = f"{base}-{number}"
            found = self.runtime.containers(name)
        if name != base:
            self.log(f"stack {base} belongs to another checkout: this one is {name}")
        elif not found and name != LEGACY_STACK_NAME and "STACK_NAME" not in self.config.origin:
            legacy = self.runtime.containers(LEGACY_STACK_NAME)
            if legacy and all(self.is_ours(c) and not checkout_gone(c) for c in legacy):
                self.log(
                    f"carrying on with stack {LEGACY_STACK_NAME}, made here before stack "
                    "names followed the checkout"
                )
                name, found = LEGACY_STACK_NAME, legacy
            elif not legacy and self.runtime.volume_exists(f"{LEGACY_STACK_NAME}_db-data"):
                self.log(
                    f"note: volumes of an earlier stack {LEGACY_STACK_NAME} exist; to use "
                    f"its data here, set STACK_NAME={LEGACY_STACK_NAME} in "
                    f"{self.config.env_file.name}"
                )
        if not found:
            self.note_stacks_left_behind()
        if name != base:
            self.config.record({"STACK_NAME": name})
            self.config.values.update(
                {
                    key: value
                    for key, value in image_tags(name).items()
                    if not self.config.chosen_by_user(key)
                }
            )
            self.log(f"STACK_NAME={name} recorded in {self.config.env_file.name}")
        return {c.service: c for c in found}

    def note_stacks_left_behind(self) -> None:
        """A new stack here: say which stacks' checkouts are gone, in case this checkout is
        one of them, moved or renamed (its stack follows the directory's name)."""
        gone = {
            c.labels.get("com.docker.compose.project", "")
            for c in self.runtime.containers()
            if checkout_gone(c)
        } - {""}
        if gone:
            self.log(
                f"note: the checkouts of stack {', '.join(sorted(gone))} no longer exist; if "
                "this checkout was moved or renamed from one: `nox -s down`, set "
                f"STACK_NAME=<that stack> in {self.config.env_file.name}, and `nox -s up` "
                "carries on with its data (docs/troubleshooting.md#a-moved-checkout-starts-empty)"
            )

    def preflight(self, containers: dict[str, Container]) -> bool:
        """Before anything is stopped or created: every published port is free or already
        ours. A default port another program or container holds moves to the next free one
        (recorded in .env; returns True); a port the user chose is theirs to change."""
        address = self.config.values["BIND_ADDRESS"]
        moved, ours = {}, set().union(*map(published_ports, containers.values()))
        # The engine's list counts, not only a host socket: rootful Podman's forwarding is a
        # firewall rule, and it outlives the conmon that held the socket.
        elsewhere = {
            port: other.name
            for other in self.runtime.containers(stopped=False)
            for port in published_ports(other) - ours
        }

        def holder(port: int) -> str | None:
            if port in elsewhere:
                return f"published by container {elsewhere[port]}"
            return "in use" if port_in_use(address, port) else None

        for service, variable in self.port_variables.items():
            port = int(self.config.values[variable])
            held = None if port in ours else holder(port)
            if held is None:
                continue
            if self.config.chosen_by_user(variable):
                raise StackError(
                    f"port {port} on {address} is already {held}, so the {service} service "
                    f"cannot publish it: set {variable}=<free port> in {self.config.env_file.name}"
                    f" (or stop what uses it) and retry"
                )
            others = (*PORT_VARIABLES.values(), *PROD_PORT_VARIABLES.values())
            taken = {int(self.config.values[v]) for v in others if v != variable}
            taken |= set(moved.values())
            while port in taken or holder(port):
                port += 1
            moved[variable] = port
            self.log(
                f"port {self.config.values[variable]} is taken ({held}): {service} publishes "
                f"{port} ({variable}={port} recorded in {self.config.env_file.name})"
            )
        if moved:
            self.config.record({key: str(value) for key, value in moved.items()})
        return bool(moved)

    def build(self, *, force: bool = False) -> None:
        self.config.record_image_tags()
        ensure_base_images(self.runtime, self.config)
        ensure_app_image(self.runtime, self.config, force=force)

    def up(self) -> float:
        """Start (or keep) the stack and return once every service answers; returns seconds.
        The compose tool creates the containers; stopped current ones are started directly."""
        started = time.monotonic()
        containers = self.claimed_containers()
        self.config.record_image_tags()
        stuck = sorted(c.name for c in containers.values() if c.state in STUCK_STATES)
        if stuck:
            self.log(
                f"{', '.join(stuck)} cannot start again (the process that watched them was "
                "killed, as a logout does): removing the containers; the volumes stay"
            )
        moved = sorted({checkout_of(c) for c in containers.values() if checkout_gone(c)})
        if moved:
            self.log(
                f"stack {self.config.project} was made from {', '.join(moved)}, which no longer "
                "exists: making its containers again from this checkout; the volumes stay"
            )
        if stuck or moved:
            self.remove()
            containers = {}
        self.settle(containers)
        current = self.is_current(
            containers, self.config_digest(), app_image_up_to_date(self.runtime, self.config)
        )
        if not (current and all(c.state == "running" for c in containers.values())):
            moved = self.preflight(containers)  # may move a busy default port: new containers
            if current and not moved:
                if self.start_stopped(containers):
                    containers = None
            else:
                self.build()
                self.create(containers)
                self.choose_file_watching(containers.get("app"))
                containers = None
        self.wait_ready(timeout=float(self.config.values["UP_TIMEOUT"]), known=containers)
        return time.monotonic() - started

    def create(self, containers: dict[str, Container]) -> None:
        """`compose up -d`: containers made afresh where the configuration changed."""
        env = self.compose_env()
        self.log(f"the app runs as {describe_user(env['APP_USER'], env['APP_USERNS'])}")
        changed = any(
            c.labels.get(CONFIG_LABEL) != env["DJSTACK_CONFIG"] for c in containers.values()
        )
        # podman-compose does not notice every change of the values it interpolates.
        args = ("up", "-d", *(["--force-recreate"] if changed else []))
        made = self.compose(
            *args, capture=True, check=False, timeout=self.up_timeout, uninterrupted=True
        )
        if made.returncode != 0:
            refused = self.runtime.refusal(made)
            if refused is None:
                raise self.runtime.failure(
                    [*self.runtime.compose_tool, "-p", self.config.project, "-f"], made
                )
            if changed or not containers:  # made just now, under the same configuration
                raise self.refused_error(refused)
            self.recreate_refused(sorted(c.name for c in containers.values()), refused)
        self.recreate_if_stale("app")

    @property
    def up_timeout(self) -> float:
        return float(self.config.values["UP_TIMEOUT"])

    def recreate_refused(self, names: list[str], refused: str) -> None:
        """The engine's runtime refused to start existing containers: make them again, once.
        A container keeps the settings it was created with (ulimits, runtime, ...), so one
        made while the engine was misconfigured fails the same way after the fix."""
        self.log(
            f"{self.runtime.name} cannot start {', '.join(names)} ({refused}); a container "
            "keeps the settings it was made with: making them again, the volumes stay"
        )
        made = self.compose(
            "up",
            "-d",
            "--force-recreate",
            capture=True,
            check=False,
            timeout=self.up_timeout,
            uninterrupted=True,
        )
        if made.returncode != 0:
            raise self.refused_error(self.runtime.refusal(made) or refused)

    def refused_error(self, refused: str) -> StackError:
        return StackError(
            f"{self.runtime.name} cannot start the containers of stack {self.config.project} "
            f"({refused}): fix the engine's configuration "
            "(docs/troubleshooting.md#the-engine-cannot-start-the-containers), then "
            "`nox -s clean` (answer no: the volumes and their data stay) and `nox -s up`"
        )

    def choose_file_watching(self, before: Container | None) -> None:
        """A new app container: do edits on the host raise file events in it (file_events)?
        Where none arrive the dev server polls (recorded in .env, the container made again
        with it); the user's own WATCHFILES_FORCE_POLLING wins."""
        key = "WATCHFILES_FORCE_POLLING"
        if self.config.chosen_by_user(key):
            return
        app = self.containers().get("app")
        if app is None or (before is not None and app.id == before.id):
            return
        reach, why = events_reach(self.runtime, app.name, self.config.root)
        polling = self.config.values.get(key, "false").lower() == "true"
        if reach is None:
            if self.containers().get("app", app).state != "running":
                return  # it stopped while starting: wait_ready says why
            self.log(
                f"could not tell whether file events reach the app container ({why}); if an "
                f"edit does not reload the app, set {key}=true in {self.config.env_file.name}"
            )
        elif reach == polling:
            self.config.record({key: "false" if reach else "true"})
            self.log(
                "edits on the host raise file events in the app container again: it stops "
                f"polling ({key}=false recorded in {self.config.env_file.name})"
                if reach
                else "edits on the host raise no file events in the app container (a VM's "
                f"shared folder?): it polls for changes instead ({key}=true recorded in "
                f"{self.config.env_file.name})"
            )
            self.create(self.containers())

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
        running = next(
            (c.image for c in self.runtime.containers(self.config.project) if c.service == service),
            None,
        )
        if current and running and running != current:
            self.log(f"{service} runs an older image: recreating it")
            self.compose(
                "up",
                "-d",
                "--force-recreate",
                "--no-deps",
                service,
                capture=True,
                uninterrupted=True,
            )

    # The compose tool creates and removes the containers. Starting and stopping the ones it
    # made, once they are known to be this checkout's and current, goes to the engine: one
    # call instead of podman-compose's (0.6-0.8 s less each way; the bench's "compose
    # start/stop" rows measure both).
    def start_stopped(self, containers: dict[str, Container]) -> bool:
        """Start this checkout's stopped containers, the app first: Python boots while the
        database starts (the app waits for it by itself). True: the engine refused to start
        them and they were made again (recreate_refused)."""
        stopped = sorted(
            (c for c in containers.values() if c.state != "running"),
            key=lambda c: c.service != self.http_service,
        )
        args = [*self.runtime.engine, "start", *(c.name for c in stopped)]
        started = self.runtime.run(args, capture=True, check=False, quiet=True, uninterrupted=True)
        if started.returncode != 0:
            refused = self.runtime.refusal(started)
            if refused is None:
                raise self.runtime.failure(args, started)
            self.recreate_refused([c.name for c in stopped], refused)
            return True
        for container in stopped:  # the readiness probes notice if one stops again
            container.state = "running"
        return False

    def down(self) -> None:
        """Stop the containers and keep them: the next `up` only starts them again."""
        containers = self.containers()
        self.settle(containers)
        running = [c.name for c in containers.values() if c.state == "running"]
        if running:
            self.runtime.engine_cmd("stop", *running, capture=True, quiet=True, uninterrupted=True)

    def remove(self) -> None:
        """Remove the containers and the network; the volumes stay."""
        self.settle(self.containers())  # never another checkout's
        self.compose("down", capture=True, uninterrupted=True)

    def settle(self, containers: dict[str, Container]) -> None:
        """Containers left between states hold their ports, and Podman cannot start them: a
        paused one (`pause`, Docker Desktop's button; Podman cannot stop or remove it either)
        runs again; one whose `start` Ctrl-C cut short (Podman's "initialized", half made) is
        stopped, so that it starts afresh."""
        for state, command, after in (
            ("paused", "unpause", "running"),
            ("initialized", "stop", "exited"),
        ):
            between = [c for c in containers.values() if c.state == state]
            if between:
                names = [c.name for c in between]
                self.log(f"{', '.join(names)} {state}: {command}")
                self.runtime.engine_cmd(
                    command, *names, capture=True, quiet=True, uninterrupted=True
                )
            for container in between:
                container.state = after

    def repair_names(self) -> bool:
        """The service names resolve inside the stack's network (Runtime.repair_names)."""
        return self.runtime.repair_names(list(self.containers().values()), self.http_service)

    def migrate(self, *args: str) -> None:
        self.require_running("app")
        self.exec("app", "python3", "manage.py", "migrate", "--noinput", *args)

    # --- readiness ---------------------------------------------------------------------------
    def service_ready(self, service: str) -> tuple[bool, str]:
        """Ask the service itself on its published port, as your own tools reach it: not the
        runtime's healthcheck scheduler (absent without systemd), and no `exec` either, which
        costs a process in the container and CPU the starting app needs."""
        port = int(self.config.values[self.port_variables.get(service) or PORT_VARIABLES[service]])
        if service == "db":
            values = self.config.values
            return postgres_answers(
                self.config.host, port, values["POSTGRES_USER"], values["POSTGRES_DB"]
            )
        if service == "redis":
            return redis_answers(self.config.host, port)
        status, body = self.health()
        return status == 200, f"health endpoint answered {status or 'nothing'} {body}".strip()

    def health(self) -> tuple[int | None, str]:
        return http("GET", f"{self.app_url}/api/v1/health/")

    def wait_ready(
        self, timeout: float, services: tuple[str, ...] | None = None, known: dict | None = None
    ) -> None:
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
        repaired = started  # an app still not answering after seconds: do its names resolve?
        with ThreadPoolExecutor(max_workers=len(pending)) as pool:
            while pending:
                if containers is None or (seen and time.monotonic() - listed > 1):
                    containers = {
                        c.service: c for c in self.runtime.containers(self.config.project)
                    }
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
                if self.http_service in pending and time.monotonic() - repaired > 3:
                    self.runtime.repair_names(list(containers.values()), self.http_service)
                    if self.server_exited(containers.get(self.http_service)):
                        raise StackError(self._server_exited_message(self.http_service))
                    repaired = time.monotonic()
                if pending and time.monotonic() >= deadline:
                    waiting = "; ".join(f"{s}: {seen.get(s, 'no answer')}" for s in pending)
                    raise StackError(
                        f"not ready after {timeout:g}s ({waiting}); see "
                        f"`nox -s logs -- {pending[0]}`, or raise UP_TIMEOUT"
                    )
                if pending:
                    time.sleep(0.02)

    def server_exited(self, container: Container | None) -> bool:
        """The dev server's process ended (code that does not import, a failing check, a
        malformed setting) and watchfiles waits for an edit: its container runs on, so only
        its process list tells. Asked twice, since a reload replaces the process."""
        if container is None:
            return False
        for attempt in range(2):
            if attempt:
                time.sleep(0.3)
            processes = self.processes(container)
            if self.dev_servers(processes) or not any(DEV_WATCHER in p for p in processes):
                return False
        return True

    def processes(self, container: Container) -> list[str]:
        """The container's process list, one line each, as the engine's `top` prints it."""
        top = self.runtime.engine_cmd("top", container.name, capture=True, check=False, quiet=True)
        return top.stdout.decode(errors="replace").splitlines() if top.returncode == 0 else []

    @staticmethod
    def dev_servers(processes: list[str]) -> list[str]:
        """The dev server's lines (the watcher's own command line names the server too)."""
        return [p for p in processes if DEV_SERVER in p and DEV_WATCHER not in p]

    def _server_exited_message(self, service: str) -> str:
        return (
            f"the {service} server stopped while starting ({self._last_error(service)}); "
            f"fix it, then `nox -s up` (the whole log: `nox -s logs -- {service}`)"
        )

    def _stopped_message(self, service: str) -> str:
        return (
            f"the {service} container stopped while starting (log: {self._last_error(service)}); "
            f"see `nox -s logs -- {service}`"
        )

    def _last_error(self, service: str) -> str:
        """The last error line of the service's log (not what watchfiles prints after it),
        else its last line; without colours and the compose tool's "app | " prefix."""
        logs = self.compose("logs", "--tail", "20", service, capture=True, check=False, quiet=True)
        lines = [
            re.sub(r"^[^|\s]+\s*\|\s?", "", re.sub(r"\x1b\[[0-9;]*m", "", line)).strip()
            for line in (logs.stdout + logs.stderr).decode(errors="replace").splitlines()
        ]
        lines = [line for line in lines if line]
        errors = [line for line in lines if ERROR_LINE.match(line)]
        return (errors or lines or ["no output"])[-1]

    def urls(self) -> dict[str, str]:
        host, values = self.config.host, self.config.values
        user, password, db = (
            values["POSTGRES_USER"],
            values["POSTGRES_PASSWORD"],
            values["POSTGRES_DB"],
        )
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
        running = {s for s, c in self.containers().items() if c.state == "running"}
        stopped = [s for s in services if s not in running]
        if stopped:
            raise StackError(
                f"the {', '.join(stopped)} service of stack {self.config.project} is "
                "not running: start the stack with `nox -s up` and retry"
            )

    def exec_stream(self, service: str, *command: str, **popen):
        """`exec -T` with pipes (stdin/stdout/stderr as for subprocess.Popen): data streams."""
        return self.runtime.compose_popen(
            self.config.project,
            self.config.compose_file,
            "exec",
            "-T",
            service,
            *command,
            env=self.compose_env(),
            **popen,
        )


def checkout_of(container: Container) -> str:
    """The checkout a compose tool created the container from (all three record it)."""
    return container.labels.get("com.docker.compose.project.working_dir", "")


def checkout_gone(container: Container) -> bool:
    """The checkout the container was made from no longer exists. One this user may not
    read (another user's home) is not gone: it is someone else's."""
    where = checkout_of(container)
    if not where:
        return False
    try:
        os.stat(where)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def published_ports(container: Container | None) -> set[int]:
    """Host ports the container publishes ("127.0.0.1:8000->8000/tcp" gives 8000)."""
    if container is None or container.state != "running":
        return set()
    return {int(port.split("->")[0].rsplit(":", 1)[1]) for port in container.ports}


def describe_user(user: str, userns: str) -> str:
    """What `the app runs as ...` says, from APP_USER and APP_USERNS."""
    uid = user.split(":")[0]
    if userns.startswith("keep-id"):
        return f"UID {uid} inside, which is you outside (rootless Podman, {userns})"
    if uid == "0":
        return "root (UID 0), the owner of this checkout: files it writes are root's"
    return f"UID {uid}, the owner of this checkout: files it writes are yours"

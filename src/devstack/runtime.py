"""The one seam between the sessions and the container engine (Podman or Docker).

Everything that differs between engines lives in a `Runtime` subclass; callers never ask
which engine they have.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StackError

Log = Callable[[str], None]
OCI_REFUSAL = re.compile(r"\bOCI (runtime|permission)")

CA_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, Arch
)


def find_tool(name: str) -> str | None:
    """Find a tool beside the running interpreter (the host tools' venv: the pinned
    podman-compose and uv), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


@dataclass
class Container:
    """One container of a compose project, as the engine reports it."""

    service: str
    name: str
    state: str  # running, exited, created, ...
    ports: list[str]  # published, e.g. 127.0.0.1:8000->8000/tcp
    image: str = ""  # the image ID it was created from
    labels: dict[str, str] = field(default_factory=dict)
    id: str = ""


@dataclass
class Runtime:
    """A container engine and the compose tool that goes with it."""

    name: str
    engine: list[str]
    compose_tool: list[str]
    log: Log = field(default=print, repr=False)
    build_env: dict[str, str] = field(default_factory=dict)

    # --- running things -------------------------------------------------------------
    def run(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        capture: bool = False,
        check: bool = True,
        quiet: bool = False,
        input: bytes | None = None,
        timeout: float | None = None,
        cwd: Path | None = None,
        uninterrupted: bool = False,
    ) -> subprocess.CompletedProcess:
        """Run a command; `uninterrupted`: one that changes the engine's state, which Ctrl-C
        must not cut short (see finish_before_ctrl_c)."""
        if not quiet:
            self.log("$ " + shlex.join(_shortened(arg) for arg in args))  # paste-able
        try:
            with finish_before_ctrl_c(args) if uninterrupted else nullcontext():
                result = subprocess.run(
                    list(args),
                    env=dict(env) if env is not None else None,
                    capture_output=capture,
                    input=input,
                    stdin=subprocess.DEVNULL if uninterrupted and input is None else None,
                    timeout=timeout,
                    cwd=cwd,
                    start_new_session=uninterrupted,  # the terminal's Ctrl-C does not reach it
                )
        except FileNotFoundError:
            raise StackError(f"{args[0]} is not installed or not on PATH") from None
        except subprocess.TimeoutExpired:
            raise StackError(
                f"`{' '.join(args[:4])} ...` did not finish within {timeout:g}s "
                "(its output is above, or in `nox -s logs`)"
            ) from None
        if check and result.returncode != 0:
            raise self.failure(args, result)
        return result

    @staticmethod
    def failure(args: Sequence[str], result: subprocess.CompletedProcess) -> StackError:
        """A failed command as one line: what ran, its exit code, its last line if captured."""
        tail = (result.stderr or result.stdout or b"").decode(errors="replace").strip()
        detail = f": {tail.splitlines()[-1]}" if tail else ""
        return StackError(
            f"`{' '.join(args[:4])} ...` failed with exit code {result.returncode}{detail}"
        )

    def engine_cmd(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run([*self.engine, *args], **kwargs)

    # No health-gated start or `up --wait` here, though Compose v2 and podman-compose 1.6 on
    # Podman >= 4.6 offer them: Podman without systemd never runs a healthcheck, so they wait
    # for ever there (seen on 5.4.2), and elsewhere cost a check interval on every `up`
    # (docs/runtimes.md). Stack.wait_ready probes the published ports on every engine.
    def compose(
        self, project: str, compose_file: Path, *args: str, env: Mapping[str, str], **kwargs
    ) -> subprocess.CompletedProcess:
        return self.run(
            [*self.compose_tool, "-p", project, "-f", str(compose_file), *args],
            env=env,
            cwd=compose_file.parent,
            **kwargs,
        )

    # --- images -----------------------------------------------------------------------
    def image_exists(self, image: str) -> bool:
        result = self.engine_cmd("image", "inspect", image, capture=True, check=False, quiet=True)
        return result.returncode == 0

    def image_facts(self, image: str) -> tuple[str | None, dict[str, str]]:
        """The image's ID and labels, from one inspect: (None, {}) when it does not exist."""
        result = self.engine_cmd(
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{json .Config.Labels}}",
            image,
            capture=True,
            check=False,
            quiet=True,
        )
        if result.returncode != 0 or not result.stdout.strip():
            return None, {}
        image_id, _, labels = result.stdout.decode().strip().partition(" ")
        return image_id.removeprefix("sha256:"), json.loads(labels or "null") or {}

    def pull(self, image: str, timeout: float = 300) -> bool:
        try:
            result = self.engine_cmd("pull", image, capture=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    def build(
        self,
        *,
        context: Path,
        containerfile: Path,
        tag: str,
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        ca_bundle: str | None = None,
        no_cache: bool = False,
    ) -> None:
        options = ["-t", tag, *(["--no-cache"] if no_cache else [])]
        if target:
            options += ["--target", target]
        for key, value in (build_args or {}).items():
            options += ["--build-arg", f"{key}={value}"]
        for key, value in (labels or {}).items():
            options += ["--label", f"{key}={value}"]
        if ca_bundle:
            # Trusted only during RUN steps (PIP_CERT / SSL_CERT_FILE): never in a layer.
            options += ["--secret", f"id=ca,src={ca_bundle}"]
        self.engine_cmd(
            "build",
            "-f",
            str(containerfile),
            *options,
            str(context),
            env={**os.environ, **self.build_env},
        )

    def import_rootfs(self, tarball: Path, tag: str, changes: Sequence[str]) -> None:
        args = ["import"]
        for change in changes:
            args += ["--change", change]
        with tarball.open("rb") as stream:
            self.log(f"$ {' '.join(self.engine)} import ... {tarball} {tag}")
            result = subprocess.run(
                [*self.engine, *args, "-", tag], stdin=stream, capture_output=True
            )
        if result.returncode != 0:
            raise StackError(
                f"importing {tarball} as {tag} failed: "
                f"{result.stderr.decode(errors='replace').strip()}"
            )

    def tag(self, image: str, new_name: str) -> None:
        self.engine_cmd("tag", image, new_name, quiet=True)

    # --- volumes and containers -----------------------------------------------------
    def volume_exists(self, name: str) -> bool:
        result = self.engine_cmd("volume", "inspect", name, capture=True, check=False, quiet=True)
        return result.returncode == 0

    def remove_volumes(self, names: Sequence[str]) -> None:
        existing = [name for name in names if self.volume_exists(name)]
        if existing:
            self.engine_cmd("volume", "rm", *existing, capture=True)

    info_format = "{{.ServerVersion}}"

    def check_working(self, *, chosen: bool = False) -> None:
        """Fail with one line when the engine is installed but cannot run containers
        (`chosen`: named by CONTAINER_RUNTIME, so there is no other engine to fall back to)."""
        result = self.engine_cmd(
            "info", "--format", self.info_format, capture=True, check=False, quiet=True
        )
        if result.returncode != 0:
            raise StackError(self.not_working_hint(_last_error_line(result)))
        self.read_info(result.stdout.decode().strip())

    def read_info(self, info: str) -> None:
        """What the engine said about itself (subclasses keep what they need)."""

    def not_working_hint(self, reason: str) -> str:
        return f"{self.name} is installed but not working ({reason})"

    # --- daily workflow (workflow.py, snapshots.py, bench.py) ----------------------------
    def containers(self, project: str | None = None, *, stopped: bool = True) -> list[Container]:
        """The compose project's containers (without a project: all of the engine's), from
        `inspect`; `stopped=False`: the running ones only."""
        ids = (
            self.engine_cmd(
                "ps", "-q", *_selection(project, stopped), capture=True, check=False, quiet=True
            )
            .stdout.decode()
            .split()
        )
        if not ids:
            return []
        result = self.engine_cmd("inspect", *ids, capture=True, check=False, quiet=True)
        found = []
        for item in json.loads(result.stdout or b"[]") or []:
            labels = (item.get("Config") or {}).get("Labels") or {}
            ports = [
                f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}->{inner}"
                for inner, bindings in sorted(
                    ((item.get("NetworkSettings") or {}).get("Ports") or {}).items()
                )
                for b in bindings or []
                if b.get("HostPort")
            ]
            found.append(
                Container(
                    service=labels.get("com.docker.compose.service", ""),
                    name=item.get("Name", "").lstrip("/"),
                    state=(item.get("State") or {}).get("Status", "unknown"),
                    ports=ports,
                    image=str(item.get("Image", "")).removeprefix("sha256:"),
                    labels=labels,
                    id=str(item.get("Id", "")),
                )
            )
        return found

    def compose_popen(
        self, project: str, compose_file: Path, *args: str, env: Mapping[str, str], **popen: object
    ) -> subprocess.Popen:
        """A compose command with its pipes open, so dumps stream instead of sitting in memory."""
        command = [*self.compose_tool, "-p", project, "-f", str(compose_file), *args]
        try:
            return subprocess.Popen(command, env=dict(env), cwd=compose_file.parent, **popen)
        except FileNotFoundError:
            raise StackError(f"{command[0]} is not installed or not on PATH") from None

    def remove_image(self, image: str) -> None:
        self.engine_cmd("rmi", image, capture=True, check=False, quiet=True)

    def image_id(self, image: str) -> str | None:
        return self.image_facts(image)[0]

    def app_user_env(self, uid: int, gid: int) -> dict[str, str]:
        """Compose variables that make the files the app writes into the tree belong to the
        tree's owner (`uid`:`gid`). A rootful engine keeps numeric IDs, so the app runs as
        that UID: the developer's, or root's for a tree root owns."""
        return {"APP_USER": f"{uid}:{gid}", "APP_USERNS": ""}

    def describe(self) -> str:
        return self.name

    @staticmethod
    def refusal(result: subprocess.CompletedProcess) -> str | None:
        """The engine's own reason for not starting a container (its OCI runtime refused:
        Podman's "OCI runtime error" / "OCI permission denied", Docker's "OCI runtime create
        failed"), from a captured command's output; None for any other failure."""
        output = (result.stderr or b"") + b"\n" + (result.stdout or b"")
        lines = output.decode(errors="replace").splitlines()
        found = [line.strip() for line in lines if OCI_REFUSAL.search(line)]
        return _shortened(found[-1].removeprefix("Error: "), 300) if found else None

    def repair_names(self, containers: Sequence[Container], probe_service: str) -> bool:
        """Make the running services' names resolve again inside their network; True if
        they do. Docker's DNS keeps a network's names whatever stops or starts."""
        return True


class Podman(Runtime):
    rootless: bool = False

    info_format = "{{.Host.Security.Rootless}}"

    def containers(self, project: str | None = None, *, stopped: bool = True) -> list[Container]:
        """Podman's `ps` JSON already holds what `inspect` would add: one call, not two."""
        listing = ("ps", "--format", "json", *_selection(project, stopped))
        result = self.engine_cmd(*listing, capture=True, check=False, quiet=True)
        if result.returncode != 0:
            raise StackError(self.not_working_hint(_last_error_line(result)))
        found = []
        for item in json.loads(result.stdout or b"[]") or []:
            labels = item.get("Labels") or {}
            ports = [
                f"{p.get('host_ip') or '0.0.0.0'}:{p['host_port'] + i}->"
                f"{p['container_port'] + i}/{p.get('protocol', 'tcp')}"
                for p in item.get("Ports") or []
                for i in range(p.get("range") or 1)
            ]
            names = item.get("Names") or [""]
            found.append(
                Container(
                    service=labels.get("com.docker.compose.service", ""),
                    name=names[0],
                    state=str(item.get("State", "unknown")),
                    ports=sorted(ports),
                    image=item.get("ImageID", ""),
                    labels=labels,
                    id=item.get("Id", ""),
                )
            )
        return found

    def check_working(self, *, chosen: bool = False) -> None:
        """A local engine is rootless exactly when we are not root, and `ps` proves it works
        in 0.03 s where `info` takes 0.4 s; a remote one (macOS, CONTAINER_HOST) is asked.
        When chosen by name, even `ps` waits: the first listing of containers checks."""
        remote = sys.platform != "linux" or any(
            os.environ.get(v) for v in ("CONTAINER_HOST", "CONTAINER_CONNECTION")
        )
        if remote:
            return super().check_working()
        if not chosen:
            result = self.engine_cmd("ps", "-q", capture=True, check=False, quiet=True)
            if result.returncode != 0:
                raise StackError(self.not_working_hint(_last_error_line(result)))
        self.read_info("true" if os.geteuid() != 0 else "false")

    def read_info(self, info: str) -> None:
        self.rootless = info == "true"
        if self.rootless:
            # buildah keeps cache mounts under $TMPDIR (default /var/tmp/buildah-cache, shared
            # with root, whose cache there this user cannot write): give the user's own.
            cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            tmp = cache / "djstack" / "buildah-tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            self.build_env.setdefault("TMPDIR", str(tmp))

    def app_user_env(self, uid: int, gid: int) -> dict[str, str]:
        if self.rootless:
            # The user's own ID appears as the image's UID 1001 inside (podman >= 4.3).
            return {"APP_USER": "1001:1001", "APP_USERNS": "keep-id:uid=1001,gid=1001"}
        return super().app_user_env(uid, gid)

    def describe(self) -> str:
        return "rootless podman" if self.rootless else "podman"

    def repair_names(self, containers: Sequence[Container], probe_service: str) -> bool:
        """aardvark-dns before 1.11 (Debian 12's Podman 4.3 has 1.4) restarts all its DNS
        listeners whenever any container stops or starts, and a listener that fails to come
        back leaves its whole network without names until the next change (rootful and
        rootless; containers/aardvark-dns#389, fixed by #449). `podman network reload` is such
        a change: ask the probe container to resolve another service, reload until it can."""
        running = [c for c in containers if c.state == "running"]
        probe = next((c for c in running if c.service == probe_service), None)
        others = [c.service for c in running if c is not probe]
        if probe is None or not others:
            return True
        getent = ["exec", probe.name, "getent", "hosts", others[0]]
        for reloads in range(6):
            lookup = self.engine_cmd(*getent, capture=True, check=False, quiet=True)
            if lookup.returncode != 2:  # 0: resolved; anything else: no getent to ask
                return True
            if reloads == 5:
                break
            if reloads == 0:
                self.log(
                    f"podman's DNS lost the names of {probe.name}'s network (aardvark-dns < 1.11"
                    " after a container stopped or started): reloading the network"
                )
                self.end_stale_dns_servers()
            self.engine_cmd("network", "reload", probe.name, capture=True, check=False, quiet=True)
        self.log(
            "the stack's names still do not resolve; see "
            "docs/troubleshooting.md#service-names-stop-resolving-podman-4"
        )
        return False

    def end_stale_dns_servers(self) -> None:
        """Rootless: every network of the account lives in one network namespace, and its
        one aardvark-dns serves them there. One that outlived that namespace (slirp4netns
        made a new one) answers nobody, yet `network reload` only signals it: end it, so that
        the reload starts one where the containers are. It serves no running network, so no
        other stack loses anything."""
        for pid in self.stale_dns_servers():
            self.log(
                f"aardvark-dns (PID {pid}) runs in a network namespace that is no longer rootless"
                " podman's, so no container reaches it: ending it"
            )
            _end_process(pid)

    def stale_dns_servers(self) -> list[int]:
        """This account's aardvark-dns processes outside the current rootless network
        namespace (none for rootful or remote Podman, whose DNS runs in the host's)."""
        if not self.rootless or sys.platform != "linux":
            return []
        current = self.engine_cmd(
            "unshare", "--rootless-netns", "readlink", "/proc/self/ns/net",
            capture=True, check=False, quiet=True,
        )  # fmt: skip
        if current.returncode != 0:  # a remote client has no `unshare`
            return []
        namespace = current.stdout.decode().strip()
        stale = []
        for process in Path("/proc").iterdir():
            try:
                if not process.name.isdigit() or process.stat().st_uid != os.getuid():
                    continue
                if (process / "comm").read_text().strip() != "aardvark-dns":
                    continue
                if os.readlink(process / "ns" / "net") != namespace:
                    stale.append(int(process.name))
            except OSError:  # ended meanwhile
                continue
        return stale

    def not_working_hint(self, reason: str) -> str:
        return (
            f"podman is installed but cannot run containers ({reason}); "
            "see docs/troubleshooting.md#podman-does-not-start"
        )


class Docker(Runtime):
    def not_working_hint(self, reason: str) -> str:
        return (
            f"docker cannot reach its daemon ({reason}); start it "
            "(`sudo systemctl start docker`, or open Docker Desktop) and retry"
        )


def _podman(log: Log) -> Runtime | None:
    engine = find_tool("podman")
    if not engine:
        return None
    compose = find_tool("podman-compose")
    return Podman("podman", [engine], [compose] if compose else [], log)


def _docker_can_buildkit(client: str) -> bool:
    """BuildKit (cache and secret mounts) needs buildx, or a client older than 23 with
    DOCKER_BUILDKIT=1; a newer client without buildx cannot build this Containerfile."""
    if subprocess.run([client, "buildx", "version"], capture_output=True).returncode == 0:
        return True
    version = subprocess.run([client, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)\.", version)
    return bool(match) and int(match.group(1)) < 23


def _docker(log: Log) -> Runtime | None:
    clients = list(
        dict.fromkeys(
            os.path.realpath(path)
            for folder in os.environ.get("PATH", "").split(os.pathsep)
            if os.access(path := os.path.join(folder, "docker"), os.X_OK)
        )
    )
    if not clients:
        return None
    engine = next((client for client in clients if _docker_can_buildkit(client)), None)
    if engine is None:
        raise StackError(
            f"the docker client ({clients[0]}) cannot build with BuildKit: install "
            "the buildx plugin (docker-buildx-plugin), then retry"
        )
    if subprocess.run([engine, "compose", "version"], capture_output=True).returncode == 0:
        compose = [engine, "compose"]
    elif find_tool("docker-compose"):
        compose = [find_tool("docker-compose")]  # legacy v1: still packaged by Debian 12
    else:
        compose = []
    # Engine < 23 builds with BuildKit only when asked to.
    return Docker("docker", [engine], compose, log, {"DOCKER_BUILDKIT": "1"})


FACTORIES: dict[str, Callable[[Log], Runtime | None]] = {"podman": _podman, "docker": _docker}
MISSING_COMPOSE = {
    "podman": "podman-compose is missing: `pip install podman-compose` (or run "
    "`python3 noxfile.py ...`, which installs it)",
    "docker": "docker has no compose tool: install the compose plugin (docker-compose-plugin) "
    "or docker-compose",
}


def _working(name: str, log: Log, *, chosen: bool = False) -> Runtime | None:
    runtime = FACTORIES[name](log)
    if runtime is None:
        return None
    if not runtime.compose_tool:
        raise StackError(MISSING_COMPOSE[name])
    runtime.check_working(chosen=chosen)
    return runtime


def detect(preferred: str | None = None, log: Log = print) -> Runtime:
    """The runtime named by CONTAINER_RUNTIME, else the first one installed and working."""
    if preferred:
        if preferred not in FACTORIES:
            raise StackError(
                f"CONTAINER_RUNTIME={preferred!r} is not supported: "
                f"use one of {', '.join(FACTORIES)}"
            )
        runtime = _working(preferred, log, chosen=True)
        if runtime is None:
            raise StackError(
                f"CONTAINER_RUNTIME={preferred} but {preferred} is not installed; "
                "install it (see docs/runtimes.md) or choose another runtime"
            )
        return runtime
    problems = []
    for name in FACTORIES:
        try:
            runtime = _working(name, log)
        except StackError as exc:
            problems.append(str(exc))
            continue
        if runtime is not None:
            return runtime
    if problems:
        raise StackError("; ".join(problems))
    raise StackError(
        "no container runtime found: install Podman or Docker (see docs/runtimes.md), then retry"
    )


def other_engines(current: Runtime) -> list[Runtime]:
    """Other engines this user can reach (to copy images from instead of rebuilding)."""
    others = []
    for name, factory in FACTORIES.items():
        if name == current.name:
            continue
        try:
            runtime = factory(current.log)
            if runtime is not None:
                runtime.check_working()
                others.append(runtime)
        except StackError:
            continue
    return others


def invoking_user() -> tuple[int, int]:
    """The developer's IDs: under sudo, the user who ran sudo rather than root."""
    if os.getuid() == 0 and os.environ.get("SUDO_UID", "").isdigit():
        return int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", os.environ["SUDO_UID"]))
    return os.getuid(), os.getgid()


@contextmanager
def finish_before_ctrl_c(args: Sequence[str]) -> Iterator[None]:
    """Ctrl-C during the block ends the session once the block is done. A terminal sends it
    to every process of the session: podman, and the netavark it runs, killed half-way
    through a `start` leave a container that cannot start and firewall rules that send the
    stack's ports nowhere until deleted by hand. So the command runs in a session of its own
    (`start_new_session`), and nox waits for it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    pressed: list[int] = []

    def defer(signum: int, frame: object) -> None:
        if not pressed:
            shown = shlex.join([Path(args[0]).name, *args[1:]])
            shown = shown if len(shown) <= 90 else shown[:87] + "..."
            print(f"Ctrl-C: finishing `{shown}` first", file=sys.stderr)
        pressed.append(signum)

    previous = signal.signal(signal.SIGINT, defer)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def _end_process(pid: int, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; returns once the process is gone and
    reaped (netavark takes a zombie for a running aardvark-dns), or after the second grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.02)


def _selection(project: str | None, stopped: bool) -> list[str]:
    """`ps` options: the project's containers (else all), stopped ones too or not."""
    ours = ["--filter", f"label=com.docker.compose.project={project}"] if project else []
    return ["-a", *ours] if stopped else ours


def _shortened(arg: str, longest: int = 100) -> str:
    """An argument as logged: a long one (the dependency seed, ...) cut, with its length."""
    return arg if len(arg) <= longest else f"{arg[: longest - 30]}... ({len(arg)} characters)"


def _last_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no answer"


def ca_bundle_path(configured: str | None) -> str | None:
    """The CA bundle builds should trust (CA_BUNDLE, else the system's), if there is one."""
    if configured:
        if not Path(configured).is_file():
            raise StackError(
                f"CA_BUNDLE={configured} is not a file; point it at a PEM bundle or unset it"
            )
        return configured
    return next((path for path in CA_BUNDLE_CANDIDATES if Path(path).is_file()), None)

"""The one seam between the sessions and the container engine (Podman or Docker).

Everything that differs between engines lives in a `Runtime` subclass; callers never ask
which engine they have.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StackError

Log = Callable[[str], None]

CA_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, Arch
)


def _which(name: str) -> str | None:
    """Find a tool on PATH or beside the running interpreter (the tools venv of noxfile.py)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


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
    ) -> subprocess.CompletedProcess:
        if not quiet:
            self.log("$ " + " ".join(args))
        try:
            result = subprocess.run(
                list(args),
                env=dict(env) if env is not None else None,
                capture_output=capture,
                input=input,
                timeout=timeout,
                cwd=cwd,
            )
        except FileNotFoundError:
            raise StackError(f"{args[0]} is not installed or not on PATH") from None
        if check and result.returncode != 0:
            detail = ""
            if capture:
                tail = (result.stderr or result.stdout or b"").decode(errors="replace").strip()
                detail = f": {tail.splitlines()[-1]}" if tail else ""
            raise StackError(f"`{' '.join(args[:4])} ...` failed with exit code {result.returncode}{detail}")
        return result

    def engine_cmd(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run([*self.engine, *args], **kwargs)

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

    def image_label(self, image: str, label: str) -> str | None:
        result = self.engine_cmd(
            "image", "inspect", "--format", "{{json .Config.Labels}}", image,
            capture=True, check=False, quiet=True,
        )
        if result.returncode != 0:
            return None
        labels = json.loads(result.stdout or b"null") or {}
        return labels.get(label)

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
        build_args: Mapping[str, str] = {},
        labels: Mapping[str, str] = {},
        ca_bundle: str | None = None,
    ) -> None:
        args = ["build", "-f", str(containerfile), "-t", tag]
        if target:
            args += ["--target", target]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        if ca_bundle:
            # Trusted only during RUN steps (PIP_CERT / SSL_CERT_FILE): never in a layer.
            args += ["--secret", f"id=ca,src={ca_bundle}"]
        self.engine_cmd(*args, str(context), env={**os.environ, **self.build_env})

    def import_rootfs(self, tarball: Path, tag: str, changes: Sequence[str]) -> None:
        args = ["import"]
        for change in changes:
            args += ["--change", change]
        with tarball.open("rb") as stream:
            self.log(f"$ {' '.join(self.engine)} import ... {tarball} {tag}")
            result = subprocess.run([*self.engine, *args, "-", tag], stdin=stream,
                                    capture_output=True)
        if result.returncode != 0:
            raise StackError(f"importing {tarball} as {tag} failed: "
                             f"{result.stderr.decode(errors='replace').strip()}")

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

    service_label_format = '{{index .Labels "com.docker.compose.service"}}'

    def running_services(self, project: str) -> set[str]:
        """Services of the compose project that have a running container."""
        result = self.engine_cmd(
            "ps", "--filter", f"label=com.docker.compose.project={project}",
            "--format", self.service_label_format, capture=True, check=False, quiet=True,
        )
        return {line.strip() for line in result.stdout.decode().splitlines() if line.strip()}

    def check_working(self) -> None:
        """Fail with one line when the engine is installed but cannot run containers."""
        result = self.engine_cmd("info", capture=True, check=False, quiet=True)
        if result.returncode != 0:
            reason = result.stderr.decode(errors="replace").strip().splitlines()
            raise StackError(self.not_working_hint(reason[-1] if reason else "no answer"))

    def not_working_hint(self, reason: str) -> str:
        return f"{self.name} is installed but not working ({reason})"


class Podman(Runtime):
    def not_working_hint(self, reason: str) -> str:
        return (f"podman is installed but cannot run containers ({reason}); "
                "see docs/troubleshooting.md#podman-does-not-start")


class Docker(Runtime):
    service_label_format = '{{.Label "com.docker.compose.service"}}'

    def not_working_hint(self, reason: str) -> str:
        return (f"docker cannot reach its daemon ({reason}); start it "
                "(`sudo systemctl start docker`, or open Docker Desktop) and retry")


def _podman(log: Log) -> Runtime | None:
    engine = _which("podman")
    if not engine:
        return None
    compose = _which("podman-compose")
    if not compose:
        raise StackError("podman-compose is missing: `pip install podman-compose` "
                         "(or run `python3 noxfile.py ...`, which installs it)")
    return Podman("podman", [engine], [compose], log)


def _docker(log: Log) -> Runtime | None:
    engine = _which("docker")
    if not engine:
        return None
    probe = subprocess.run([engine, "compose", "version"], capture_output=True)
    if probe.returncode == 0:
        compose = [engine, "compose"]
    elif _which("docker-compose"):
        compose = [_which("docker-compose")]  # legacy v1: still packaged by Debian 12
    else:
        raise StackError("docker has no compose tool: install the compose plugin "
                         "(docker-compose-plugin) or docker-compose")
    # BuildKit is needed for cache and secret mounts; Engine < 23 does not default to it.
    return Docker("docker", [engine], compose, log,
                  {"DOCKER_BUILDKIT": "1", "COMPOSE_DOCKER_CLI_BUILD": "1"})


FACTORIES: dict[str, Callable[[Log], Runtime | None]] = {"podman": _podman, "docker": _docker}


def detect(preferred: str | None = None, log: Log = print) -> Runtime:
    """The runtime named by CONTAINER_RUNTIME, else the first one installed and working."""
    if preferred:
        if preferred not in FACTORIES:
            raise StackError(f"CONTAINER_RUNTIME={preferred!r} is not supported: "
                             f"use one of {', '.join(FACTORIES)}")
        runtime = FACTORIES[preferred](log)
        if runtime is None:
            raise StackError(f"CONTAINER_RUNTIME={preferred} but {preferred} is not installed; "
                             "install it (see docs/runtimes.md) or choose another runtime")
        runtime.check_working()
        return runtime
    problems = []
    for name, factory in FACTORIES.items():
        try:
            runtime = factory(log)
            if runtime is None:
                continue
            runtime.check_working()
            return runtime
        except StackError as exc:
            problems.append(str(exc))
    if problems:
        raise StackError("; ".join(problems))
    raise StackError("no container runtime found: install Podman or Docker "
                     "(see docs/runtimes.md), then retry")


def ca_bundle_path(configured: str | None) -> str | None:
    """The CA bundle builds should trust (CA_BUNDLE, else the system's), if there is one."""
    if configured:
        if not Path(configured).is_file():
            raise StackError(f"CA_BUNDLE={configured} is not a file; point it at a PEM bundle "
                             "or unset it")
        return configured
    return next((path for path in CA_BUNDLE_CANDIDATES if Path(path).is_file()), None)

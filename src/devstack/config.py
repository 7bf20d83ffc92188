"""The stack's configuration: defaults < .env < the process environment, validated early.

`.env` is read with python-dotenv, the parser podman-compose and docker-compose use, so the
sessions and the compose tool never read one file two ways. Values the tooling chooses by
itself (stand-in images, a port moved off a busy default, an adopted stack name) live in a
marked block at the end of `.env`, so a plain `podman-compose up` uses them too.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from .errors import StackError

OFFICIAL_IMAGES = {
    "PYTHON_IMAGE": "docker.io/library/python:3.13-slim",
    "POSTGRES_IMAGE": "docker.io/library/postgres:17",
    "REDIS_IMAGE": "docker.io/library/redis:8",
}

DEFAULTS: dict[str, str] = {
    "BIND_ADDRESS": "127.0.0.1",
    "APP_PORT": "8000",
    "DB_PORT": "5432",
    "REDIS_PORT": "6379",
    "POSTGRES_USER": "app",
    "POSTGRES_PASSWORD": "app",
    "POSTGRES_DB": "app",
    "PROD_PORT": "8001",
    "DEBUG_PORT": "5678",
    "UP_TIMEOUT": "180",
    **OFFICIAL_IMAGES,
}
# Follow the stack's name unless set: the checkout's directory, as compose derives a project
# name, and its image tags.
DERIVED = {"STACK_NAME", "APP_IMAGE", "PROD_IMAGE"}
LEGACY_STACK_NAME = "djstack"  # every checkout's name before names followed the checkout

# Variables read from the environment besides DEFAULTS (documented in docs/configuration.md).
OPTIONAL_KEYS = {
    "DATABASE_URL",
    "REDIS_URL",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "MIGRATE_ON_START",
    "DB_WAIT_TIMEOUT",
    "LOG_LEVEL",
    "WATCHFILES_FORCE_POLLING",
    "WATCHFILES_POLL_DELAY_MS",
    "DJANGO_SETTINGS_MODULE",
    "CONTAINER_RUNTIME",
    "CA_BUNDLE",
    "SNAPSHOT_DIR",
    "APP_USER",
    "APP_USERNS",
    "PROD_SECRET_KEY",
    "PROD_SSL_REDIRECT",
    "PROD_MEMORY",
    "PROD_CPUS",
    "WEB_CONCURRENCY",
    "API_THROTTLE_ANON",
    "API_THROTTLE_USER",
    "API_NUM_PROXIES",
    "DEBUGPY",
}
KNOWN_KEYS = set(DEFAULTS) | DERIVED | OPTIONAL_KEYS

# Published ports by service, and the variable that moves each one (the app's container
# publishes the debugger's port too).
PORT_VARIABLES = {
    "app": "APP_PORT",
    "db": "DB_PORT",
    "redis": "REDIS_PORT",
    "debugger": "DEBUG_PORT",
}
PROD_PORT_VARIABLES = {"web": "PROD_PORT"}

MANAGED_START = "# >>> written by nox: values it chose for this checkout (safe to delete) >>>"
MANAGED_END = "# <<< written by nox <<<"
# Earlier versions wrote only the stand-in images, under these markers.
LEGACY_MARKERS = (
    "# >>> stand-in images, written by `nox -s up` (no registry was reachable) >>>",
    "# <<< stand-in images <<<",
)

_BOOLEANS = {"1", "0", "true", "false", "yes", "no", "on", "off"}


def project_name(directory: Path) -> str:
    """The name compose gives a project in this directory: lower case, [a-z0-9_-] only."""
    name = re.sub(r"[^a-z0-9_-]", "", directory.name.lower()).lstrip("_-")
    return name or LEGACY_STACK_NAME


def image_tags(name: str) -> dict[str, str]:
    """The dev and prod image tags of a stack: each checkout builds its own."""
    return {"APP_IMAGE": f"localhost/{name}-app:dev", "PROD_IMAGE": f"localhost/{name}-app:prod"}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, parsed by python-dotenv; `KEY=` means "use the default". A key set
    both outside the tooling's block and in it has the value outside: the user's."""
    yours, block = env_file_parts(path)
    return {**block, **yours}


def env_file_parts(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(the user's values, the values in the tooling's block), each parsed by python-dotenv
    on its own lines; line numbers in a parse error are the file's."""
    lines = path.read_text().splitlines() if path.is_file() else []
    block = _block_lines(lines)
    # The other part's lines become comments: python-dotenv counts those, not blank lines.
    parts = (
        [("#" if number in block else line) for number, line in enumerate(lines)],
        [(line if number in block else "#") for number, line in enumerate(lines)],
    )
    return _parse(path, parts[0]), _parse(path, parts[1])


def _parse(path: Path, lines: list[str]) -> dict[str, str]:
    unparsed: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            unparsed.append(record.getMessage())

    logger, handler = logging.getLogger("dotenv.main"), Collect()
    logger.addHandler(handler)
    try:
        values = dotenv_values(stream=io.StringIO("\n".join(lines) + "\n"))
    finally:
        logger.removeHandler(handler)
    if unparsed:  # compose would skip the line with a warning: refuse instead
        raise StackError(f"{path.name}: {unparsed[0]}; write it as KEY=VALUE or delete it")
    return {key: value for key, value in values.items() if value}


def _block_lines(lines: list[str]) -> set[int]:
    """The numbers of the lines of the tooling's block, markers included (a block without
    its end marker runs to the end of the file)."""
    found, inside = set(), False
    for number, line in enumerate(lines):
        if line in (MANAGED_START, LEGACY_MARKERS[0]):
            inside = True
        if inside:
            found.add(number)
        if line in (MANAGED_END, LEGACY_MARKERS[1]):
            inside = False
    return found


def managed_keys(path: Path) -> set[str]:
    """The keys inside the block the tooling writes (its choices, which it may revise)."""
    return set(env_file_parts(path)[1])


def record_choices(path: Path, choices: Mapping[str, str]) -> None:
    """Write (or update) the tooling's block at the end of .env; every other line is kept.

    A key the user sets outside the block is theirs: its line in the block goes (compose
    tools, like python-dotenv, take the last line of a key, which would be the block's)."""
    lines = path.read_text().splitlines() if path.exists() else []
    block = _block_lines(lines)
    kept = {
        line.split("=", 1)[0].strip(): line
        for number, line in enumerate(lines)
        if number in block and "=" in line and not line.startswith("#")
    }
    lines = [line for number, line in enumerate(lines) if number not in block]
    kept.update({key: f"{key}={value}" for key, value in choices.items()})
    yours = _parse(path, lines)
    kept = {key: line for key, line in kept.items() if key not in yours}
    if kept:
        lines += [MANAGED_START, *kept.values(), MANAGED_END]
    partial = path.with_name(".env.partial")
    partial.write_text("".join(f"{line}\n" for line in lines))
    partial.replace(path)  # atomic: never a half-written .env


def _check(values: Mapping[str, str], origin: Mapping[str, str]) -> None:
    def fail(key: str, expected: str) -> StackError:
        return StackError(
            f"{key}={values[key]!r} (from {origin.get(key, 'defaults')}) "
            f"is not valid: expected {expected}"
        )

    for key in [*PORT_VARIABLES.values(), *PROD_PORT_VARIABLES.values()]:
        if not values[key].isdigit() or not 1 <= int(values[key]) <= 65535:
            raise fail(key, "a port number from 1 to 65535")
    try:
        ipaddress.ip_address(values["BIND_ADDRESS"])
    except ValueError:
        raise fail("BIND_ADDRESS", "an IP address such as 127.0.0.1") from None
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", values["STACK_NAME"]):
        raise fail("STACK_NAME", "lower-case letters, digits, - and _")
    if "DATABASE_URL" in values:
        url = urlsplit(values["DATABASE_URL"])
        if (
            url.scheme not in {"postgres", "postgresql", "pgsql"}
            or not url.hostname
            or not url.path.strip("/")
        ):
            raise fail("DATABASE_URL", "postgres://user:password@host:5432/name")
    if "REDIS_URL" in values and urlsplit(values["REDIS_URL"]).scheme not in {"redis", "rediss"}:
        raise fail("REDIS_URL", "redis://host:6379/0")
    for key in ("DEBUG", "MIGRATE_ON_START", "DEBUGPY"):
        if key in values and values[key].lower() not in _BOOLEANS:
            raise fail(key, "true or false")
    # watchfiles itself reads it: anything but "false" (0, no, off too) turns polling on.
    if values.get("WATCHFILES_FORCE_POLLING", "false").lower() not in {"true", "false"}:
        raise fail(
            "WATCHFILES_FORCE_POLLING", "true or false (watchfiles reads 0, no, off as true)"
        )
    for key in ("UP_TIMEOUT", "DB_WAIT_TIMEOUT"):
        if key in values and not values[key].isdigit():
            raise fail(key, "a number of seconds")
    if "WATCHFILES_POLL_DELAY_MS" in values and not values["WATCHFILES_POLL_DELAY_MS"].isdigit():
        raise fail("WATCHFILES_POLL_DELAY_MS", "a number of milliseconds")


@dataclass
class StackConfig:
    """Where the stack's files are and the values its compose file is interpolated with.

    `origin` says where each value came from: ".env", "nox" (the block the tooling writes
    into .env), "the environment" or "the session"; absent means the default."""

    root: Path
    values: dict[str, str]
    origin: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        root: Path,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> StackConfig:
        environ = os.environ if environ is None else environ
        yours, managed = env_file_parts(root / ".env")
        if yours.keys() & managed.keys():  # yours wins, for the compose tool too
            record_choices(root / ".env", {})
        from_environ = {k: v for k, v in environ.items() if k in KNOWN_KEYS and v}
        chosen = {**managed, **yours, **from_environ, **(overrides or {})}
        name = chosen.get("STACK_NAME") or project_name(root)
        origin = {
            **{k: "nox" for k in managed},
            **{k: ".env" for k in yours},
            **{k: "the environment" for k in from_environ},
            **{k: "the session" for k in overrides or {}},
        }
        # The image tags nox recorded follow the stack's name, which may have changed since.
        tags = image_tags(name)
        values = {**DEFAULTS, "STACK_NAME": name, **tags, **chosen}
        values.update({k: v for k, v in tags.items() if origin.get(k) == "nox"})
        _check(values, origin)
        return cls(root=root, values=values, origin=origin)

    def chosen_by_user(self, key: str) -> bool:
        """Set in .env (outside the tooling's block), the environment or the session."""
        return self.origin.get(key, "nox") != "nox"

    def record(self, choices: Mapping[str, str]) -> None:
        """Keep values the tooling chose: in .env's block, and in this configuration. A value
        you set in .env stays yours."""
        choices = {k: v for k, v in choices.items() if self.origin.get(k) != ".env"}
        record_choices(self.env_file, choices)
        self.values.update(choices)
        self.origin.update({key: "nox" for key in choices})

    def record_image_tags(self) -> None:
        """Name this checkout's image tags in .env's block, so that the compose tool alone
        runs this checkout's images, not compose.yaml's fixed fallback. Not for a stack named
        by the environment or the session (tests, verify, the production-like stack)."""
        if self.origin.get("STACK_NAME", "nox") not in {".env", "nox"}:
            return
        tags = {k: v for k, v in image_tags(self.project).items() if not self.chosen_by_user(k)}
        if tags.items() - env_file_parts(self.env_file)[1].items():
            self.record(tags)

    @property
    def project(self) -> str:
        return self.values["STACK_NAME"]

    @property
    def compose_file(self) -> Path:
        return self.root / "compose.yaml"

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    def port(self, service: str) -> int:
        return int(self.values[PORT_VARIABLES[service]])

    @property
    def host(self) -> str:
        address = self.values["BIND_ADDRESS"]
        return "127.0.0.1" if address in {"0.0.0.0", "::"} else address

    @property
    def app_url(self) -> str:
        return f"http://{self.host}:{self.port('app')}"

    def volume_names(self, project: str | None = None) -> list[str]:
        """Compose names a project's volumes `<project>_<volume>` (compose.yaml)."""
        return [
            f"{project or self.project}_{name}"
            for name in ("db-data", "redis-data", "static-data", "media-data")
        ]

    def compose_env(self) -> dict[str, str]:
        return {**os.environ, **self.values}

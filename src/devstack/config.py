"""The stack's configuration: defaults < .env < the process environment, validated early."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import StackError

OFFICIAL_IMAGES = {
    "PYTHON_IMAGE": "docker.io/library/python:3.13-slim",
    "POSTGRES_IMAGE": "docker.io/library/postgres:17",
    "REDIS_IMAGE": "docker.io/library/redis:8",
}

DEFAULTS: dict[str, str] = {
    "STACK_NAME": "djstack",
    "BIND_ADDRESS": "127.0.0.1",
    "APP_PORT": "8000",
    "DB_PORT": "5432",
    "REDIS_PORT": "6379",
    "POSTGRES_USER": "app",
    "POSTGRES_PASSWORD": "app",
    "POSTGRES_DB": "app",
    "APP_IMAGE": "localhost/djstack-app:dev",
    "PROD_IMAGE": "localhost/djstack-app:prod",
    "PROD_PORT": "8001",
    "UP_TIMEOUT": "180",
    **OFFICIAL_IMAGES,
}

# Variables read from the environment besides DEFAULTS (documented in docs/configuration.md).
OPTIONAL_KEYS = {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS",
                 "MIGRATE_ON_START", "DB_WAIT_TIMEOUT", "LOG_LEVEL", "WATCHFILES_FORCE_POLLING",
                 "DJANGO_SETTINGS_MODULE", "CONTAINER_RUNTIME", "CA_BUNDLE",
                 "SNAPSHOT_DIR", "APP_USER", "APP_USERNS", "PROD_SECRET_KEY",
                 "PROD_SSL_REDIRECT", "PROD_MEMORY", "PROD_CPUS", "WEB_CONCURRENCY"}
KNOWN_KEYS = set(DEFAULTS) | OPTIONAL_KEYS

# Published ports by service, and the variable that moves each one.
PORT_VARIABLES = {"app": "APP_PORT", "db": "DB_PORT", "redis": "REDIS_PORT"}
PROD_PORT_VARIABLES = {"web": "PROD_PORT"}

_BOOLEANS = {"1", "0", "true", "false", "yes", "no", "on", "off"}
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a .env file (KEY=VALUE, # comments, optional quotes) the way compose does."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise StackError(f"{path.name} line {number}: {line.strip()!r} is not KEY=VALUE; "
                             "fix it or delete the line")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)  # `KEY=value  # comment`, as compose reads it
        if value:  # `KEY=` means "use the default", as in .env.example
            values[key] = value
    return values


def _check(values: Mapping[str, str], origin: Mapping[str, str]) -> None:
    def fail(key: str, expected: str) -> StackError:
        return StackError(f"{key}={values[key]!r} (from {origin.get(key, 'defaults')}) "
                          f"is not valid: expected {expected}")

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
        if url.scheme not in {"postgres", "postgresql", "pgsql"} or not url.hostname or not url.path.strip("/"):
            raise fail("DATABASE_URL", "postgres://user:password@host:5432/name")
    if "REDIS_URL" in values and urlsplit(values["REDIS_URL"]).scheme not in {"redis", "rediss"}:
        raise fail("REDIS_URL", "redis://host:6379/0")
    for key in ("DEBUG", "MIGRATE_ON_START", "WATCHFILES_FORCE_POLLING"):
        if key in values and values[key].lower() not in _BOOLEANS:
            raise fail(key, "true or false")
    for key in ("UP_TIMEOUT", "DB_WAIT_TIMEOUT"):
        if key in values and not values[key].isdigit():
            raise fail(key, "a number of seconds")


@dataclass
class StackConfig:
    """Where the stack's files are and the values its compose file is interpolated with."""

    root: Path
    values: dict[str, str]
    origin: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path, environ: Mapping[str, str] | None = None,
             overrides: Mapping[str, str] | None = None) -> StackConfig:
        environ = os.environ if environ is None else environ
        env_file = read_env_file(root / ".env")
        from_environ = {k: v for k, v in environ.items() if k in KNOWN_KEYS}
        values = {**DEFAULTS, **env_file, **from_environ, **(overrides or {})}
        origin = {**{k: ".env" for k in env_file}, **{k: "the environment" for k in from_environ},
                  **{k: "the session" for k in overrides or {}}}
        _check(values, origin)
        return cls(root=root, values=values, origin=origin)

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

    def volume_names(self) -> list[str]:
        return [f"{self.project}_{name}" for name in
                ("db-data", "redis-data", "static-data", "media-data")]

    def compose_env(self) -> dict[str, str]:
        return {**os.environ, **self.values}

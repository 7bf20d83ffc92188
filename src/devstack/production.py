"""`nox -s prod`: the production image with PostgreSQL and Redis, hardened as in production.

Compose profile "prod" of the same compose.yaml: `web` (gunicorn, read-only root file
system, no capabilities, limits) and `migrate` (the one-shot migration step). It runs as its
own project (<STACK_NAME>-prod) with its own volumes, beside the development stack.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from .config import StackConfig
from .images import ensure_base_images, ensure_prod_image
from .net import free_port
from .runtime import Runtime
from .stack import Stack


def prod_config(source: StackConfig) -> StackConfig:
    """The developer's configuration, as its own project with ports of its own."""
    return StackConfig.load(
        source.root,
        overrides={
            "STACK_NAME": f"{source.project}-prod",
            "PROD_IMAGE": source.values["PROD_IMAGE"],
            "DB_PORT": str(free_port()),
            "REDIS_PORT": str(free_port()),
            "PROD_SECRET_KEY": source.values.get("PROD_SECRET_KEY") or secrets.token_urlsafe(50),
        },
    )


@dataclass
class ProdStack(Stack):
    services = ("db", "redis", "web")
    http_service = "web"
    port_variables = {"web": "PROD_PORT"}  # db and redis get free ports of their own
    image_variable = "PROD_IMAGE"

    @classmethod
    def for_checkout(cls, runtime: Runtime, source: StackConfig) -> ProdStack:
        return cls(runtime, prod_config(source))

    def compose(self, *args: str, **kwargs):
        return super().compose("--profile", "prod", *args, **kwargs)

    def build(self, *, force: bool = False) -> None:
        ensure_base_images(self.runtime, self.config)
        ensure_prod_image(self.runtime, self.config)

    def up(self) -> float:
        started = time.monotonic()
        self.preflight(self.containers())
        self.build()
        timeout = float(self.config.values["UP_TIMEOUT"])
        self.compose("up", "-d", "db", "redis", capture=True, uninterrupted=True)
        self.wait_ready(timeout, services=("db", "redis"))
        self.log("migrating (one-shot `migrate` service)")
        self.compose("run", "--rm", "-T", "--no-deps", "migrate")
        self.compose("up", "-d", "--no-deps", "web", capture=True, uninterrupted=True)
        self.recreate_if_stale("web")
        self.wait_ready(timeout, services=("web",))
        return time.monotonic() - started

    def down(self, *, volumes: bool = False) -> None:
        self.compose("down", *(["-v"] if volumes else []), capture=True, uninterrupted=True)
        if volumes:
            self.runtime.remove_volumes(self.config.volume_names())

    def urls(self) -> dict[str, str]:
        return {
            "App": f"{self.app_url}/",
            "Health": f"{self.app_url}/api/v1/health/",
            "API docs": f"{self.app_url}/api/v1/docs/",
        }

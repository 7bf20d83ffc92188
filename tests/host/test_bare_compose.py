"""`podman-compose up` (or docker compose) on its own, without Nox, brings up a working stack
once the images exist and .env names them (as `nox -s up` leaves it)."""

import os
import secrets
import shutil
import time
from pathlib import Path

import pytest

from devstack.config import PORT_VARIABLES, StackConfig
from devstack.isolated import IMAGE_VARIABLES, checkout_copy
from devstack.net import free_port, http
from devstack.runtime import detect

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir():
    copy = checkout_copy(ROOT, "djstack-bare-")
    yield copy
    shutil.rmtree(copy, ignore_errors=True)


def test_compose_tool_alone_serves_a_healthy_app(workdir):
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"))
    source = StackConfig.load(ROOT)
    if not runtime.image_exists(source.values["APP_IMAGE"]):
        pytest.fail(f"{source.values['APP_IMAGE']} is not built: run `nox -s build` first")
    name = f"djstack-bare-{secrets.token_hex(3)}"
    ports = {variable: free_port() for variable in PORT_VARIABLES.values()}
    lines = [
        f"STACK_NAME={name}",
        *(f"{k}={v}" for k, v in ports.items()),
        *(f"{k}={source.values[k]}" for k in IMAGE_VARIABLES),
    ]
    (workdir / ".env").write_text("\n".join(lines) + "\n")
    # Only the compose tool and the .env file: none of the tooling's variables.
    env = {k: v for k, v in os.environ.items() if k not in StackConfig.load(workdir).values}
    compose = [*runtime.compose_tool, "-p", name]
    try:
        runtime.run([*compose, "up", "-d"], env=env, cwd=workdir, capture=True)
        deadline = time.monotonic() + 120
        status, body = None, ""
        while time.monotonic() < deadline:
            status, body = http("GET", f"http://127.0.0.1:{ports['APP_PORT']}/api/v1/health/")
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, f"health never answered 200 (last: {status} {body})"
    finally:
        runtime.run([*compose, "down", "-v"], env=env, cwd=workdir, capture=True, check=False)
        runtime.remove_volumes(StackConfig.load(workdir).volume_names())

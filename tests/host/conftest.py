"""Tests of the host-side tooling (src/devstack), run by `nox -s tooling` on the host."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))


import os  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import pytest  # noqa: E402

from devstack.config import PORT_VARIABLES, StackConfig  # noqa: E402
from devstack.isolated import IMAGE_VARIABLES, isolated_overrides  # noqa: E402
from devstack.runtime import detect  # noqa: E402
from devstack.stack import Stack  # noqa: E402


@pytest.fixture(scope="module")
def isolated_stack(request, tmp_path_factory):
    """A real stack of its own for one test module: its own name, volumes, free ports and
    snapshot directory, started from the checkout's images and removed afterwards, volumes
    included. Never the developer's stack."""
    source = StackConfig.load(ROOT)
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    overrides = isolated_overrides(
        source,
        f"djstack-wf-{module}-{secrets.token_hex(3)}",
        SNAPSHOT_DIR=str(tmp_path_factory.mktemp("snapshots")),
    )
    config = StackConfig.load(ROOT, overrides=overrides)
    stack = Stack(detect(os.environ.get("CONTAINER_RUNTIME")), config)
    if not stack.runtime.image_exists(config.values["APP_IMAGE"]):
        stack.build()  # built once for the checkout, reused by every later stack
    try:
        start(stack)
        yield stack
    finally:
        stack.compose("down", capture=True, check=False, quiet=True)
        stack.runtime.remove_volumes(config.volume_names())


def start(stack: Stack) -> None:
    """Start the stack's containers from existing images and wait until every service answers."""
    stack.preflight(stack.containers())
    stack.compose("up", "-d", capture=True, quiet=True)
    stack.wait_ready(timeout=180)


def session_env(stack: Stack) -> dict[str, str]:
    """The environment that points `nox -s ...` at this stack instead of the developer's."""
    keys = (
        "STACK_NAME",
        "BIND_ADDRESS",
        "SNAPSHOT_DIR",
        *PORT_VARIABLES.values(),
        *IMAGE_VARIABLES,
    )
    return {**os.environ, **{key: stack.config.values[key] for key in keys}}


def nox_command(*args: str) -> list[str]:
    """`nox <args>` with the checkout's noxfile, as a developer types it."""
    return [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), *args]


def nox(stack: Stack, *args: str, input: str = "", env: dict[str, str] | None = None):
    """Run `nox -s ...` from the checkout against the isolated stack, as a developer would."""
    return subprocess.run(
        nox_command(*args),
        env={**session_env(stack), **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        input=input,
        cwd=ROOT,
    )


def ctrl_c(stack: Stack, *args: str, after: float) -> str:
    """Run `nox <args>` against the stack and press Ctrl-C `after` seconds into the session,
    as a terminal does it (SIGINT to the whole process group); its output. Counted from nox's
    "Running session" line: a Ctrl-C while Python still imports nox itself (0.2 s in, on a
    busy machine) is nox's own traceback, before any code of ours runs."""
    process = subprocess.Popen(
        nox_command(*args),
        env=session_env(stack),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    before = []
    for line in process.stdout:
        before.append(line)
        if "Running session" in line:
            break
    time.sleep(after)
    os.killpg(process.pid, signal.SIGINT)
    return "".join(before) + process.communicate(timeout=120)[0]


def history_bytes(text: str) -> int:
    """A history size: raw bytes (docker -H=false) or "59.3 MB" (podman 4; podman 5 "97.8kB"):
    podman always prints units."""
    number, unit = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]*)", text.strip()).groups()
    scale = {"": 1, "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    return int(float(number) * scale)


def added_bytes(runtime, image: str, base: str) -> int:
    """Bytes the image's own layers add on top of its base (from both histories)."""

    def sizes(name: str) -> list[int]:
        result = runtime.engine_cmd(
            "history", "-H=false", "--format", "{{.Size}}", name, capture=True, quiet=True
        )
        return [history_bytes(line) for line in result.stdout.decode().splitlines() if line.strip()]

    own, inherited = sizes(image), sizes(base)
    return sum(own[: len(own) - len(inherited)])  # newest first: the rows above the base


@contextmanager
def production_stack(runtime, name: str):
    """The checkout's prod image as a production-like stack of its own (its own name,
    volumes and free ports), up; removed afterwards with its volumes."""
    from devstack.net import free_port
    from devstack.production import ProdStack

    source = StackConfig.load(ROOT)
    stack = ProdStack(
        runtime,
        StackConfig.load(
            ROOT,
            overrides={
                "STACK_NAME": f"{name}-{secrets.token_hex(3)}",
                "PROD_IMAGE": source.values["PROD_IMAGE"],
                "PROD_PORT": str(free_port()),
                "DB_PORT": str(free_port()),
                "REDIS_PORT": str(free_port()),
                "PROD_SECRET_KEY": secrets.token_urlsafe(50),
            },
        ),
    )
    try:
        stack.up()
        yield stack
    finally:
        stack.down(volumes=True)

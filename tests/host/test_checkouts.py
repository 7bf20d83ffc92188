"""Off the tested path: two checkouts of the project side by side on one engine, nox
installed on its own, and a session that meets something unexpected."""

import os
import secrets
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT

from devstack.config import MANAGED_END, MANAGED_START, StackConfig, project_name
from devstack.isolated import checkout_copy
from devstack.net import http, poll
from devstack.runtime import detect
from devstack.stack import checkout_of

PASSED_ON = ("CONTAINER_RUNTIME", "PYTHON_IMAGE", "POSTGRES_IMAGE", "REDIS_IMAGE", "CA_BUNDLE")


def developer_env(**extra: str) -> dict[str, str]:
    """The environment a developer's shell has: none of the stack's variables but the
    runtime and the base images (.env names the stand-ins where there are any)."""
    known = StackConfig.load(ROOT).values
    env = {k: v for k, v in os.environ.items() if k not in known or k in PASSED_ON}
    return {**env, **extra}


def nox_in(checkout: Path, *args: str, nox: str | None = None, env=None):
    command = [nox] if nox else [sys.executable, "-m", "nox"]
    return subprocess.run(
        [*command, "-f", str(checkout / "noxfile.py"), *args],
        env=env or developer_env(),
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=900,
    )


def serve_token(checkout: Path, token: str) -> None:
    urls = checkout / "src" / "config" / "urls.py"
    urls.write_text(
        urls.read_text()
        + (
            "\nfrom django.http import HttpResponse as _Token\n"
            f"urlpatterns.append(path('__checkout__/', lambda request: _Token('{token}')))\n"
        )
    )


@pytest.fixture(autouse=True)
def no_stack_left_behind(tmp_path):
    """Whatever a test here does, or fails at: no stack made from a checkout under its
    tmp_path outlives it (once that checkout is gone, no `nox -s clean` can see it)."""
    yield
    left = remove_stacks_made_under(tmp_path)
    assert not left, f"the test left stacks behind (now removed): {', '.join(left)}"


def remove_stacks_made_under(directory: Path) -> list[str]:
    """Remove, volumes included, the stacks whose containers were made from a checkout in
    `directory`; returns their names."""
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"), log=lambda _: None)
    under = os.path.realpath(directory) + os.sep
    stacks = sorted(
        {
            c.labels.get("com.docker.compose.project", "")
            for c in runtime.containers()
            if os.path.realpath(checkout_of(c) or "/").startswith(under)
        }
        - {""}
    )
    for name in stacks:
        config = StackConfig.load(ROOT, environ={}, overrides={"STACK_NAME": name})
        down = ("down", "-t", "0")
        runtime.compose(name, config.compose_file, *down, env=config.compose_env(), capture=True)
        runtime.remove_volumes(config.volume_names())
    return stacks


def test_a_copy_leaves_the_lines_naming_this_checkouts_stack_behind(tmp_path):
    """Verify, bench and the tests run in copies of the checkout: a copy is another
    checkout, so .env's stack name, image tags and ports (yours or nox's) stay here, or a
    second checkout's copies (`shop-2`) would claim its name and ports, or `shop-2-2`."""
    source = tmp_path / "shop"
    source.mkdir()
    (source / ".env").write_text(
        "STACK_NAME=mine\nexport APP_PORT=8011\nLOG_LEVEL=DEBUG\n"
        f"{MANAGED_START}\nSTACK_NAME=shop-2\nDB_PORT=5434\nAPP_IMAGE=localhost/shop-2-app:dev\n"
        f"PYTHON_IMAGE=localhost/djstack-standin/python:3.13-slim\n{MANAGED_END}\n"
    )
    copy = checkout_copy(source, "djstack-copied-")
    try:
        config = StackConfig.load(copy, environ={})
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    assert config.project == project_name(copy) and not config.chosen_by_user("STACK_NAME")
    assert config.values["APP_IMAGE"] == f"localhost/{project_name(copy)}-app:dev"
    assert (config.port("app"), config.port("db")) == (8000, 5432)
    assert config.values["LOG_LEVEL"] == "DEBUG"  # your other settings go along
    assert config.values["PYTHON_IMAGE"] == "localhost/djstack-standin/python:3.13-slim"


@pytest.fixture
def twins(tmp_path):
    """Two copies of the checkout in directories of the same name, so that compose would
    derive the same project name for both; the image the checkout built is reused, under
    the tags of the twins' stacks."""
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"), log=lambda _: None)
    tags = [f"localhost/djstack-twin{suffix}-app:dev" for suffix in ("", "-2")]
    for tag in tags:
        runtime.tag(StackConfig.load(ROOT).values["APP_IMAGE"], tag)
    copies = []
    for side in ("first", "second"):
        copy = checkout_copy(ROOT, f"djstack-{side}-")
        shutil.copy2(ROOT / "noxfile.py", copy / "noxfile.py")
        twin = tmp_path / side / "djstack-twin"
        twin.parent.mkdir()
        shutil.move(copy, twin)
        copies.append(twin)
    env = developer_env()
    yield copies, env
    for copy in copies:
        nox_in(copy, "-s", "clean", "--", "--yes", env=env)
    for tag in tags:
        runtime.remove_image(tag)


def test_two_checkouts_run_side_by_side_each_serving_its_own_tree(twins):
    (first, second), env = twins
    for checkout in (first, second):
        result = nox_in(checkout, "-s", "up", env=env)
        assert result.returncode == 0, result.stderr
    configs = [StackConfig.load(checkout, environ=env) for checkout in (first, second)]
    assert configs[0].project == "djstack-twin"
    assert configs[1].project == "djstack-twin-2"  # the same directory name, another stack
    assert "STACK_NAME=djstack-twin-2" in (second / ".env").read_text()
    # `podman-compose up` on its own runs each checkout's image, not the other's
    assert "APP_IMAGE=localhost/djstack-twin-2-app:dev" in (second / ".env").read_text()
    assert configs[0].app_url != configs[1].app_url  # a busy default port moved, and stays
    tokens = [secrets.token_hex(6) for _ in configs]
    for checkout, token in zip((first, second), tokens, strict=True):
        serve_token(checkout, token)
    for config, token in zip(configs, tokens, strict=True):
        url = f"{config.app_url}/__checkout__/"
        ok, seen, _ = poll(lambda url=url, token=token: _answers(url, token), 60)
        assert ok, f"{config.project} does not serve its own tree: {seen}"
    down = nox_in(second, "-s", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert http("GET", f"{configs[0].app_url}/api/v1/health/")[0] == 200
    assert http("GET", f"{configs[1].app_url}/api/v1/health/")[0] is None
    again = nox_in(second, "-s", "up", env=env)  # the recorded name and ports are kept
    assert again.returncode == 0, again.stderr
    assert configs[1].app_url in again.stderr


def _answers(url: str, token: str) -> tuple[bool, str]:
    status, body = http("GET", url)
    return status == 200 and body == token, f"{status} {body[:80]}"


def test_nox_installed_on_its_own_brings_the_tools_the_sessions_need(tmp_path):
    """`pipx install nox`, or nox alone in a venv: the noxfile installs podman-compose & co.
    into the checkout's .nox/_tools once, then runs the session with them."""
    alone = tmp_path / "nox-alone"
    venv.EnvBuilder(with_pip=True).create(alone)
    nox_requirement = next(r for r in _host_group() if r.startswith("nox"))
    subprocess.run([alone / "bin" / "pip", "install", "-q", nox_requirement], check=True)
    checkout = checkout_copy(ROOT, "djstack-nox-alone-")
    try:
        shutil.copy2(ROOT / "noxfile.py", checkout / "noxfile.py")
        env = {k: v for k, v in developer_env().items() if k != "VIRTUAL_ENV"}
        env["PATH"] = os.pathsep.join(
            p for p in env["PATH"].split(os.pathsep) if not Path(p, "podman-compose").exists()
        )
        result = nox_in(checkout, "-s", "status", nox=str(alone / "bin" / "nox"), env=env)
        assert result.returncode == 0, result.stderr
        assert "installing nox" in result.stderr and "stack djstack-nox-alone" in result.stdout
        assert (checkout / ".nox" / "_tools" / "bin" / "podman-compose").exists()
        again = nox_in(checkout, "-s", "status", nox=str(alone / "bin" / "nox"), env=env)
        assert again.returncode == 0 and "installing" not in again.stderr  # once only
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


def _host_group() -> list[str]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["host"]


def test_an_unexpected_failure_ends_in_one_line_naming_the_full_traceback(tmp_path):
    """An engine that answers nonsense: the session says what failed and where the
    traceback is, and prints no traceback."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "podman").write_text("#!/bin/sh\necho 'this is not JSON'\n")
    (fake / "podman").chmod(0o755)
    checkout = checkout_copy(ROOT, "djstack-nonsense-")
    try:
        shutil.copy2(ROOT / "noxfile.py", checkout / "noxfile.py")
        env = developer_env(
            CONTAINER_RUNTIME="podman", PATH=f"{fake}{os.pathsep}{os.environ['PATH']}"
        )
        result = nox_in(checkout, "-s", "status", env=env)
    finally:
        log = checkout / ".nox" / "last-error.log"
        traceback = log.read_text() if log.exists() else ""
        shutil.rmtree(checkout, ignore_errors=True)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = next(line for line in result.stderr.splitlines() if "failed unexpectedly" in line)
    assert "JSONDecodeError" in line and "last-error.log" in line
    assert "Traceback (most recent call last)" in traceback


def test_a_moved_and_renamed_checkout_finds_its_data_again(tmp_path):
    """`mv shop shop-renamed`: the stack follows the directory's name, so `up` makes a new,
    empty one; it names the stack left behind, and STACK_NAME brings its data back."""
    token = secrets.token_hex(3)
    image = StackConfig.load(ROOT).values["APP_IMAGE"]
    env = developer_env(APP_IMAGE=image)
    before = tmp_path / "before" / f"djstack-moving-{token}"
    after = tmp_path / "after" / f"djstack-moved-{token}"
    copy = checkout_copy(ROOT, "djstack-moving-")
    shutil.copy2(ROOT / "noxfile.py", copy / "noxfile.py")
    before.parent.mkdir()
    after.parent.mkdir()
    shutil.move(copy, before)
    old_stack = before.name
    try:
        assert nox_in(before, "-s", "up", env=env).returncode == 0
        url = StackConfig.load(before, environ=env).app_url
        status, body = http("POST", f"{url}/api/v1/notes/", {"title": "before the move"})
        assert status == 201, body
        assert nox_in(before, "-s", "down", env=env).returncode == 0
        shutil.move(before, after)

        fresh = nox_in(after, "-s", "up", env=env)
        assert fresh.returncode == 0, fresh.stderr
        assert "Traceback" not in fresh.stderr
        assert f"note: the checkouts of stack {old_stack}" in fresh.stderr
        with (after / ".env").open("a") as env_file:
            env_file.write(f"STACK_NAME={old_stack}\n")
        again = nox_in(after, "-s", "up", env=env)
        assert again.returncode == 0, again.stderr
        assert f"stack {old_stack} was made from {before}, which no longer exists" in again.stderr
        url = StackConfig.load(after, environ=env).app_url
        status, body = http("GET", f"{url}/api/v1/notes/")
        assert status == 200 and "before the move" in body, body
    finally:
        for stack in (old_stack, after.name):
            checkout = after if after.exists() else before
            nox_in(checkout, "-s", "clean", "--", "--yes", env={**env, "STACK_NAME": stack})

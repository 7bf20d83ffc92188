"""The runtime seam, against the engines really installed on this machine."""

import os
import secrets
import socket

import pytest
from conftest import ROOT

from devstack import runtime as runtime_module
from devstack.config import PORT_VARIABLES, StackConfig
from devstack.errors import StackError
from devstack.net import free_port
from devstack.runtime import detect
from devstack.stack import Stack, published_ports


@pytest.fixture
def empty_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(runtime_module.sys, "executable", str(tmp_path / "python"))


@pytest.fixture
def only_these_tools(tmp_path, empty_path):
    """PATH holds nothing but the shell scripts given, by name: engines that misbehave."""

    def write(**scripts: str) -> None:
        for name, body in scripts.items():
            (tmp_path / name).write_text("#!/bin/sh\n" + body)
            (tmp_path / name).chmod(0o755)

    return write


def test_no_runtime_at_all_is_one_clear_line(empty_path):
    with pytest.raises(StackError, match=r"^no container runtime found: install Podman or Docker"):
        detect(None)


def test_unknown_runtime_name_lists_the_choices():
    with pytest.raises(
        StackError, match=r"CONTAINER_RUNTIME='lxc' is not supported: use one of podman, docker"
    ):
        detect("lxc")


def test_chosen_runtime_not_installed_names_it(empty_path):
    with pytest.raises(StackError, match=r"CONTAINER_RUNTIME=podman but podman is not installed"):
        detect("podman")


def test_podman_without_podman_compose_says_what_to_install(only_these_tools):
    only_these_tools(podman="exit 0\n")
    with pytest.raises(
        StackError, match=r"podman-compose is missing: `pip install podman-compose`"
    ):
        detect("podman")


def test_engine_that_cannot_run_containers_is_reported(only_these_tools):
    only_these_tools(
        docker='case "$1" in compose|buildx) exit 0;; esac\n'
        "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' >&2\n"
        "exit 1\n"
    )
    with pytest.raises(StackError, match=r"docker cannot reach its daemon \(Cannot connect"):
        detect("docker")


def test_podman_that_cannot_list_containers_is_reported(only_these_tools):
    only_these_tools(
        podman="echo 'Error: stat /var/lib/containers: permission denied' >&2\nexit 125\n",
        **{"podman-compose": "exit 0\n"},
    )
    expected = r"podman is installed but cannot run containers \(Error: stat /var/lib/containers"
    with pytest.raises(StackError, match=expected):  # detected: probed at once
        detect(None)
    chosen = detect("podman")  # named: the first listing of containers says the same
    with pytest.raises(StackError, match=expected):
        chosen.containers("djstack")


def test_the_installed_runtime_is_detected_and_works():
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"))
    assert runtime.name in {"podman", "docker"}
    assert runtime.engine_cmd("info", capture=True, quiet=True).returncode == 0


@pytest.fixture
def stack_with_port(tmp_path):
    """A throwaway stack's config with `variable` set to `port` and the other ports free."""

    def make(variable: str, port: int) -> Stack:
        free = {name: str(free_port()) for name in PORT_VARIABLES.values() if name != variable}
        config = StackConfig.load(
            tmp_path,
            environ={},
            overrides={"STACK_NAME": "djstack-preflight-test", variable: str(port), **free},
        )
        return Stack(detect(os.environ.get("CONTAINER_RUNTIME")), config)

    return make


def test_port_taken_by_another_program_is_named_with_its_variable(stack_with_port):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(StackError) as error:
            stack_with_port("DB_PORT", port).preflight({})
    assert str(error.value).startswith(f"port {port} on 127.0.0.1 is already in use")
    assert "set DB_PORT=<free port> in .env" in str(error.value)


def test_port_another_container_publishes_is_named_with_the_container(stack_with_port):
    """The engine's own list counts, not only a host socket: rootful Podman forwards with a
    firewall rule that outlives the socket when its conmon is killed (a CI run met one)."""
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"))
    port, name = free_port(), f"djstack-squatter-{secrets.token_hex(3)}"
    redis = StackConfig.load(ROOT).values["REDIS_IMAGE"]
    runtime.engine_cmd(
        "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:6379", redis, quiet=True
    )
    try:
        publishing = [c.name for c in runtime.containers() if port in published_ports(c)]
        assert publishing == [name]
        with pytest.raises(StackError) as error:
            stack_with_port("REDIS_PORT", port).preflight({})
    finally:
        runtime.engine_cmd("rm", "-f", name, capture=True, check=False, quiet=True)
    assert str(error.value).startswith(
        f"port {port} on 127.0.0.1 is already published by container {name}, so the redis"
    )


def test_docker_client_without_buildkit_says_to_install_buildx(only_these_tools):
    only_these_tools(
        docker="[ \"$1\" = --version ] && echo 'Docker version 28.2.2, build x' && exit 0\n"
        'echo "docker: unknown command: docker $1" >&2; exit 1\n'
    )
    with pytest.raises(StackError, match=r"cannot build with BuildKit: install the buildx plugin"):
        detect("docker")

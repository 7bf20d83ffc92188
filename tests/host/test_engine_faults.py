"""Faults of the engine itself, set up by hand against a real, isolated stack: containers
made while the engine's configuration was wrong, and (rootless Podman 4) a DNS server left
in a network namespace that is gone."""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import nox

from devstack.net import http

# More open files than the kernel allows any process (fs.nr_open), so the OCI runtime
# refuses them even with CAP_SYS_RESOURCE (a privileged, nested engine has it).
NR_OPEN = int(open("/proc/sys/fs/nr_open").read())


def broken_engine_conf(runtime, tmp_path) -> str:
    """A containers.conf asking for ulimits the host refuses ("error setting rlimits"), as a
    fresh machine's defaults did; the engine's own OCI runtime, since CONTAINERS_CONF stands
    in for every other containers.conf."""
    oci = output(runtime, "info", "--format", "{{.Host.OCIRuntime.Name}}")
    path = tmp_path / "containers.conf"
    path.write_text(
        f'[containers]\ndefault_ulimits = ["nofile={NR_OPEN + 1}:{NR_OPEN + 1}"]\n'
        f'[engine]\nruntime = "{oci}"\n'
    )
    return str(path)


def made_under(stack, conf: str) -> None:
    """The stack's containers made again while the engine used `conf`: their start fails."""
    env = {**stack.compose_env(), "CONTAINERS_CONF": conf}
    made = stack.runtime.compose(
        stack.config.project,
        stack.config.compose_file,
        "up",
        "-d",
        "--force-recreate",
        env=env,
        capture=True,
        check=False,
        quiet=True,
    )
    assert made.returncode != 0 and stack.runtime.refusal(made), made.stderr.decode()
    states = {c.service: c.state for c in stack.runtime.containers(stack.config.project)}
    assert set(states) == set(stack.services) and "running" not in states.values(), states


@pytest.fixture
def podman_conf(isolated_stack, tmp_path):
    if isolated_stack.runtime.name != "podman":
        pytest.skip("CONTAINERS_CONF configures one Podman command; Docker's daemon is global")
    return broken_engine_conf(isolated_stack.runtime, tmp_path)


def test_a_start_the_engine_still_refuses_after_one_recreate_names_clean(
    isolated_stack, podman_conf
):
    """The engine stays misconfigured: `up` makes the containers again once, then ends in
    one line naming the fix and `nox -s clean`, which keeps the volumes."""
    runtime, project = isolated_stack.runtime, isolated_stack.config.project
    assert nox(isolated_stack, "-s", "down").returncode == 0
    made_under(isolated_stack, podman_conf)
    before = {c.service: c.id for c in runtime.containers(project)}
    try:
        up = nox(isolated_stack, "-s", "up", env={"CONTAINERS_CONF": podman_conf})
        assert up.returncode != 0
        assert "Traceback" not in up.stderr, up.stderr
        assert up.stderr.count("making them again") == 1, up.stderr
        last = up.stderr.strip().splitlines()[-1]
        assert "rlimit" in last.lower(), last  # the OCI runtime's own reason
        assert "`nox -s clean` (answer no: the volumes and their data stay)" in last, last
        after = {c.service: c.id for c in runtime.containers(project)}
        assert all(after[s] != before[s] for s in before), "not made again"
        assert all(runtime.volume_exists(v) for v in isolated_stack.config.volume_names())
    finally:
        assert nox(isolated_stack, "-s", "up").returncode == 0


def test_containers_made_under_a_broken_engine_are_made_again_once_it_is_fixed(
    isolated_stack, podman_conf
):
    """A fresh machine's first `up` made every container, and the OCI runtime refused to
    start them (ulimits the host does not allow). The engine's configuration was fixed, but
    a container keeps the settings it was made with: `up` then failed the same way for good.
    Now it makes them again once, through compose, and the stack comes up on its data."""
    runtime, project = isolated_stack.runtime, isolated_stack.config.project
    values = isolated_stack.config.values
    psql = ("psql", "-U", values["POSTGRES_USER"], "-d", values["POSTGRES_DB"], "-c")
    isolated_stack.exec("db", *psql, "create table kept ()", capture=True)
    assert nox(isolated_stack, "-s", "down").returncode == 0
    made_under(isolated_stack, podman_conf)
    before = {c.service: c.id for c in runtime.containers(project)}
    up = nox(isolated_stack, "-s", "up")  # the engine's own, working configuration
    assert up.returncode == 0, up.stderr
    assert up.stderr.count("making them again") == 1, up.stderr
    after = {c.service: c for c in runtime.containers(project)}
    assert all(after[s].id != before[s] for s in before), "not made again"
    assert all(c.state == "running" for c in after.values())
    assert http("GET", f"{isolated_stack.config.app_url}/api/v1/health/")[0] == 200
    kept = isolated_stack.exec("db", *psql, r"\dt kept", capture=True)
    assert b"kept" in kept.stdout


def aardvark_dns_processes() -> list[int]:
    """This account's aardvark-dns processes."""
    found = []
    for process in Path("/proc").iterdir():
        try:
            if process.name.isdigit() and process.stat().st_uid == os.getuid():
                if (process / "comm").read_text().strip() == "aardvark-dns":
                    found.append(int(process.name))
        except OSError:
            continue
    return found


def output(runtime, *args: str) -> str:
    return runtime.engine_cmd(*args, capture=True, quiet=True).stdout.decode().strip()


def end(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.02)
    raise AssertionError(f"aardvark-dns {pid} did not end")


@pytest.fixture
def rootless_podman_4(isolated_stack):
    runtime = isolated_stack.runtime
    if runtime.name != "podman" or not runtime.rootless:
        pytest.skip(f"{runtime.describe()}: its DNS runs in the host's network namespace")
    version = output(runtime, "version", "--format", "{{.Client.Version}}")
    if not version.startswith("4."):
        pytest.skip(f"Podman {version}: the stale aardvark-dns was seen with Podman 4")
    missing = [tool for tool in ("unshare", "ip") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{' and '.join(missing)} missing: cannot make a network namespace by hand")


def test_up_ends_an_aardvark_dns_that_outlived_the_rootless_network_namespace(
    isolated_stack, rootless_podman_4
):
    """Seen once with rootless Podman 4.3: the account's aardvark-dns ran in a network
    namespace slirp4netns no longer served, every name failed, and `network reload` (which
    only signals that process) did not help. Set up by hand: the real one ends and one with
    the same configuration starts in a namespace of its own that holds the network's gateway
    address, as the old one did. `up` ends it and reloads: the names come back."""
    stack, runtime = isolated_stack, isolated_stack.runtime
    app = stack.containers()["app"].name
    before = {c.service: c.id for c in runtime.containers(stack.config.project)}

    def resolves() -> bool:
        lookup = runtime.engine_cmd(
            "exec", app, "getent", "hosts", "db", capture=True, check=False, quiet=True
        )
        return lookup.returncode == 0

    assert resolves()
    [real] = aardvark_dns_processes()
    command = Path(f"/proc/{real}/cmdline").read_bytes().decode().split("\0")
    binary, config = command[0], command[command.index("--config") + 1]
    networks = runtime.engine_cmd(
        "inspect", "--format", "{{json .NetworkSettings.Networks}}", app, capture=True, quiet=True
    )
    [network] = json.loads(networks.stdout)
    inspect = runtime.engine_cmd("network", "inspect", network, capture=True, quiet=True)
    [subnet] = json.loads(inspect.stdout)[0]["subnets"]
    address = f"{subnet['gateway']}/{subnet['subnet'].split('/')[1]}"
    current = output(runtime, "unshare", "--rootless-netns", "readlink", "/proc/self/ns/net")
    end(real)
    runtime.engine_cmd(
        "unshare", "unshare", "--net", "sh", "-c",
        "ip link set lo up && ip link add stale0 type bridge && "
        f"ip addr add {address} dev stale0 && ip link set stale0 up && "
        f"{binary} --config {config} -p 53 run",
        capture=True, quiet=True,
    )  # fmt: skip
    try:
        [stale] = aardvark_dns_processes()
        assert os.readlink(f"/proc/{stale}/ns/net") != current
        assert not resolves()
        runtime.engine_cmd("network", "reload", app, capture=True, check=False, quiet=True)
        assert not resolves(), "a reload alone brought the names back: not the fault seen"

        up = nox(stack, "-s", "up")
        assert up.returncode == 0, up.stderr
        assert f"aardvark-dns (PID {stale}) runs in a network namespace" in up.stderr, up.stderr
        assert resolves()
        assert http("GET", f"{stack.config.app_url}/api/v1/health/")[0] == 200
        after = {c.service: c.id for c in runtime.containers(stack.config.project)}
        assert after == before, "containers were made again: only the DNS server was at fault"
    finally:
        for pid in aardvark_dns_processes():
            if os.readlink(f"/proc/{pid}/ns/net") != current:
                end(pid)
        runtime.engine_cmd("network", "reload", app, capture=True, check=False, quiet=True)

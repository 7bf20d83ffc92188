"""The daily-workflow sessions against a real, isolated stack (PostgreSQL, Redis, the app).

One stack for the module (conftest.isolated_stack); the clean tests come last because they
remove its containers.
"""

import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT, ctrl_c, nox, start

from devstack import bench, workflow
from devstack.errors import StackError
from devstack.net import free_port, http, poll, postgres_answers, redis_answers


def test_status_probes_every_service_and_shows_its_ports(isolated_stack):
    rows = {row.service: row for row in workflow.status(isolated_stack)}
    config = isolated_stack.config
    assert set(rows) == {"db", "redis", "app"}
    for service, row in rows.items():
        assert (row.state, row.health) == ("running", "healthy"), row
        assert f"127.0.0.1:{config.port(service)}->" in row.ports, row
    assert rows["app"].url == f"{config.app_url}/"
    # The app's container publishes the debugger's port too (listening after `nox -s debug`).
    assert set(rows["app"].ports.split(", ")) == {
        f"127.0.0.1:{config.port('debugger')}->5678/tcp",
        f"127.0.0.1:{config.port('app')}->8000/tcp",
    }


def test_status_session_prints_the_table(isolated_stack):
    result = nox(isolated_stack, "-s", "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["service", "state", "health", "published", "url"]
    app = next(line for line in lines if line.startswith("app "))
    assert app.split()[1:3] == ["running", "healthy"]
    assert f"127.0.0.1:{isolated_stack.config.port('app')}->8000/tcp" in app


def test_status_sees_a_stopped_service(isolated_stack):
    isolated_stack.compose("stop", "redis", capture=True, quiet=True)
    try:
        rows = {row.service: row for row in workflow.status(isolated_stack)}
        assert rows["redis"].state == "exited" and rows["redis"].health == "-"
        assert rows["db"].health == "healthy"
    finally:
        seconds = workflow.restart(isolated_stack, ["redis"])
    assert seconds < 60
    assert isolated_stack.service_ready("redis")[0]


def test_probes_speak_each_protocol_on_the_published_ports(isolated_stack):
    config = isolated_stack.config
    host, db, redis = config.host, config.port("db"), config.port("redis")
    user, database = config.values["POSTGRES_USER"], config.values["POSTGRES_DB"]
    assert postgres_answers(host, db, user, database) == (True, "accepting connections")
    assert redis_answers(host, redis) == (True, "+PONG")
    # Each probe really speaks its protocol: the other server's port does not pass.
    assert not postgres_answers(host, redis, user, database)[0]
    assert not redis_answers(host, db)[0]
    closed = free_port()
    ok, detail = postgres_answers(host, closed, user, database)
    assert not ok and f"no answer on {host}:{closed}" in detail


def test_down_keeps_the_containers_and_up_starts_the_same_ones(isolated_stack):
    runtime, project = isolated_stack.runtime, isolated_stack.config.project
    before = {c.service: c.id for c in runtime.containers(project)}
    down = nox(isolated_stack, "-s", "down")
    assert down.returncode == 0, down.stderr
    stopped = {c.service: c for c in runtime.containers(project)}
    assert {s: c.id for s, c in stopped.items()} == before
    assert all(c.state != "running" for c in stopped.values())
    assert all(runtime.volume_exists(v) for v in isolated_stack.config.volume_names())
    up = nox(isolated_stack, "-s", "up")
    assert up.returncode == 0, up.stderr
    assert " up -d" not in up.stderr  # started directly, not through the compose tool
    started = {c.service: c for c in runtime.containers(project)}
    assert {s: c.id for s, c in started.items()} == before
    assert all(c.state == "running" for c in started.values())
    assert http("GET", f"{isolated_stack.config.app_url}/api/v1/health/")[0] == 200


def test_commands_in_the_app_container_of_a_stopped_stack_say_so_in_one_line(isolated_stack):
    down = nox(isolated_stack, "-s", "down")
    assert down.returncode == 0, down.stderr
    line = (
        f"the app service of stack {isolated_stack.config.project} is not running: "
        "start the stack with `nox -s up` and retry"
    )
    try:
        for session in (["migrate"], ["shell"], ["manage", "--", "check"], ["makemigrations"]):
            result = nox(isolated_stack, "-s", *session)
            assert result.returncode != 0
            assert line in result.stderr, (session, result.stderr)
            assert "Traceback" not in result.stderr and "exit code" not in result.stderr
    finally:
        start(isolated_stack)


def test_ctrl_c_anywhere_in_up_leaves_a_stack_the_next_up_carries_on_with(isolated_stack):
    """Ctrl-C as a terminal sends it (SIGINT to the session's whole process group), at moments
    spread over an `up` of the stopped stack: the engine's `start` is never cut short, the
    session ends in one line, and the next `up` starts the same containers on the same ports.
    Cut short, Podman's `start` left a container "initialized" that could not start again,
    and netavark's firewall rules sending the ports nowhere, even after `clean`."""
    runtime, project = isolated_stack.runtime, isolated_stack.config.project
    before = {c.service: c.id for c in runtime.containers(project)}
    ports = {service: isolated_stack.config.port(service) for service in before}
    left, finished_first = set(), 0
    for delay in [0.15 * step for step in range(13)]:  # 0-1.8 s into the session
        assert nox(isolated_stack, "-s", "down").returncode == 0
        output = ctrl_c(isolated_stack, "-s", "up", after=delay)
        assert "Traceback" not in output, output
        finished_first += "Ctrl-C: finishing `" in output
        left |= {c.state for c in runtime.containers(project)}
        up = nox(isolated_stack, "-s", "up")
        assert up.returncode == 0, f"after Ctrl-C at {delay:.2f}s (states {left}): {up.stderr}"
        after = {c.service: c for c in runtime.containers(project)}
        assert {s: c.id for s, c in after.items()} == before, f"recreated after {delay:.2f}s"
        for service, container in after.items():
            assert f"127.0.0.1:{ports[service]}->" in " ".join(container.ports), container
        assert http("GET", f"{isolated_stack.config.app_url}/api/v1/health/")[0] == 200
    assert "initialized" not in left
    assert finished_first, "no Ctrl-C landed while the engine started the containers"


@pytest.mark.parametrize(("command", "state"), [("pause", "paused"), ("init", "initialized")])
def test_a_container_left_between_states_runs_again_after_up_and_down_stops_it(
    isolated_stack, command, state
):
    """Paused (`pause`, Docker Desktop's button), or made ready but not started (Podman's
    `init`, as a killed `podman start` leaves it): either holds its ports, and Podman cannot
    start it. `up` once took its ports for another program's, then failed; so did `down`."""
    runtime, project = isolated_stack.runtime, isolated_stack.config.project
    before = {c.service: c.id for c in runtime.containers(project)}
    app = isolated_stack.containers()["app"].name
    if command == "init":
        assert nox(isolated_stack, "-s", "down").returncode == 0
    refused = runtime.engine_cmd(command, app, capture=True, check=False, quiet=True)
    if refused.returncode != 0:  # Docker has no `init`; rootless Podman on cgroup v1 no freezer
        assert nox(isolated_stack, "-s", "up").returncode == 0
        pytest.skip(f"{runtime.describe()} cannot {command}: {refused.stderr.decode().strip()}")
    assert {c.state for c in runtime.containers(project) if c.name == app} == {state}
    up = nox(isolated_stack, "-s", "up")
    assert up.returncode == 0, up.stderr
    assert f"{app} {state}: " in up.stderr and "is taken" not in up.stderr
    after = {c.service: c for c in runtime.containers(project)}
    assert {s: c.id for s, c in after.items()} == before
    assert all(c.state == "running" for c in after.values())
    assert http("GET", f"{isolated_stack.config.app_url}/api/v1/health/")[0] == 200
    if command == "init":
        assert nox(isolated_stack, "-s", "down").returncode == 0
    runtime.engine_cmd(command, app, capture=True, quiet=True)
    try:
        down = nox(isolated_stack, "-s", "down")
        assert down.returncode == 0, down.stderr
        assert all(c.state not in ("running", state) for c in runtime.containers(project))
    finally:
        assert nox(isolated_stack, "-s", "up").returncode == 0


def test_up_recreates_stopped_containers_whose_configuration_changed(isolated_stack):
    runtime, project = isolated_stack.runtime, isolated_stack.config.project
    before = {c.service: c.id for c in runtime.containers(project)}
    assert nox(isolated_stack, "-s", "down").returncode == 0
    changed = nox(isolated_stack, "-s", "up", env={"DB_WAIT_TIMEOUT": "61"})
    try:
        assert changed.returncode == 0, changed.stderr
        after = {c.service: c for c in runtime.containers(project)}
        assert all(after[s].id != before[s] for s in before), "a stale container was reused"
        app = next(c for c in after.values() if c.service == "app")
        inspect = runtime.engine_cmd(
            "inspect", "--format", "{{json .Config.Env}}", app.name, capture=True, quiet=True
        )
        assert "DB_WAIT_TIMEOUT=61" in json.loads(inspect.stdout)
    finally:  # back to the module's configuration for the tests that follow
        assert nox(isolated_stack, "-s", "up").returncode == 0


def test_up_reports_a_server_that_cannot_start_at_once_with_its_error(isolated_stack):
    """The server's process ends, watchfiles waits for an edit and the container runs on: `up`
    names the error instead of waiting out UP_TIMEOUT."""
    broken = nox(isolated_stack, "-s", "up", env={"LOG_LEVEL": "LOUD", "UP_TIMEOUT": "170"})
    try:
        assert broken.returncode != 0
        assert "the app server stopped while starting (ValueError: " in broken.stderr
        assert "not ready after 170s" not in broken.stderr
        assert "Traceback" not in broken.stderr
    finally:  # back to the module's configuration for the tests that follow
        assert nox(isolated_stack, "-s", "up").returncode == 0


def server_pid(stack) -> str:
    """The dev server's PID (the second column of `top` for Podman and Docker alike); ""
    while it restarts."""
    servers = stack.dev_servers(stack.processes(stack.containers()["app"]))
    return servers[0].split()[1] if servers else ""


def test_an_edit_of_the_host_tooling_leaves_the_dev_server_running(isolated_stack):
    """src/devstack is the nox sessions' code, not the app's: watchfiles ignores it. An edit
    of the app's code (the control) does restart the server."""
    before = server_pid(isolated_stack)
    assert before, "no dev server process in the app container"
    tooling = ROOT / "src" / "devstack" / f"_edit_probe_{secrets.token_hex(3)}.py"
    app_code = ROOT / "src" / "core" / f"_edit_probe_{secrets.token_hex(3)}.py"
    try:
        tooling.write_text("# written by a test\n")
        time.sleep(2)  # a restart takes well under a second here
        assert server_pid(isolated_stack) == before
        app_code.write_text("# written by a test\n")
        ok, seen, _ = poll(
            lambda: ((pid := server_pid(isolated_stack)) not in ("", before), pid), timeout=15
        )
        assert ok, f"an edit in src/core did not restart the server (PID {seen or 'none'})"
    finally:
        tooling.unlink(missing_ok=True)
        app_code.unlink(missing_ok=True)
        time.sleep(1)  # the removal restarts it once more
        isolated_stack.wait_ready(timeout=60)


def test_a_taken_port_set_while_the_stack_runs_is_one_line_and_nothing_stops(isolated_stack):
    """The configuration changed to a port someone else holds: `up` says so before it
    recreates anything, and the running stack stays as it was."""
    runtime, project = isolated_stack.runtime, isolated_stack.config.project
    before = {c.service: c.id for c in runtime.containers(project)}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = nox(isolated_stack, "-s", "up", env={"APP_PORT": str(port)})
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "set APP_PORT=<free port>" in result.stderr
    assert "Traceback" not in result.stderr
    after = {c.service: c for c in runtime.containers(project)}
    assert {s: c.id for s, c in after.items()} == before
    assert all(c.state == "running" for c in after.values())


def test_manage_startapp_writes_the_app_into_src_owned_by_the_checkouts_owner(isolated_stack):
    name = f"startapp_probe_{secrets.token_hex(3)}"
    created = ROOT / "src" / name
    try:
        result = nox(isolated_stack, "-s", "manage", "--", "startapp", name)
        assert result.returncode == 0, result.stderr
        assert (created / "models.py").is_file()
        owner = ROOT.stat().st_uid
        assert {p.stat().st_uid for p in [created, *created.rglob("*")]} == {owner}
    finally:
        shutil.rmtree(created, ignore_errors=True)


def test_djangos_dbshell_works_in_the_app_container(isolated_stack):
    result = nox(isolated_stack, "-s", "manage", "--", "dbshell", "--", "-tAc", "SELECT 6 * 7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42"]


def test_logs_of_one_service_are_its_real_output(isolated_stack, capfd):
    http("GET", f"{isolated_stack.config.app_url}/api/v1/health/")
    workflow.logs(isolated_stack, ["--tail", "200", "app"])
    out = capfd.readouterr().out
    assert "GET /api/v1/health/" in out
    assert "database system is ready" not in out  # only the app's lines


def test_logs_session_of_all_services(isolated_stack):
    result = nox(isolated_stack, "-s", "logs", "--", "--tail", "500")
    assert result.returncode == 0, result.stderr
    assert "database system is ready to accept connections" in result.stdout
    assert "Ready to accept connections" in result.stdout  # redis
    assert "\x1b[" not in result.stdout.replace("\x1b[0m", "")  # no colours in a pipe


def test_logs_reject_an_unknown_service_by_name(isolated_stack):
    with pytest.raises(StackError, match=r"^unknown service 'web': choose from db, redis, app$"):
        workflow.logs(isolated_stack, ["web"])


def test_manage_runs_a_real_manage_py_command(isolated_stack):
    result = nox(isolated_stack, "-s", "manage", "--", "showmigrations", "notes")
    assert result.returncode == 0, result.stderr
    assert "[X] 0001_initial" in result.stdout


def test_manage_without_a_command_is_a_usage_error(isolated_stack):
    result = nox(isolated_stack, "-s", "manage")
    assert result.returncode != 0
    assert "Usage: nox -s manage -- <manage.py command>" in result.stderr


def test_manage_test_and_runserver_typed_by_habit_do_what_a_django_developer_means(
    isolated_stack,
):
    tests = nox(isolated_stack, "-s", "manage", "--", "test", "tests/app/test_health.py")
    assert tests.returncode == 0, tests.stderr
    assert re.search(r"\b\d+ passed\b", tests.stdout), tests.stdout  # not "NO TESTS RAN"
    server = nox(isolated_stack, "-s", "manage", "--", "runserver")
    assert server.returncode != 0
    expected = "the dev server already runs in the app container and restarts on each edit"
    assert f"{expected}: {isolated_stack.app_url}/" in server.stderr
    assert "Traceback" not in server.stderr


def test_a_failing_manage_command_fails_the_session(isolated_stack):
    with pytest.raises(StackError, match=r"^manage.py no-such-command exited with code 1"):
        workflow.manage(isolated_stack, ["no-such-command"])


def test_makemigrations_finds_the_models_in_sync(isolated_stack, capfd):
    workflow.manage(isolated_stack, ["makemigrations", "--check", "--dry-run"])
    assert "No changes detected" in capfd.readouterr().out


def test_createsuperuser_without_a_terminal_needs_noinput(isolated_stack, monkeypatch):
    result = nox(isolated_stack, "-s", "createsuperuser")
    assert result.returncode != 0
    assert "createsuperuser asks for a password and needs a terminal" in result.stderr
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-test-password-42")
    workflow.createsuperuser(
        isolated_stack, ["--noinput", "--username", "root-test", "--email", "root@example.com"]
    )
    users = isolated_stack.exec(
        "db",
        "psql",
        "-U",
        "app",
        "-d",
        "app",
        "-tAc",
        "SELECT username, is_superuser FROM auth_user",
        capture=True,
    )
    assert users.stdout.decode().split() == ["root-test|t"]


def test_shell_and_dbshell_run_commands_in_their_containers(isolated_stack, capfd):
    workflow.shell(isolated_stack, ["sh", "-c", "id -u; echo $DJANGO_SETTINGS_MODULE"])
    workflow.dbshell(isolated_stack, ["-tAc", "SELECT 40 + 2"])
    out = capfd.readouterr().out.split()
    assert out[1:] == ["settings.dev", "42"]
    with pytest.raises(StackError, match=r"^`false` exited with code 1 in the app container"):
        workflow.shell(isolated_stack, ["false"])


def test_shell_without_a_command_reads_stdin_when_there_is_no_terminal(isolated_stack):
    result = nox(isolated_stack, "-s", "shell", input="echo shell-says-$((6 * 7))\n")
    assert result.returncode == 0, result.stderr
    assert "shell-says-42" in result.stdout


def test_restart_of_the_whole_stack_waits_until_it_answers(isolated_stack):
    workflow.restart(isolated_stack, [])
    status, body = http("GET", f"{isolated_stack.config.app_url}/api/v1/health/")
    assert status == 200 and json.loads(body)["status"] == "ok"


# --- clean: last, it removes the containers ----------------------------------------------
def test_clean_without_yes_keeps_the_volumes_and_their_data(isolated_stack):
    stack = isolated_stack
    status, body = http("POST", f"{stack.config.app_url}/api/v1/notes/", {"title": "kept by clean"})
    assert status == 201, body
    asked = []
    deleted = workflow.clean(stack, yes=False, confirm=lambda q: asked.append(q) or False)
    assert deleted == [] and asked == ["Delete these 4 volumes and their data?"]
    assert stack.runtime.containers(stack.config.project) == []
    result = nox(stack, "-s", "clean")  # no terminal: nothing to ask on, volumes kept
    assert result.returncode == 0, result.stderr
    assert "volumes kept (no terminal to ask on)" in result.stderr
    assert all(stack.runtime.volume_exists(v) for v in stack.config.volume_names())
    start(stack)
    status, body = http("GET", f"{stack.config.app_url}/api/v1/notes/")
    assert [n["title"] for n in json.loads(body)["results"]] == ["kept by clean"]


def test_clean_with_yes_deletes_the_volumes(isolated_stack):
    stack = isolated_stack
    result = nox(stack, "-s", "clean", "--", "--yes")
    assert result.returncode == 0, result.stderr
    for volume in stack.config.volume_names():
        assert volume in result.stderr  # listed before they go
        assert not stack.runtime.volume_exists(volume)
    assert stack.runtime.containers(stack.config.project) == []


# --- no stack needed ---------------------------------------------------------------------
def test_readme_lists_every_session_exactly_as_nox_l_shows_it():
    listing = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-l"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    sessions = [
        re.match(r"^[*-] (\S+) -> (.*)$", line).groups()
        for line in listing.splitlines()
        if re.match(r"^[*-] \S+ -> ", line)
    ]
    readme = (ROOT / "README.md").read_text()
    table = re.findall(r"^\| `nox -s (\S+)` \| (.*) \|$", readme, re.M)
    assert table == [(name, text.replace("|", "\\|")) for name, text in sessions]


def test_arguments_and_terminal_helpers():
    assert workflow.split_yes(["snap", "--yes"]) == (True, ["snap"])
    assert workflow.split_yes(["-y"]) == (True, [])
    assert workflow.split_yes(["snap"]) == (False, ["snap"])
    assert workflow.tty_flags() == ["-T"]  # pytest's stdin is not a terminal
    assert workflow.confirmer() is None


def test_bench_options_it_cannot_use_are_one_line_before_anything_runs():
    assert bench.parse_args([]) == {"runs": 5, "build_runs": 2, "edits": 24}
    assert bench.parse_args(["--runs=3", "--edits", "30"])["runs"] == 3
    with pytest.raises(StackError, match=r"^bench: --edits must be at least 20"):
        bench.parse_args(["--edits", "5"])
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", "bench"]
        + ["--", "--runs", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode != 0
    assert "bench: argument --runs: invalid count value: '0': use --runs N" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("status", ["200 OK", "404 Not Found"])
def test_a_response_cut_off_mid_body_is_no_answer_whatever_its_status(status):
    """A dev server restarting after an edit may close mid-response; before its new routes
    load, that response is a 404 page (a CI run's verify ended in IncompleteRead there)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer_and_hang_up() -> None:
            client, _ = server.accept()
            with client:
                client.recv(4096)
                client.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 2820\r\n\r\n".encode())

        thread = threading.Thread(target=answer_and_hang_up)
        thread.start()
        answer = http("GET", f"http://127.0.0.1:{server.getsockname()[1]}/__verify__/")
        thread.join()
    assert answer == (None, "IncompleteRead: IncompleteRead(0 bytes read, 2820 more expected)")

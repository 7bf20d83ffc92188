"""The dev server command (wait for the database, migrate, runserver) and the settings
modules, run as real processes."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[2]
WATCHFILES_LOG = re.compile(r"\[\d\d:\d\d:\d\d\] ")  # its own lines: "[12:00:00] watchfiles v1 ..."


def run(args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    environment.update(env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=APP_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_wait_for_db_gives_up_on_an_unreachable_database_with_one_clear_line():
    result = run(
        ["src/manage.py", "wait_for_db", "--timeout", "1"],
        DJANGO_SETTINGS_MODULE="settings.dev",
        DATABASE_URL="postgres://app:app@127.0.0.1:1/app",
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "database at 127.0.0.1:1 not ready after 1s" in lines[0]
    assert "DB_WAIT_TIMEOUT" in lines[0]


def test_wait_for_db_returns_once_the_database_answers():
    result = run(
        ["src/manage.py", "wait_for_db", "--timeout", "5"], DJANGO_SETTINGS_MODULE="settings.dev"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _dev_server(port: int, **env):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.dev",
        "MIGRATE_ON_START": "false",
        **env,
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [env.get("PYTHONPATH"), os.environ.get("PYTHONPATH")])
    )
    # The dev image's command (Containerfile): watchfiles restarting runserver --noreload.
    server = f"{sys.executable} src/manage.py runserver --noreload 127.0.0.1:{port}"
    return subprocess.Popen(
        [sys.executable, "-m", "watchfiles", "--filter", "python", server, "src", "settings"],
        cwd=APP_DIR,
        env=environment,
        start_new_session=True,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_dev_server_serves_and_stops_at_once():
    port = _free_port()
    server = _dev_server(port)
    try:
        deadline, status = time.monotonic() + 30, None
        while time.monotonic() < deadline and status != 200:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/health/", timeout=2
                ) as r:
                    status = r.status
            except (urllib.error.URLError, OSError):
                assert server.poll() is None, server.communicate()[1]
                time.sleep(0.05)
        assert status == 200
        # TERM to the group, as dumb-init sends it on `stop`: watchfiles and the server leave
        # at once.
        started = time.monotonic()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=5)
        assert time.monotonic() - started < 2
        time.sleep(0.2)
        assert not _group_alive(server.pid), "a server process outlived the stop"
    finally:
        if _group_alive(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
        server.communicate()


BROKEN_PROJECTS = {
    "a failing system check": ({}, "CACHES = {}\n", "caches.E001"),
    "a URLconf that does not import": (
        {"broken_urls.py": "raise RuntimeError('URLconf broken for the test')\n"},
        "ROOT_URLCONF = 'broken_urls'\n",
        "URLconf broken for the test",
    ),
    "an app that does not import": (
        {"broken_app/__init__.py": "raise RuntimeError('app broken for the test')\n"},
        "INSTALLED_APPS = [*INSTALLED_APPS, 'broken_app']\n",
        "app broken for the test",
    ),
}


@pytest.mark.parametrize("broken", list(BROKEN_PROJECTS))
def test_dev_server_with_broken_code_shows_the_error_and_waits_for_a_fix(tmp_path, broken):
    """As runserver does: the error is shown, nothing is served, the container keeps running
    (watchfiles waits for the fix) instead of exiting."""
    files, settings, expected = BROKEN_PROJECTS[broken]
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "broken_settings.py").write_text("from settings.dev import *  # noqa\n" + settings)
    port = _free_port()
    server = _dev_server(port, DJANGO_SETTINGS_MODULE="broken_settings", PYTHONPATH=str(tmp_path))
    try:
        time.sleep(8)  # set-up, checks, the fresh server's own attempt
        assert server.poll() is None, "watchfiles must keep waiting for a fix"
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health/", timeout=2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        _, stderr = server.communicate(timeout=10)
    assert expected in stderr


def test_dev_server_without_a_database_fails_with_one_line_and_leaves_no_process():
    """No waiting for an edit that cannot help: watchfiles stops too, so the container does."""
    server = _dev_server(
        _free_port(), DATABASE_URL="postgres://app:app@127.0.0.1:1/app", DB_WAIT_TIMEOUT="1"
    )
    try:
        _, stderr = server.communicate(timeout=30)
        lines = [line for line in stderr.strip().splitlines() if not WATCHFILES_LOG.match(line)]
        assert len(lines) == 1, stderr
        assert "database at 127.0.0.1:1 not ready after 1s" in lines[0]
        time.sleep(0.2)
        assert not _group_alive(server.pid), "a server process was left running"
    finally:
        if _group_alive(server.pid):
            os.killpg(server.pid, signal.SIGKILL)


def test_malformed_database_url_names_the_variable_and_the_fix():
    result = run(
        ["src/manage.py", "check"], DJANGO_SETTINGS_MODULE="settings.dev", DATABASE_URL="not a url"
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "DATABASE_URL='not a url' is not a valid URL" in last
    assert ".env.example" in last


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"])
def test_production_settings_fail_fast_naming_what_is_missing(missing):
    env = {
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "example.com",
        "DATABASE_URL": "postgres://u:p@db/app",
        missing: "",
    }
    result = run(["src/manage.py", "check"], DJANGO_SETTINGS_MODULE="settings.prod", **env)
    assert result.returncode != 0
    assert f"production settings need {missing}" in result.stderr


def test_production_settings_pass_the_deploy_check_without_warnings():
    result = run(
        ["src/manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="settings.prod",
        SECRET_KEY="a-long-random-production-secret-" + "k" * 40,
        ALLOWED_HOSTS="example.com",
        DATABASE_URL="postgres://u:p@db/app",
        DEBUG="true",  # must be ignored
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


PROD_ENV = {
    "SECRET_KEY": "a-long-random-production-secret-" + "k" * 40,
    "ALLOWED_HOSTS": "example.com",
    "DATABASE_URL": "postgres://u:p@db/app",
}
PRINT_API_POLICY = (
    "import json, django; from django.conf import settings; django.setup();"
    "print(json.dumps(settings.REST_FRAMEWORK))"
)


def api_policy(settings_module, **env):
    result = run(["-c", PRINT_API_POLICY], DJANGO_SETTINGS_MODULE=settings_module, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_api_reads_open_writes_need_a_user_and_every_client_is_throttled():
    policy = api_policy("settings.prod", **PROD_ENV)
    assert policy["DEFAULT_PERMISSION_CLASSES"] == [
        "rest_framework.permissions.IsAuthenticatedOrReadOnly"
    ]
    assert policy["DEFAULT_AUTHENTICATION_CLASSES"] == [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ]
    assert policy["DEFAULT_RENDERER_CLASSES"] == ["rest_framework.renderers.JSONRenderer"]
    assert policy["DEFAULT_THROTTLE_CLASSES"] == [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ]
    assert policy["DEFAULT_THROTTLE_RATES"] == {"anon": "100/minute", "user": "1000/minute"}
    assert policy["NUM_PROXIES"] == 1  # one ingress in front: the client IP it saw counts


def test_production_throttle_rates_come_from_the_environment():
    policy = api_policy(
        "settings.prod",
        API_THROTTLE_ANON="7/second",
        API_THROTTLE_USER="5000/hour",
        API_NUM_PROXIES="2",
        **PROD_ENV,
    )
    assert policy["DEFAULT_THROTTLE_RATES"] == {"anon": "7/second", "user": "5000/hour"}
    assert policy["NUM_PROXIES"] == 2


def test_manage_py_test_runs_the_pytest_suite_as_django_developers_type_it():
    """Labels are pytest's, relative to the project's root, wherever manage.py runs from.
    (From /app, not src/ as `nox -s manage` does: coverage's relative paths hold there.)"""

    def manage_test(*labels):
        return run(["src/manage.py", "test", *labels], DJANGO_SETTINGS_MODULE="settings.dev")

    passed = manage_test(
        "--failfast", "-k", "throttle_rates_come_from", "tests/app/test_startup.py"
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"\b1 passed\b", passed.stdout), passed.stdout
    missing = manage_test("tests/app/test_no_such_file.py")
    assert missing.returncode == 1
    assert "file or directory not found: tests/app/test_no_such_file.py" in missing.stderr


def test_a_malformed_throttle_rate_fails_at_start_with_one_line_naming_it():
    result = run(
        ["src/manage.py", "check"],
        DJANGO_SETTINGS_MODULE="settings.prod",
        API_THROTTLE_USER="lots",
        **PROD_ENV,
    )
    assert result.returncode != 0
    assert "API_THROTTLE_USER='lots' is not a rate" in result.stderr


def test_development_api_is_open_and_browsable():
    policy = api_policy("settings.dev")
    assert policy["DEFAULT_PERMISSION_CLASSES"] == ["rest_framework.permissions.AllowAny"]
    assert "rest_framework.renderers.BrowsableAPIRenderer" in policy["DEFAULT_RENDERER_CLASSES"]
    assert policy["DEFAULT_THROTTLE_CLASSES"] == []


def test_dev_settings_read_an_edited_template_at_once(tmp_path):
    """No Django reloader resets cached templates in the dev server: dev reads them afresh."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "edited_settings.py").write_text(
        "from settings.dev import *  # noqa\n"
        f"TEMPLATES[0]['DIRS'] = [{str(tmp_path / 'templates')!r}]\n"
    )
    script = (
        "import django, pathlib, sys\n"
        "django.setup()\n"
        "from django.template.loader import render_to_string\n"
        "page = pathlib.Path(sys.argv[1])\n"
        "page.write_text('before')\n"
        "print(render_to_string('page.html'))\n"
        "page.write_text('after')\n"
        "print(render_to_string('page.html'))\n"
    )
    result = run(
        ["-c", script, str(tmp_path / "templates" / "page.html")],
        DJANGO_SETTINGS_MODULE="edited_settings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(APP_DIR), str(APP_DIR / "src")]),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["before", "after"]

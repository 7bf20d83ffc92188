from pathlib import Path

import pytest

from devstack.config import (
    LEGACY_MARKERS,
    MANAGED_END,
    MANAGED_START,
    StackConfig,
    project_name,
    read_env_file,
)
from devstack.errors import StackError


def load(tmp_path, env_text="", environ=None, **overrides):
    (tmp_path / ".env").write_text(env_text)
    return StackConfig.load(tmp_path, environ=environ or {}, overrides=overrides)


def test_defaults_need_no_env_file(tmp_path):
    config = StackConfig.load(tmp_path, environ={})
    assert config.project == project_name(tmp_path)
    assert config.app_url == "http://127.0.0.1:8000"
    assert config.values["POSTGRES_IMAGE"] == "docker.io/library/postgres:17"


def test_environment_beats_env_file_beats_defaults(tmp_path):
    config = load(tmp_path, "APP_PORT=8001\nDB_PORT=5433\n", environ={"APP_PORT": "8002"})
    assert config.port("app") == 8002
    assert config.port("db") == 5433
    assert config.origin["APP_PORT"] == "the environment"


def test_env_file_quotes_comments_and_export(tmp_path):
    values = read_env_file(_write(tmp_path, "# c\n\nexport A=\"x y\"\nB='1'\n"))
    assert values == {"A": "x y", "B": "1"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "DATABASE_URL=postgres//app@db/app",
            "DATABASE_URL='postgres//app@db/app' (from .env) is not valid: expected postgres://",
        ),
        ("APP_PORT=80a", "APP_PORT='80a' (from .env) is not valid: expected a port number"),
        ("DB_PORT=70000", "DB_PORT='70000' (from .env) is not valid"),
        (
            "BIND_ADDRESS=localhost",
            "BIND_ADDRESS='localhost' (from .env) is not valid: expected an IP",
        ),
        ("REDIS_URL=http://redis", "REDIS_URL='http://redis' (from .env) is not valid"),
        ("DEBUG=maybe", "DEBUG='maybe' (from .env) is not valid: expected true or false"),
        ("STACK_NAME=My Stack", "STACK_NAME='My Stack' (from .env) is not valid"),
        ("just some words", ".env: python-dotenv could not parse statement starting at line 1"),
    ],
)
def test_malformed_values_are_one_line_naming_them(tmp_path, line, expected):
    with pytest.raises(StackError) as error:
        load(tmp_path, line + "\n")
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_the_tooling_block_keeps_the_users_lines_and_is_rewritten_in_place(tmp_path):
    config = load(tmp_path, "# mine\nAPP_PORT=8001\n")
    config.record({"POSTGRES_IMAGE": "localhost/a:1"})
    config.record({"REDIS_IMAGE": "localhost/b:2", "DB_PORT": "5433"})
    text = (tmp_path / ".env").read_text()
    assert text.startswith("# mine\nAPP_PORT=8001\n")
    assert text.count(MANAGED_START) == 1 and text.count(MANAGED_END) == 1
    reloaded = StackConfig.load(tmp_path, environ={})
    assert reloaded.values["POSTGRES_IMAGE"] == "localhost/a:1"
    assert reloaded.values["REDIS_IMAGE"] == "localhost/b:2"
    assert reloaded.port("app") == 8001 and reloaded.chosen_by_user("APP_PORT")
    assert reloaded.port("db") == 5433 and not reloaded.chosen_by_user("DB_PORT")


def test_the_block_an_earlier_version_wrote_is_read_and_taken_over(tmp_path):
    start, end = LEGACY_MARKERS
    config = load(tmp_path, f"{start}\nPYTHON_IMAGE=localhost/p:1\n{end}\n")
    assert config.values["PYTHON_IMAGE"] == "localhost/p:1"
    assert not config.chosen_by_user("PYTHON_IMAGE")
    config.record({"APP_PORT": "8002"})
    text = (tmp_path / ".env").read_text()
    assert start not in text and "PYTHON_IMAGE=localhost/p:1" in text and "APP_PORT=8002" in text


@pytest.mark.parametrize(
    ("directory", "name"),
    [
        ("djstack", "djstack"),
        ("My Project.git", "myprojectgit"),
        ("_feature-x", "feature-x"),
        ("...", "djstack"),
    ],
)
def test_the_stack_name_follows_the_checkout_as_compose_derives_a_project_name(
    tmp_path, directory, name
):
    checkout = tmp_path / directory
    checkout.mkdir()
    assert project_name(checkout) == name
    config = StackConfig.load(checkout, environ={})
    assert config.project == name
    assert config.values["APP_IMAGE"] == f"localhost/{name}-app:dev"
    assert config.volume_names()[0] == f"{name}_db-data"
    assert (
        StackConfig.load(checkout, environ={"STACK_NAME": "mine"}).values["PROD_IMAGE"]
        == "localhost/mine-app:prod"
    )


def _write(tmp_path, text):
    path = tmp_path / ".env"
    path.write_text(text)
    return path


@pytest.mark.parametrize("key", ["APP_USER", "APP_USERNS", "PROD_SECRET_KEY", "WEB_CONCURRENCY"])
def test_variables_exported_in_the_shell_beat_env_file(tmp_path, key):
    config = load(tmp_path, f"{key}=from-file\n", environ={key: "from-shell"})
    assert config.values[key] == "from-shell"
    assert config.origin[key] == "the environment"


def test_docker_reads_the_same_ignore_file_as_podman():
    """Docker reads .dockerignore, Podman .containerignore: one set of rules for both."""
    root = Path(__file__).resolve().parents[2]
    assert (root / ".dockerignore").read_bytes() == (root / ".containerignore").read_bytes()

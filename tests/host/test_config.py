from pathlib import Path

import pytest

from devstack.config import StackConfig, read_env_file
from devstack.errors import StackError
from devstack.images import ENV_BLOCK_END, ENV_BLOCK_START, record_standins


def load(tmp_path, env_text="", environ=None, **overrides):
    (tmp_path / ".env").write_text(env_text)
    return StackConfig.load(tmp_path, environ=environ or {}, overrides=overrides)


def test_defaults_need_no_env_file(tmp_path):
    config = StackConfig.load(tmp_path, environ={})
    assert config.project == "djstack"
    assert config.app_url == "http://127.0.0.1:8000"
    assert config.values["POSTGRES_IMAGE"] == "docker.io/library/postgres:17"


def test_environment_beats_env_file_beats_defaults(tmp_path):
    config = load(tmp_path, "APP_PORT=8001\nDB_PORT=5433\n", environ={"APP_PORT": "8002"})
    assert config.port("app") == 8002
    assert config.port("db") == 5433
    assert config.origin["APP_PORT"] == "the environment"


def test_env_file_quotes_comments_and_export(tmp_path):
    values = read_env_file(_write(tmp_path, '# c\n\nexport A="x y"\nB=\'1\'\n'))
    assert values == {"A": "x y", "B": "1"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("DATABASE_URL=postgres//app@db/app", "DATABASE_URL='postgres//app@db/app' (from .env) is not valid: expected postgres://"),
        ("APP_PORT=80a", "APP_PORT='80a' (from .env) is not valid: expected a port number"),
        ("DB_PORT=70000", "DB_PORT='70000' (from .env) is not valid"),
        ("BIND_ADDRESS=localhost", "BIND_ADDRESS='localhost' (from .env) is not valid: expected an IP"),
        ("REDIS_URL=http://redis", "REDIS_URL='http://redis' (from .env) is not valid"),
        ("DEBUG=maybe", "DEBUG='maybe' (from .env) is not valid: expected true or false"),
        ("STACK_NAME=My Stack", "STACK_NAME='My Stack' (from .env) is not valid"),
        ("just some words", ".env line 1: 'just some words' is not KEY=VALUE"),
    ],
)
def test_malformed_values_are_one_line_naming_them(tmp_path, line, expected):
    with pytest.raises(StackError) as error:
        load(tmp_path, line + "\n")
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_standin_block_keeps_the_users_lines_and_is_rewritten_in_place(tmp_path):
    config = load(tmp_path, "# mine\nAPP_PORT=8001\n")
    record_standins(config, {"POSTGRES_IMAGE": "localhost/a:1"})
    record_standins(config, {"REDIS_IMAGE": "localhost/b:2"})
    text = (tmp_path / ".env").read_text()
    assert text.startswith("# mine\nAPP_PORT=8001\n")
    assert text.count(ENV_BLOCK_START) == 1 and text.count(ENV_BLOCK_END) == 1
    reloaded = StackConfig.load(tmp_path, environ={})
    assert reloaded.values["POSTGRES_IMAGE"] == "localhost/a:1"
    assert reloaded.values["REDIS_IMAGE"] == "localhost/b:2"
    assert reloaded.port("app") == 8001


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

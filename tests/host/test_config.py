import os
import shutil
from pathlib import Path

import pytest
from dotenv import dotenv_values

from devstack.config import (
    LEGACY_MARKERS,
    MANAGED_END,
    MANAGED_START,
    StackConfig,
    project_name,
    read_env_file,
    record_choices,
)
from devstack.errors import StackError
from devstack.runtime import detect

ROOT = Path(__file__).resolve().parents[2]


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
        (
            "WATCHFILES_FORCE_POLLING=0",
            "WATCHFILES_FORCE_POLLING='0' (from .env) is not valid: expected true or false",
        ),
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


@pytest.mark.parametrize(("key", "yours"), [("STACK_NAME", "mystack"), ("APP_PORT", "8011")])
def test_a_value_you_set_above_the_block_wins_and_nox_drops_its_own_line(tmp_path, key, yours):
    """Compose tools read .env as python-dotenv does, the last line of a key winning: the
    block's line for a key you set goes, so nox and a plain `podman-compose up` see yours."""
    (tmp_path / ".env").write_text(
        f"{key}={yours}\n{MANAGED_START}\n{key}=from-nox-1\nREDIS_PORT=6380\n{MANAGED_END}\n"
    )
    config = StackConfig.load(tmp_path, environ={})
    assert config.values[key] == yours and config.chosen_by_user(key)
    assert config.origin[key] == ".env"
    assert dotenv_values(tmp_path / ".env")[key] == yours  # what the compose tool reads
    assert "from-nox-1" not in (tmp_path / ".env").read_text()
    assert config.port("redis") == 6380 and not config.chosen_by_user("REDIS_PORT")


def test_recording_never_writes_a_key_you_set_into_the_block(tmp_path):
    config = load(tmp_path, "APP_PORT=8011\n")
    config.record({"APP_PORT": "8012", "DB_PORT": "5433"})
    text = (tmp_path / ".env").read_text()
    assert "APP_PORT=8012" not in text and "DB_PORT=5433" in text
    assert config.port("app") == 8011 and config.chosen_by_user("APP_PORT")
    # A line you add later, above the block, wins from then on.
    (tmp_path / ".env").write_text("DB_PORT=5440\n" + text)
    record_choices(tmp_path / ".env", {"REDIS_PORT": "6380"})
    assert dotenv_values(tmp_path / ".env")["DB_PORT"] == "5440"
    assert "DB_PORT=5433" not in (tmp_path / ".env").read_text()


def test_a_parse_error_names_the_line_of_the_file_inside_or_outside_the_block(tmp_path):
    text = f"A=1\n{MANAGED_START}\nB=2\n{MANAGED_END}\nnot a line\n"
    with pytest.raises(StackError, match="starting at line 5"):
        load(tmp_path, text)


def test_the_image_tags_nox_recorded_follow_the_stack_name(tmp_path):
    """`podman-compose up` alone runs this checkout's image: nox names it in the block; a
    name set later (or a moved checkout) gets its own tags, not the recorded ones."""
    checkout = tmp_path / "shop"
    checkout.mkdir()
    config = StackConfig.load(checkout, environ={})
    config.record_image_tags()
    recorded = dotenv_values(checkout / ".env")
    assert recorded["APP_IMAGE"] == "localhost/shop-app:dev"
    assert recorded["PROD_IMAGE"] == "localhost/shop-app:prod"
    with (checkout / ".env").open("r+") as env_file:
        text = env_file.read()
        env_file.seek(0)
        env_file.write("STACK_NAME=mystack\n" + text)
    renamed = StackConfig.load(checkout, environ={})
    assert renamed.values["APP_IMAGE"] == "localhost/mystack-app:dev"
    renamed.record_image_tags()
    assert dotenv_values(checkout / ".env")["APP_IMAGE"] == "localhost/mystack-app:dev"
    # A stack named by the session (tests, verify, prod) records nothing into the checkout.
    before = (checkout / ".env").read_text()
    StackConfig.load(checkout, environ={}, overrides={"STACK_NAME": "other"}).record_image_tags()
    StackConfig.load(checkout, environ={"STACK_NAME": "other"}).record_image_tags()
    assert (checkout / ".env").read_text() == before


def test_the_compose_tool_alone_reads_your_value_not_the_blocks(tmp_path):
    """The real compose tool's reading of .env, once nox has read it: your port, not the
    block's, and the image nox recorded for this checkout."""
    checkout = tmp_path / "shop"
    checkout.mkdir()
    shutil.copy2(ROOT / "compose.yaml", checkout / "compose.yaml")
    (checkout / ".env").write_text(
        f"APP_PORT=8011\n{MANAGED_START}\nAPP_PORT=8002\nAPP_IMAGE=localhost/shop-app:dev\n"
        f"{MANAGED_END}\n"
    )
    StackConfig.load(checkout, environ={})
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"), log=lambda _: None)
    env = {k: v for k, v in os.environ.items() if k not in StackConfig.load(checkout).values}
    rendered = runtime.run(
        [*runtime.compose_tool, "-p", "shop", "config"], env=env, cwd=checkout, capture=True
    ).stdout.decode()
    assert "8011" in rendered and "8002" not in rendered
    assert "localhost/shop-app:dev" in rendered and "djstack-app:dev" not in rendered

"""Stacks beside the developer's (verify, bench, the tests): a copy of the checkout, its own
stack name (so its own containers and volumes), free ports, the developer's images."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from .config import DERIVED, PORT_VARIABLES, PROD_PORT_VARIABLES, StackConfig
from .net import free_port

COPIED = (
    "compose.yaml",
    "Containerfile",
    "pyproject.toml",
    "uv.lock",
    ".containerignore",
    ".dockerignore",
    ".env",
    "src",
    "settings",
    "tests",
)
# A copy is another checkout: the lines of .env that name this checkout's stack stay behind
# (yours and nox's), or the copy would take this stack's name (or the next one, which no
# `clean` here knows) and its ports. Stand-in images and other settings go along.
NOT_COPIED_KEYS = {
    *DERIVED,
    "COMPOSE_PROJECT_NAME",
    *PORT_VARIABLES.values(),
    *PROD_PORT_VARIABLES.values(),
}
IMAGE_VARIABLES = ("APP_IMAGE", "PYTHON_IMAGE", "POSTGRES_IMAGE", "REDIS_IMAGE")


def isolated_overrides(source: StackConfig, name: str, **extra: str) -> dict[str, str]:
    """Values for a stack beside the developer's: its own name (so its own volumes), free
    ports on 127.0.0.1, and the developer's images (built once, reused)."""
    return {
        "STACK_NAME": name,
        "BIND_ADDRESS": "127.0.0.1",
        **{variable: str(free_port()) for variable in PORT_VARIABLES.values()},
        **{variable: source.values[variable] for variable in IMAGE_VARIABLES},
        **extra,
    }


def checkout_copy(source: Path, prefix: str) -> Path:
    """A temporary copy of what a stack needs from the checkout (the caller removes it)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    workdir.chmod(0o755)
    copy_tree(source, workdir)
    return workdir


def copy_tree(source: Path, target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        path = source / name
        if name == ".env" and path.is_file():
            (target / name).write_text(env_for_a_copy(path.read_text()))
        elif path.is_dir():
            shutil.copytree(path, target / name, ignore=ignore, symlinks=True)
        elif path.exists() or path.is_symlink():
            shutil.copy2(path, target / name, follow_symlinks=False)


def env_for_a_copy(text: str) -> str:
    """.env without the lines of NOT_COPIED_KEYS."""
    key = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if not ((found := key.match(line)) and found[1] in NOT_COPIED_KEYS)
    )

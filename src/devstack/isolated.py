"""Stacks beside the developer's (verify, bench, the tests): a copy of the checkout, its own
stack name (so its own containers and volumes), free ports, the developer's images."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .config import PORT_VARIABLES, StackConfig
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
        if path.is_dir():
            shutil.copytree(path, target / name, ignore=ignore, symlinks=True)
        elif path.exists() or path.is_symlink():
            shutil.copy2(path, target / name, follow_symlinks=False)

"""The dev image's dependency layers: exactly uv.lock, and a dependency change that reuses
the seed layer instead of reinstalling every package."""

import json
import os
import shutil
import tarfile

import pytest
from conftest import ROOT, history_bytes

from devstack import images
from devstack.config import StackConfig
from devstack.images import (
    DEPS_SEED_LABEL,
    add_dependency,
    dependency_seed,
    ensure_app_image,
    locked_pins,
)
from devstack.isolated import checkout_copy
from devstack.runtime import detect


def test_locked_pins_follow_the_project_and_its_dev_group_for_linux():
    pins = dict(pin.split("==") for pin in locked_pins(ROOT / "uv.lock"))
    assert {
        "django",
        "psycopg",
        "django-redis",
        "whitenoise",
        "django-environ",
        "pytest",
        "pytest-django",
        "watchfiles",
    } <= set(pins)
    assert "psycopg-binary" in pins  # through the `binary` extra and its CPython marker
    assert not {"nox", "podman-compose", "uv"} & set(pins)  # the host group stays out
    assert "colorama" not in pins  # Windows only
    assert pins["django"].startswith("5.2.")


def test_dependency_seed_is_kept_while_the_lock_moves_a_little():
    lock = ROOT / "uv.lock"
    current = locked_pins(lock)
    assert dependency_seed(lock, None) == " ".join(current)
    one_more = " ".join([*current[1:], "oldpackage==1.0"])  # two pins differ
    assert dependency_seed(lock, one_more) == one_more
    far = " ".join(f"other{n}==1.0" for n in range(len(current)))
    assert dependency_seed(lock, far) == " ".join(current)


def _installed(runtime, image: str) -> list[str]:
    result = runtime.engine_cmd(
        "run",
        "--rm",
        "--entrypoint",
        "/opt/uv/bin/uv",
        image,
        "pip",
        "list",
        "--format",
        "json",
        "--python",
        "/opt/venv/bin/python",
        capture=True,
        quiet=True,
    )
    return sorted(f"{p['name'].lower()}=={p['version']}" for p in json.loads(result.stdout))


def _sync_layer_bytes(runtime, image: str) -> int:
    """Size of the layer of the `uv sync` step (the history names each step's command)."""
    result = runtime.engine_cmd(
        "history",
        "-H=false",
        "--no-trunc",
        "--format",
        "{{.Size}}\t{{.CreatedBy}}",
        image,
        capture=True,
        quiet=True,
    )
    rows = [line.split("\t", 1) for line in result.stdout.decode().splitlines() if "\t" in line]
    return next(
        history_bytes(size) for size, step in rows if "uv sync" in step and "--group dev" in step
    )


def _layers(runtime, image: str) -> list[str]:
    result = runtime.engine_cmd(
        "image", "inspect", "--format", "{{json .RootFS.Layers}}", image, capture=True, quiet=True
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def runtime():
    return detect(os.environ.get("CONTAINER_RUNTIME"))


def test_dev_image_holds_exactly_the_locked_packages_and_records_its_seed(runtime):
    config = StackConfig.load(ROOT)
    image = config.values["APP_IMAGE"]
    ensure_app_image(runtime, config)
    assert _installed(runtime, image) == locked_pins(ROOT / "uv.lock")
    assert runtime.image_facts(image)[1].get(DEPS_SEED_LABEL)


def test_a_new_dependency_rebuilds_on_the_cached_seed_layer(runtime, tmp_path):
    """`uv add` in a copy of the checkout, then `build`: the layers up to the seed are the
    ones of the image before (cached), the new package is installed, the venv is the lock."""
    workdir = checkout_copy(ROOT, "djstack-seed-test-")
    tag = "localhost/djstack-seed-test:dev"
    try:
        config = StackConfig.load(workdir, overrides={"APP_IMAGE": tag})
        ensure_app_image(runtime, config, force=True)
        before = _layers(runtime, tag)
        add_dependency(runtime, config, "six")
        ensure_app_image(runtime, config)
        after = _layers(runtime, tag)
        changed = sum(a != b for a, b in zip(before, after, strict=False))
        # Rebuilt: the copy of uv.lock, the sync, the copy of the source. The seed is kept.
        # (Counted one by one: BuildKit in Docker 26 adds an empty layer for the WORKDIR after.)
        assert len(after) == len(before) and changed == 3, f"{changed} layers rebuilt, not 3"
        # ... and the sync installed only the new package, not all of them again (~85 MB).
        assert _sync_layer_bytes(runtime, tag) < 5e6
        installed = _installed(runtime, tag)
        assert any(pin.startswith("six==") for pin in installed)
        assert installed == locked_pins(workdir / "uv.lock")
    finally:
        runtime.remove_image(tag)
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_debian_root_file_system_for_the_stand_ins_is_a_tarball(runtime, tmp_path, monkeypatch):
    """The first step towards stand-in images where no registry answers, as this account
    takes it: debootstrap as root, mmdebstrap otherwise (it writes a tarball only for a
    name ending in .tar)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tarball = images.debian_rootfs(runtime)
    assert tarball.is_file() and tarfile.is_tarfile(tarball)
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert {"./usr/bin/python3", "./etc/debian_version"} <= names
    assert not list(tmp_path.rglob("*.partial*"))  # nothing half-written is left

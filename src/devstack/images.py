"""Base images: the official ones when a registry answers, stand-ins built from Debian's
archive when none does (keeping the official images' contract; see standins/)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .config import OFFICIAL_IMAGES, StackConfig
from .errors import StackError
from .runtime import Runtime, ca_bundle_path, find_tool, other_engines

STANDINS_DIR = Path(__file__).parent / "standins"
STANDIN_IMAGES = {
    "PYTHON_IMAGE": "localhost/djstack-standin/python:3.13-slim",
    "POSTGRES_IMAGE": "localhost/djstack-standin/postgres:17",
    "REDIS_IMAGE": "localhost/djstack-standin/redis:8",
}
STANDIN_BASE = "localhost/djstack-standin/debian:trixie"
DEBIAN_SUITE = "trixie"
DEBIAN_PACKAGES = "python3,python3-venv,ca-certificates"

# Inputs of the app image: when they change, `up` rebuilds it.
APP_INPUTS = ("Containerfile", "pyproject.toml", "uv.lock", ".containerignore")
APP_INPUTS_LABEL = "io.djstack.inputs"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    path = Path(base) / "djstack"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_base_images(runtime: Runtime, config: StackConfig) -> dict[str, str]:
    """Make sure the three base images exist; returns the variables that had to change."""
    changes: dict[str, str] = {}
    for variable, official in OFFICIAL_IMAGES.items():
        image = config.values[variable]
        if runtime.image_exists(image) or copy_from_other_engine(runtime, image):
            continue
        if image == official:
            runtime.log(f"pulling {image} ...")
            if runtime.pull(image):
                continue
            runtime.log(f"could not pull {image}: no registry answers")
        elif image != STANDIN_IMAGES[variable]:
            runtime.log(f"pulling {image} ...")
            if runtime.pull(image):
                continue
            raise StackError(
                f"{variable}={image} is not available to {runtime.name} and "
                "cannot be pulled; build or pull it, or remove the line from .env"
            )
        build_standin(runtime, variable)
        changes[variable] = STANDIN_IMAGES[variable]
    if changes:
        config.record(changes)
        runtime.log(
            "NOTE: using stand-in images built from Debian's archive instead of "
            f"the official ones ({', '.join(changes.values())}); they are named in "
            f"{config.env_file} so `podman-compose up` uses them too. Delete those lines "
            "to go back to the official images once a registry is reachable."
        )
    return changes


def copy_from_other_engine(
    runtime: Runtime, image: str, label: str | None = None, value: str | None = None
) -> bool:
    """Take the image from another engine this user reaches that has it (with the label
    value, if given): `save | load`, no rebuild, no registry."""
    for other in other_engines(runtime):
        facts = other.image_facts(image)
        if facts[0] is None or (label is not None and facts[1].get(label) != value):
            continue
        runtime.log(f"copying {image} from {other.describe()} to {runtime.describe()}")
        save = subprocess.Popen(
            [*other.engine, "save", image], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        load = subprocess.run([*runtime.engine, "load"], stdin=save.stdout, capture_output=True)
        save.stdout.close()
        if save.wait() == 0 and load.returncode == 0 and runtime.image_exists(image):
            return True
    return False


def build_standin(runtime: Runtime, variable: str) -> None:
    target = STANDIN_IMAGES[variable]
    if runtime.image_exists(target) or copy_from_other_engine(runtime, target):
        return
    if not (runtime.image_exists(STANDIN_BASE) or copy_from_other_engine(runtime, STANDIN_BASE)):
        runtime.log(f"building the stand-in base image {STANDIN_BASE} from Debian {DEBIAN_SUITE}")
        runtime.import_rootfs(
            debian_rootfs(runtime), STANDIN_BASE, ["ENV LANG=C.UTF-8", 'CMD ["python3"]']
        )
    if variable == "PYTHON_IMAGE":
        runtime.tag(STANDIN_BASE, target)  # Debian's python3 (3.13) is the stand-in
        return
    name = target.rsplit("/", 1)[1].split(":")[0]
    runtime.log(f"building stand-in {target}")
    runtime.build(
        context=STANDINS_DIR,
        containerfile=STANDINS_DIR / f"{name}.Containerfile",
        tag=target,
        build_args={"BASE_IMAGE": STANDIN_BASE},
    )  # apt over http: no CA


def debian_rootfs(runtime: Runtime) -> Path:
    """A tarball of a minimal Debian with Python, made once and cached for every engine."""
    tarball = cache_dir() / f"debian-{DEBIAN_SUITE}-rootfs.tar"
    if tarball.is_file():
        return tarball
    mirror = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
    # mmdebstrap writes a tarball only when the name ends in .tar (else a directory)
    partial = tarball.with_name(f"{tarball.stem}.partial.tar")
    if os.geteuid() == 0 and shutil.which("debootstrap"):
        with tempfile.TemporaryDirectory(prefix="djstack-rootfs-") as root:
            runtime.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={DEBIAN_PACKAGES}",
                    DEBIAN_SUITE,
                    root,
                    mirror,
                ],
                capture=True,
            )
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in Path(root, leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            runtime.run(["tar", "-C", root, "-cf", str(partial), "."], quiet=True)
    elif shutil.which("mmdebstrap"):
        runtime.run(
            [
                "mmdebstrap",
                "--mode=unshare",
                "--variant=minbase",
                f"--include={DEBIAN_PACKAGES}",
                DEBIAN_SUITE,
                str(partial),
                mirror,
            ],
            capture=True,
        )
    else:
        raise StackError(
            "no registry is reachable and stand-in images cannot be built: "
            "install debootstrap (as root) or mmdebstrap, or make docker.io reachable"
        )
    partial.rename(tarball)
    return tarball


def inputs_digest(root: Path, python_image: str, files: list[str]) -> str:
    digest = hashlib.sha256(python_image.encode())
    for name in sorted(set(files)):
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()[:16]


def _ensure_image(
    runtime: Runtime,
    config: StackConfig,
    *,
    tag: str,
    target: str,
    inputs: list[str],
    build_args: dict[str, str],
    force: bool,
    seeded: bool = False,
    no_cache: bool = False,
) -> bool:
    """Build unless an image with the same inputs exists here or in another engine
    (`seeded`: pass the dependency seed, worked out only when a build is due)."""
    digest = inputs_digest(config.root, config.values["PYTHON_IMAGE"], inputs)
    previous = runtime.image_facts(tag)[1]
    if not force and (
        previous.get(APP_INPUTS_LABEL) == digest
        or copy_from_other_engine(runtime, tag, APP_INPUTS_LABEL, digest)
    ):
        return False
    labels = {APP_INPUTS_LABEL: digest}
    if seeded:
        seed = dependency_seed(config.root / "uv.lock", previous.get(DEPS_SEED_LABEL))
        build_args, labels[DEPS_SEED_LABEL] = {**build_args, "DEPS_SEED": seed}, seed
    runtime.build(
        context=config.root,
        containerfile=config.root / "Containerfile",
        tag=tag,
        target=target,
        build_args={"PYTHON_IMAGE": config.values["PYTHON_IMAGE"], **build_args},
        labels=labels,
        ca_bundle=ca_bundle_path(config.values.get("CA_BUNDLE")),
        no_cache=no_cache,
    )
    return True


def app_image_up_to_date(runtime: Runtime, config: StackConfig) -> str | None:
    """The app image's ID when it was built from the current inputs, else None."""
    image_id, labels = runtime.image_facts(config.values["APP_IMAGE"])
    digest = inputs_digest(config.root, config.values["PYTHON_IMAGE"], list(APP_INPUTS))
    return image_id if labels.get(APP_INPUTS_LABEL) == digest else None


def ensure_app_image(
    runtime: Runtime,
    config: StackConfig,
    *,
    force: bool = False,
    target: str = "dev",
    tag: str | None = None,
    no_cache: bool = False,
) -> bool:
    """The dev image: rebuilt only when its dependency inputs change (the source is mounted)."""
    if target == "prod":
        ensure_prod_image(runtime, config, tag=tag)
        return True
    return _ensure_image(
        runtime,
        config,
        tag=tag or config.values["APP_IMAGE"],
        target=target,
        inputs=list(APP_INPUTS),
        build_args={},
        force=force,
        seeded=True,
        no_cache=no_cache,
    )


# --- the dependency seed (Containerfile, stage deps-dev) -----------------------------------
DEPS_SEED_LABEL = "io.djstack.deps-seed"
# Where the dev image runs: markers in uv.lock are evaluated for it.
IMAGE_MARKER_ENVIRONMENT = {
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_version": "3.13.0",
}


def dependency_seed(lock: Path, previous: str | None) -> str:
    """The seed the dev image's dependency layer starts from: the previous one while uv.lock
    has moved on only a little (that layer stays cached; the sync installs the difference),
    else the lock's current pins (a full install, once)."""
    current = locked_pins(lock)
    if previous:
        earlier = set(previous.split())
        if len(earlier ^ set(current)) <= max(4, len(current) // 5):
            return previous
    return " ".join(current)


def add_dependency(runtime: Runtime, config: StackConfig, requirement: str) -> None:
    """`uv add --no-sync <requirement>` in the checkout, as a developer adds a dependency:
    pyproject.toml and uv.lock are rewritten (uv comes with the host group)."""
    uv = find_tool("uv")
    if not uv:
        raise StackError(
            "adding a dependency needs uv (the host group installs it: run "
            "`python3 noxfile.py ...`)"
        )
    ca = ca_bundle_path(config.values.get("CA_BUNDLE"))
    runtime.run(
        [uv, "add", "--no-sync", requirement],
        cwd=config.root,
        capture=True,
        quiet=True,
        env={**os.environ, **({"SSL_CERT_FILE": ca} if ca else {})},
    )


def locked_pins(lock: Path) -> list[str]:
    """`name==version` of what the dev image installs from uv.lock (the project's
    dependencies and its dev group), as `uv export` reads the lock, for Linux and CPython."""
    from packaging.markers import Marker  # nox depends on it

    uv = find_tool("uv")
    if not uv:
        raise StackError(
            "the dependency seed needs uv (the host group installs it: run "
            "`python3 noxfile.py ...`)"
        )
    result = subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--no-emit-project",
            "--group",
            "dev",
        ],
        cwd=lock.parent,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"`uv export` could not read {lock}: {result.stderr.strip()}")
    pins = []
    for line in result.stdout.splitlines():
        requirement, _, marker = line.partition(";")
        if requirement.strip() and (
            not marker or Marker(marker).evaluate(IMAGE_MARKER_ENVIRONMENT)
        ):
            pins.append(requirement.strip())
    return sorted(pins)


def ensure_prod_image(runtime: Runtime, config: StackConfig, *, tag: str | None = None) -> None:
    """The prod image bakes the source in: built every time, the layer cache makes an
    unchanged tree quick (the engine compares the build context, filtered by its ignore file)."""
    runtime.build(
        context=config.root,
        containerfile=config.root / "Containerfile",
        tag=tag or config.values["PROD_IMAGE"],
        target="prod",
        build_args={"PYTHON_IMAGE": config.values["PYTHON_IMAGE"], **oci_build_args(config.root)},
        ca_bundle=ca_bundle_path(config.values.get("CA_BUNDLE")),
    )


def oci_build_args(root: Path) -> dict[str, str]:
    """Values for the OCI labels of the prod image (see the Containerfile's prod stage)."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    version = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
    return {
        "VERSION": version.group(1) if version else "0.0.0",
        "REVISION": git("rev-parse", "HEAD") or "unknown",
        # The commit's time, not now: the same commit gives the same labels and layers.
        "CREATED": git("log", "-1", "--format=%cI") or "unknown",
        "SOURCE": git("remote", "get-url", "origin") or "unknown",
    }

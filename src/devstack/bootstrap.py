"""The host tools the sessions drive the containers with: the `host` dependency group of
pyproject.toml (nox, podman-compose, python-dotenv through it, uv), in .nox/_tools.

`python3 noxfile.py ...` makes that environment on first use and runs its nox. A nox
installed on its own (`pipx install nox`) imports the noxfile without those tools: the
noxfile then makes the same environment and continues in its nox. Nox's own PEP 723
script mode would do this too, but it runs pip on every invocation (0.5-0.8 s here), more
than `nox -s up` on a running stack takes in all.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from .runtime import finish_before_ctrl_c

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".nox" / "_tools"
BINDIR = TOOLS / ("Scripts" if os.name == "nt" else "bin")


def host_requirements() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["host"]


def requirements_digest() -> str:
    """What .nox/_tools/requirements.sha256 holds once the host group is installed."""
    return hashlib.sha256("\n".join(host_requirements()).encode()).hexdigest()


def has_host_tools() -> bool:
    """Whether this interpreter already has every requirement of the host group."""
    from packaging.requirements import Requirement  # nox depends on packaging

    for line in host_requirements():
        requirement = Requirement(line)
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            return False
        if not requirement.specifier.contains(version, prereleases=True):
            return False
    return True


def forget_a_moved_checkout(root: Path = ROOT) -> None:
    """A virtual environment holds its own absolute path (in its scripts' #! lines): once the
    checkout moved or was copied, those in .nox would fail to start, or run the other
    checkout's. They are caches: removed here, and nox makes them again where they are."""
    environments, marker = root / ".nox", root / ".nox" / "checkout"
    before = marker.read_text() if marker.is_file() else None
    if before == str(root):
        return
    if before is not None:
        print(
            f"noxfile.py: this checkout was in {before}: making its tool environments in "
            f"{environments} again",
            file=sys.stderr,
        )
        try:
            for path in environments.iterdir():
                if path.is_dir():
                    shutil.rmtree(path)
        except OSError as exc:
            sys.exit(f"noxfile.py: cannot remove {path} ({exc}): delete {environments}, retry")
    try:
        environments.mkdir(exist_ok=True)
        marker.write_text(str(root))
    except OSError:
        pass  # a .nox that root made (sudo) and this user cannot write: asked again next time


def ensure_tools() -> Path:
    """The tools' venv, made (or remade, when the host group changed) with pip, which honours
    pip.conf / PIP_CERT behind TLS-intercepting proxies."""
    requirements = host_requirements()
    stamp, wanted = TOOLS / "requirements.sha256", requirements_digest()
    if stamp.is_file() and stamp.read_text() == wanted and (BINDIR / "nox").exists():
        return BINDIR
    print(
        f"noxfile.py: installing {', '.join(requirements)} into {TOOLS} (first run only)",
        file=sys.stderr,
    )
    # A process of its own, which Ctrl-C does not reach: its ensurepip would print a traceback.
    with finish_before_ctrl_c(["venv", str(TOOLS)]):
        made = subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(TOOLS)], start_new_session=True
        )
    if made.returncode != 0:
        sys.exit(
            "noxfile.py: cannot create a virtual environment (see above); on Debian/Ubuntu "
            "install python3-venv, then retry"
        )
    pip = [str(BINDIR / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, *requirements]).returncode != 0:
        sys.exit(
            "noxfile.py: installing the host tools failed (see pip's message above); "
            "check the network or PIP_INDEX_URL, then retry"
        )
    stamp.write_text(wanted)
    return BINDIR


def run_nox(args: list[str]) -> int:
    """Hand over to the tools' nox, with the same arguments (never returns on POSIX)."""
    forget_a_moved_checkout()
    try:
        bindir = ensure_tools()
    except KeyboardInterrupt:  # the environment is made again next time: its stamp is missing
        print("noxfile.py: interrupted: the same command again installs the tools", file=sys.stderr)
        return 130
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(bindir / "nox"), "-f", str(ROOT / "noxfile.py"), *args]
    if os.name == "nt":
        return subprocess.run(command, env=env).returncode
    os.execve(command[0], command, env)
    return 0  # not reached


def use_host_tools() -> None:
    """Called when nox imports the noxfile: continue in the tools' nox unless this one has
    the host tools already (the tools' own nox, or a venv the tests made)."""
    if not has_host_tools():
        sys.exit(run_nox(sys.argv[1:]))
    forget_a_moved_checkout()

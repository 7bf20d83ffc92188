"""`python3 noxfile.py <nox arguments>`: run nox with nothing installed but Python.

Makes a private virtual environment (.nox/_tools) with the `host` dependency group of
pyproject.toml (nox, podman-compose, uv) on first use, then hands over to its nox. The
environment is remade when that group changes.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".nox" / "_tools"


def host_requirements() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib

        return tomllib.loads(text)["dependency-groups"]["host"]
    except ImportError:  # Python 3.10: read the one array we need
        block = re.search(r"^host\s*=\s*\[(.*?)\]", text, re.S | re.M)
        return re.findall(r'"([^"]+)"', block.group(1)) if block else ["nox", "podman-compose"]


def ensure_tools() -> Path:
    requirements = host_requirements()
    stamp = TOOLS / "requirements.sha256"
    wanted = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    bindir = TOOLS / ("Scripts" if os.name == "nt" else "bin")
    if stamp.is_file() and stamp.read_text() == wanted and (bindir / "nox").exists():
        return bindir
    print(f"noxfile.py: installing {', '.join(requirements)} into {TOOLS} (first run only)",
          file=sys.stderr)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"noxfile.py: cannot create a virtual environment ({exc}); on Debian/Ubuntu "
                 "install python3-venv, then retry")
    pip = [str(bindir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, *requirements]).returncode != 0:
        sys.exit("noxfile.py: installing the host tools failed (see pip's message above); "
                 "check the network or PIP_INDEX_URL, then retry")
    stamp.write_text(wanted)
    return bindir


def run_nox(args: list[str]) -> int:
    bindir = ensure_tools()
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(bindir / "nox"), "-f", str(ROOT / "noxfile.py"), *args]
    if os.name == "nt":
        return subprocess.run(command, env=env).returncode
    os.execve(command[0], command, env)
    return 0  # not reached

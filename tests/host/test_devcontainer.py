"""The dev container's compose shim (.devcontainer/compose-without-build) in front of the real
compose tool of CONTAINER_RUNTIME. The whole `nox -s devcontainer` run, on a stack named with
`-` and `_`, is .ci/devcontainer-check."""

import os
import re
import subprocess

from conftest import ROOT

from devstack.runtime import detect

SHIM = ROOT / ".devcontainer" / "compose-without-build"


def test_the_cli_keeps_dashes_and_underscores_in_the_project_name():
    """The devcontainers CLI (0.89) reads `version --short` as Docker Compose's version and,
    below 1.21, drops `-` and `_` from the project name: podman-compose 1.6's own number made
    stack `my-shop` a second stack `myshop`. The CLI's parse: digits and dots at the start."""
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"), log=lambda *_: None)
    env = {**os.environ, "DEVCONTAINER_COMPOSE": " ".join(runtime.compose_tool)}
    answer = subprocess.run(
        [str(SHIM), "version", "--short"], env=env, capture_output=True, text=True, check=True
    ).stdout
    version = [int(part) for part in re.match(r"'?v?(\d+(?:\.\d+)*)", answer)[1].split(".")]
    assert version >= [1, 21, 0], answer

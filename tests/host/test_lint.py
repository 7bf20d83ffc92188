"""`nox -s lint` on a copy of the checkout with a stack of its own: it passes on the tree as
committed, and a model change without its migration makes it fail."""

import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib

import yaml
from conftest import ROOT

from devstack.config import StackConfig
from devstack.isolated import checkout_copy, isolated_overrides


def test_a_model_change_without_its_migration_fails_lint():
    name = f"djstack-lint-{secrets.token_hex(3)}"
    workdir = checkout_copy(ROOT, f"{name}-")
    shutil.copy2(ROOT / "noxfile.py", workdir / "noxfile.py")
    env = {**os.environ, **isolated_overrides(StackConfig.load(ROOT), name)}

    def nox(*args):
        return subprocess.run(
            [sys.executable, "-m", "nox", "-f", str(workdir / "noxfile.py"), *args],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=600,
        )

    try:
        clean = nox("-s", "lint")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        models = workdir / "src" / "notes" / "models.py"
        models.write_text(
            models.read_text().replace(
                '    body = models.TextField(blank=True, default="")\n',
                '    body = models.TextField(blank=True, default="")\n'
                '    tags = models.CharField(max_length=100, blank=True, default="")\n',
            )
        )
        changed = nox("-s", "lint")
        assert changed.returncode != 0
        assert "a model change has no migration" in changed.stderr, changed.stderr
        assert "Add field tags to note" in changed.stdout + changed.stderr
    finally:
        nox("-s", "clean", "--", "--yes")
        shutil.rmtree(workdir, ignore_errors=True)


def test_pre_commit_runs_the_ruff_that_lint_pins():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pin,) = [r for r in pyproject["dependency-groups"]["lint"] if r.startswith("ruff==")]
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (ruff,) = [r for r in config["repos"] if r["repo"].endswith("/ruff-pre-commit")]
    assert ruff["rev"] == "v" + pin.removeprefix("ruff==")
    assert [hook["id"] for hook in ruff["hooks"]] == ["ruff-check", "ruff-format"]


def test_the_troubleshooting_list_names_every_section_and_links_to_it():
    """The list at the top of docs/troubleshooting.md is written by hand: it must not miss a
    section, and each link must reach one (GitHub's anchors: lower case, punctuation out)."""
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    listed = re.findall(r"^- \[(.+)\]\(#(.+)\)$", text, re.MULTILINE)
    assert [title for title, _ in listed] == sections
    for title, anchor in listed:
        assert anchor == re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-"), title

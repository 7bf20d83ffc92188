"""The host tools' environment (.nox/_tools) and the checkout it belongs to."""

import shutil
import subprocess
import sys

from conftest import ROOT

from devstack.bootstrap import forget_a_moved_checkout, requirements_digest
from devstack.isolated import checkout_copy


def test_environments_made_for_another_place_are_removed_and_the_rest_kept(tmp_path, capsys):
    environments = tmp_path / ".nox"
    (environments / "lint" / "bin").mkdir(parents=True)
    (environments / "CACHEDIR.TAG").write_text("nox's own file\n")
    (environments / "checkout").write_text("/home/someone/old-place")
    forget_a_moved_checkout(tmp_path)
    assert not (environments / "lint").exists()
    assert (environments / "CACHEDIR.TAG").is_file()
    assert (environments / "checkout").read_text() == str(tmp_path)
    assert "this checkout was in /home/someone/old-place" in capsys.readouterr().err
    (environments / "lint").mkdir()
    forget_a_moved_checkout(tmp_path)  # in place: nothing to renew
    assert (environments / "lint").is_dir()


def test_a_moved_checkout_runs_its_sessions_instead_of_a_traceback():
    """`mv shop shop-renamed`: the tools' nox still names the old place in its #! line, and
    handing over to it failed with FileNotFoundError. The checkout renews .nox instead."""
    copy = checkout_copy(ROOT, "djstack-moved-")
    try:
        shutil.copy2(ROOT / "noxfile.py", copy / "noxfile.py")
        tools = copy / ".nox" / "_tools"
        (tools / "bin").mkdir(parents=True)
        (tools / "bin" / "nox").write_text("#!/home/someone/old-place/.nox/_tools/bin/python\n")
        (tools / "bin" / "nox").chmod(0o755)
        (tools / "requirements.sha256").write_text(requirements_digest())  # up to date
        (copy / ".nox" / "checkout").write_text("/home/someone/old-place")
        result = subprocess.run(
            [sys.executable, str(copy / "noxfile.py"), "-l"],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert "this checkout was in /home/someone/old-place" in result.stderr
        assert "- up -> " in result.stdout or "* up -> " in result.stdout
    finally:
        shutil.rmtree(copy, ignore_errors=True)

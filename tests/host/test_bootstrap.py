"""The host tools' environment (.nox/_tools) and the checkout it belongs to."""

import os
import shutil
import signal
import subprocess
import sys
import time

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


def list_sessions(checkout):
    """`python3 noxfile.py -l` in the checkout, as a newcomer types it."""
    return subprocess.run(
        [sys.executable, str(checkout / "noxfile.py"), "-l"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=600,
    )


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
        result = list_sessions(copy)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert "this checkout was in /home/someone/old-place" in result.stderr
        assert "- up -> " in result.stdout or "* up -> " in result.stdout
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def test_ctrl_c_while_the_tools_install_ends_in_one_line_and_the_next_run_installs_them():
    """Ctrl-C as a terminal sends it (SIGINT to the process group) during the first run's pip
    install: a KeyboardInterrupt traceback once; the half-made environment is made again."""
    copy = checkout_copy(ROOT, "djstack-ctrl-c-")
    try:
        shutil.copy2(ROOT / "noxfile.py", copy / "noxfile.py")
        first = subprocess.Popen(
            [sys.executable, str(copy / "noxfile.py"), "-l"],
            cwd=copy,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert "installing" in first.stderr.readline()
        time.sleep(3)  # the venv is made, pip is installing
        os.killpg(first.pid, signal.SIGINT)
        message = first.stderr.read()
        assert first.wait(timeout=60) == 130, message
        assert "Traceback" not in message
        assert "noxfile.py: interrupted: the same command again installs the tools" in message
        again = list_sessions(copy)
        assert again.returncode == 0, again.stderr
        assert "- up -> " in again.stdout or "* up -> " in again.stdout
    finally:
        shutil.rmtree(copy, ignore_errors=True)

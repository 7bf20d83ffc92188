"""`up` finds out whether file events reach the app container, and polls where they do not.

The VM case (macOS, WSL 2 with the files on the Windows side) is reproduced with a FUSE view:
the stack starts from `view`, a bindfs mount of `real`, and the host edits `real`. The
container sees the new content but gets no inotify event, as through a VM's shared folder
(/work/shared/HOST.md, 2026-12-02).
"""

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT

from devstack.config import StackConfig, managed_keys, read_env_file
from devstack.file_events import HOST_DIR_VARIABLE, events_reach
from devstack.isolated import checkout_copy, isolated_overrides
from devstack.net import http, poll
from devstack.runtime import detect
from devstack.stack import Stack

KEY = "WATCHFILES_FORCE_POLLING"


def fuse_unavailable(runtime) -> str | None:
    """Why a FUSE view cannot be made here for this engine, or None."""
    if not shutil.which("bindfs"):
        return "bindfs is not installed (apt-get install bindfs)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is missing or not usable by this account"
    if os.getuid() != 0 and not shutil.which("fusermount"):
        return "fusermount is not installed (a user's FUSE mounts need it)"
    if os.getuid() != 0 and runtime.name == "docker" and not allow_other_permitted():
        # dockerd (root) makes the bind mount, and a user's FUSE mount refuses every other
        # account, root included, without allow_other.
        return "dockerd cannot reach a user's FUSE mount: /etc/fuse.conf lacks user_allow_other"
    return None


def root_is_shared() -> bool:
    """ "/" propagates mounts to other mount namespaces (systemd's default; not here)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return any(field.startswith("shared:") for field in fields[6 : fields.index("-")])
    return False


def allow_other_permitted() -> bool:
    try:
        return "user_allow_other" in Path("/etc/fuse.conf").read_text().split()
    except OSError:
        return False


def copy_without_setting(prefix: str) -> Path:
    """A copy of the checkout whose .env leaves the choice to `up`."""
    workdir = checkout_copy(ROOT, prefix)
    env = workdir / ".env"
    if env.exists():
        lines = env.read_text().splitlines()
        env.write_text("".join(f"{line}\n" for line in lines if not line.startswith(f"{KEY}=")))
    return workdir


def make_stack(root: Path, logged: list[str]) -> Stack:
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"), log=logged.append)
    name = f"djstack-fe-{secrets.token_hex(3)}"
    overrides = isolated_overrides(StackConfig.load(ROOT), name)
    stack = Stack(runtime, StackConfig.load(root, overrides=overrides))
    stack.overrides = overrides  # to read .env again after the test edits it
    return stack


def reload_config(stack: Stack) -> None:
    stack.config = StackConfig.load(stack.config.root, overrides=stack.overrides)


def remove(stack: Stack) -> None:
    stack.compose("down", "-v", capture=True, check=False, quiet=True)
    stack.runtime.remove_volumes(stack.config.volume_names())


def add_route(src: Path, token: str) -> None:
    urls = src / "config" / "urls.py"
    urls.write_text(
        urls.read_text()
        + "\nfrom django.http import HttpResponse as _ProbeResponse  # added by the test\n"
        f"urlpatterns.append(path('__fe__/', lambda request: _ProbeResponse('{token}')))\n"
    )


def reload_limit(stack: Stack) -> float:
    """3 s, the target; on a machine so busy that one Django boot (`manage.py check`, what a
    reload repeats) takes over a second, 3 boots: the reload's own cost is not the mode's."""
    name = stack.containers()["app"].name
    started = time.monotonic()
    stack.runtime.engine_cmd(
        "exec", name, "python3", "manage.py", "check", capture=True, quiet=True
    )
    return max(3.0, 3 * (time.monotonic() - started))


def served(stack: Stack, token: str):
    def check() -> tuple[bool, str]:
        status, body = http("GET", f"{stack.config.app_url}/__fe__/")
        return status == 200 and body == token, f"{status} {body[:60]}"

    return check


def assert_edit_reloads(stack: Stack, src: Path, how: str) -> None:
    """An edit of the URLconf in `src` is served within the reload limit."""
    limit, token = reload_limit(stack), secrets.token_hex(6)
    add_route(src, token)
    ok, seen, seconds = poll(served(stack, token), timeout=limit)
    assert ok, f"edit in {src} not served {how} within {limit:.1f}s (last answer: {seen})"
    print(f"reload {how}: {seconds:.2f}s (limit {limit:.1f}s)")


@pytest.fixture
def fuse_view(tmp_path, monkeypatch):
    """`view`, a FUSE view of `real` (a copy of the checkout); `up` edits its probe in
    `real`, as a VM's host side."""
    reason = fuse_unavailable(detect(os.environ.get("CONTAINER_RUNTIME"), log=lambda _: None))
    if reason:
        pytest.skip(f"no FUSE view here, so the VM case is not tested: {reason}")
    real = copy_without_setting("djstack-fe-real-")
    view = tmp_path / "view"
    view.mkdir()
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"), log=lambda _: None)
    other = "-o allow_other" if os.getuid() != 0 and allow_other_permitted() else "--no-allow-other"
    subprocess.run(["bindfs", *other.split(), str(real), str(view)], check=True)
    # Rootless Podman keeps a mount namespace of its own from its first command on, and a
    # mount made later reaches it only from a shared "/" (not here): a second view of the
    # same directory at the same path inside that namespace (`podman unshare`), open to the
    # app's mapped UID (keep-id), which is not the namespace's root that mounts it.
    in_engine = getattr(runtime, "rootless", False) and not root_is_shared()
    if in_engine:
        unshare = [*runtime.engine, "unshare"]
        subprocess.run([*unshare, "bindfs", "-o", "allow_other", str(real), str(view)], check=True)
    monkeypatch.delenv(KEY, raising=False)
    monkeypatch.setenv(HOST_DIR_VARIABLE, str(real / "src"))
    try:
        yield real, view
    finally:
        if in_engine:
            subprocess.run([*unshare, "umount", str(view)], capture_output=True)
        for _ in range(10):  # busy for a moment after the containers that used it are gone
            if subprocess.run(["fusermount", "-u", str(view)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        shutil.rmtree(real, ignore_errors=True)


def test_no_events_through_a_vm_like_mount_turn_polling_on(fuse_view):
    real, view = fuse_view
    logged: list[str] = []
    stack = make_stack(view, logged)
    try:
        # The user's own choice wins: no probe, nothing recorded.
        env = view / ".env"
        user_lines = env.read_text() if env.exists() else ""
        env.write_text(f"{user_lines}{KEY}=false\n")
        reload_config(stack)
        stack.up()
        assert KEY not in managed_keys(env), env.read_text()
        assert not any("file events" in line for line in logged), logged

        # Left to `up`: no event arrives, so it polls, records that, and says so once.
        env.write_text(user_lines)
        stack.remove()
        reload_config(stack)
        logged.clear()
        stack.up()
        said = [line for line in logged if "file events" in line]
        assert len(said) == 1 and f"{KEY}=true recorded" in said[0], logged
        assert KEY in managed_keys(env) and read_env_file(env)[KEY] == "true"

        # An edit through the underlying directory reloads the app within 3 s.
        assert_edit_reloads(stack, real / "src", "by polling through a FUSE view")
    finally:
        remove(stack)


def test_events_on_a_plain_checkout_keep_polling_off(monkeypatch):
    monkeypatch.delenv(KEY, raising=False)
    monkeypatch.delenv(HOST_DIR_VARIABLE, raising=False)
    workdir = copy_without_setting("djstack-fe-plain-")
    logged: list[str] = []
    stack = make_stack(workdir, logged)
    try:
        stack.up()
        assert not any("file events" in line for line in logged), logged
        assert KEY not in read_env_file(workdir / ".env")
        # The probe itself, where events work: well under a second.
        started = time.monotonic()
        reach, why = events_reach(stack.runtime, stack.containers()["app"].name, workdir)
        seconds = time.monotonic() - started
        assert reach is True, why
        print(f"probe where events arrive: {seconds:.2f}s")  # its cost: the bench's to judge
        assert_edit_reloads(stack, workdir / "src", "by events")
    finally:
        remove(stack)
        shutil.rmtree(workdir, ignore_errors=True)

"""Do file events from the host reach the app container? If not, the dev server polls.

On Linux a bind mount passes inotify events through. Where the engine runs in a VM (Podman
machine, Docker Desktop, Lima, WSL 2 with the files on the Windows side) an edit on the
host often raises no event inside, and the app would never reload (docs/runtimes.md). So
when `up` creates the app container it edits a probe file on the host and asks a watcher
in the container, with the image's own watchfiles, whether an event arrived in time.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

PROBE = ".djstack-file-events-probe"  # in src/ (compose.yaml mounts it on /app/src)
CONTAINER_DIR = "/app/src"
# The directory the host edits the probe in: the checkout's src/. Tests set it to the
# directory under a FUSE view the stack was started from, as a VM's host side is.
HOST_DIR_VARIABLE = "DJSTACK_FILE_EVENTS_HOST_DIR"
READY_TIMEOUT = 10.0  # the watcher's start: an exec into a container that is booting
WAIT = 1.5  # seconds the watcher waits for an event once it watches
EDITS, EDIT_GAP = 5, 0.1  # the host edits the probe this often over ~0.5 s

# Inside the container: watch src/ (not its subdirectories) with inotify, say "ready" once
# the watch exists (the first timeout yield comes after it is set up), then "event" or
# "none". Public watchfiles API only (watch's rust_timeout / yield_on_timeout).
WATCHER = f"""
import os, time
from watchfiles import watch
ready = None
for changes in watch({CONTAINER_DIR!r}, watch_filter=lambda _, path: path.endswith({PROBE!r}),
                     recursive=False, force_polling=False, rust_timeout=50,
                     yield_on_timeout=True, debounce=100, step=20, raise_interrupt=False):
    if changes:
        print("event", flush=True)
        os._exit(0)  # no teardown: the answer is out
    if ready is None:
        ready = time.monotonic()
        print("ready", flush=True)
    elif time.monotonic() - ready > {WAIT}:
        print("none", flush=True)
        os._exit(0)
"""


def host_dir(root: Path) -> Path:
    return Path(os.environ.get(HOST_DIR_VARIABLE) or root / "src")


def events_reach(runtime, container: str, root: Path) -> tuple[bool | None, str]:
    """True: a host edit raised an event in the app container; False: none arrived in
    time; None: the probe could not run (the reason is the second value). The engine's own
    exec: the compose tool's would add a second of its own start."""
    probe = host_dir(root) / PROBE
    try:
        watcher = subprocess.Popen(
            [*runtime.engine, "exec", container, "python3", "-c", WATCHER],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        return None, f"cannot run {runtime.engine[0]}: {exc.strerror}"
    try:
        if _line(watcher, READY_TIMEOUT) != "ready":
            return None, _reason(watcher)
        answer = ""
        try:
            for number in range(EDITS):  # several edits: one may land before the watch is live
                probe.write_text(f"{number}\n")
                answer = _line(watcher, EDIT_GAP)
                if answer:
                    break
        except OSError as exc:
            return None, f"cannot write {probe}: {exc.strerror}"
        answer = answer or _line(watcher, WAIT + 2)
        if answer in {"event", "none"}:
            return answer == "event", ""
        return None, _reason(watcher)
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.communicate()
        probe.unlink(missing_ok=True)


def _line(process: subprocess.Popen, timeout: float) -> str:
    """The watcher's next line, or "" when none comes within `timeout`."""
    deadline = time.monotonic() + timeout
    buffered = b""
    while b"\n" not in buffered:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([process.stdout], [], [], left)[0]:
            return ""
        chunk = os.read(process.stdout.fileno(), 64)
        if not chunk:
            return ""
        buffered += chunk
    return buffered.decode(errors="replace").strip()


def _reason(process: subprocess.Popen) -> str:
    if process.poll() is None:
        return "the watcher in the app container did not answer"
    lines = process.stderr.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"the watcher exited with code {process.returncode}"


def watching_mode(stack) -> str:
    """How the app container's watchfiles notices edits, from the environment it runs with:
    "polling" or "events" (watchfiles' own reading of WATCHFILES_FORCE_POLLING)."""
    result = stack.exec(
        "app", "printenv", "WATCHFILES_FORCE_POLLING", capture=True, check=False, quiet=True
    )
    value = result.stdout.decode(errors="replace").strip().lower()
    return "polling" if value and value not in {"false", "disable", "disabled"} else "events"

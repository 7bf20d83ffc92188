"""Talking to services over the network: free ports, HTTP, and readiness probes that speak
PostgreSQL's and Redis' own protocols on their published ports."""

from __future__ import annotations

import errno
import json
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_in_use(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def http(
    method: str, url: str, body: dict | None = None, headers: dict[str, str] | None = None
) -> tuple[int | None, str]:
    """(status, body); (None, why) when nothing complete came back. A response cut off
    mid-way (a dev server restarting after an edit) counts as no answer, not as an error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        try:
            response = urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as error:
            response = error  # an error status: its body, which may be cut off too, is read below
        with response:
            return response.status, response.read().decode(errors="replace")
    except (OSError, HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def poll(
    check: Callable[[], tuple[bool, str]], timeout: float, interval: float = 0.05
) -> tuple[bool, str, float]:
    """Call `check` until it says ok or `timeout` passes: (ok, last detail, seconds)."""
    started = time.monotonic()
    while True:
        ok, seen = check()
        elapsed = time.monotonic() - started
        if ok or elapsed > timeout:
            return ok, seen, elapsed
        time.sleep(interval)


def postgres_answers(
    host: str, port: int, user: str, database: str, timeout: float = 2
) -> tuple[bool, str]:
    """What pg_isready checks: the server reads a startup packet and asks for a password
    ("R"), or says why it cannot take connections yet ("E", e.g. still starting up)."""
    params = (
        b"".join(
            key + b"\0" + value.encode() + b"\0"
            for key, value in ((b"user", user), (b"database", database))
        )
        + b"\0"
    )
    packet = struct.pack("!ii", 8 + len(params), 3 << 16) + params  # protocol 3.0
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(packet)
            reply = connection.recv(4096)
    except OSError as exc:
        return False, f"no answer on {host}:{port} ({exc})"
    if reply[:1] == b"R":
        return True, "accepting connections"
    if reply[:1] == b"E":  # fields: a type byte, then text up to NUL; "M" is the message
        fields = {field[:1]: field[1:].decode(errors="replace") for field in reply[5:].split(b"\0")}
        return False, fields.get(b"M", "refused the connection")
    return False, f"unexpected answer on {host}:{port}: {reply[:16]!r}"


def redis_answers(host: str, port: int, timeout: float = 2) -> tuple[bool, str]:
    """PING: "+PONG" when ready; "-LOADING ..." while it reads its data back from disk."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(b"PING\r\n")
            reply = connection.recv(256).decode(errors="replace").strip()
    except OSError as exc:
        return False, f"no answer on {host}:{port} ({exc})"
    # A password-protected server answering NOAUTH is up, too.
    return reply == "+PONG" or reply.startswith("-NOAUTH"), reply or "empty answer"

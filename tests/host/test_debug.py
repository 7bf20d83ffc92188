"""`nox -s debug`: a real Debug Adapter Protocol client attaches to the published port, stops
at a breakpoint in a view during a real request, continues, and gets the response; detaches
and attaches again at once, three times, pausing and continuing the app each time; again
after a reload; `nox -s up` puts the app back to normal. On an isolated stack
(conftest.isolated_stack), which bind-mounts this checkout: touching a view there reloads a
running developer stack too."""

import json
import queue
import socket
import threading
import time
import urllib.request

from conftest import ROOT, nox

VIEWS = ROOT / "src" / "notes" / "views.py"
# A one-line statement the notes list runs (GET /api/v1/notes/); a statement over several lines
# would stop twice (at its first line again for the call).
STATEMENT = "        return selectors.note_list()"
LINE = VIEWS.read_text().splitlines().index(STATEMENT) + 1


class DebugAdapter:
    """A minimal DAP client: Content-Length framed JSON over TCP, read by a thread."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(None)
        self.seq, self.inbox, self.backlog = 0, queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.sock.makefile("rb")
        try:
            while True:
                headers = {}
                while line := stream.readline().strip():
                    name, _, value = line.decode().partition(":")
                    headers[name.lower()] = value.strip()
                if "content-length" not in headers:
                    break
                self.inbox.put(json.loads(stream.read(int(headers["content-length"]))))
        except (OSError, ValueError):
            pass
        self.inbox.put(None)  # closed

    def send(self, command: str, **arguments) -> int:
        self.seq += 1
        body = json.dumps(
            {"seq": self.seq, "type": "request", "command": command, "arguments": arguments}
        ).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def wait(self, wanted, timeout: float = 30) -> dict:
        for message in self.backlog:
            if wanted(message):
                self.backlog.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            message = self.inbox.get(timeout=max(0.1, deadline - time.monotonic()))
            if message is None:
                raise ConnectionError("the debug adapter closed the connection")
            if wanted(message):
                return message
            self.backlog.append(message)

    def response(self, seq: int) -> dict:
        reply = self.wait(lambda m: m["type"] == "response" and m["request_seq"] == seq)
        assert reply["success"], reply
        return reply

    def event(self, name: str) -> dict:
        return self.wait(lambda m: m["type"] == "event" and m["event"] == name)

    def close(self) -> None:
        self.sock.close()


def attach(host: str, port: int) -> tuple[DebugAdapter, int]:
    """initialize, attach with the path mapping launch.json uses; returns the pending attach."""
    dap = DebugAdapter(host, port)
    dap.response(
        dap.send(
            "initialize",
            clientID="djstack-test",
            adapterID="debugpy",
            pathFormat="path",
            linesStartAt1=True,
            columnsStartAt1=True,
        )
    )
    pending = dap.send(
        "attach",
        justMyCode=True,
        pathMappings=[{"localRoot": str(ROOT / "src"), "remoteRoot": "/app/src"}],
    )
    initialized(dap, pending)
    return dap, pending


def initialized(dap: DebugAdapter, attach: int) -> None:
    """The `initialized` event, or the failed attach instead ("already being debugged")."""
    answer = dap.wait(
        lambda m: (
            (m["type"], m.get("event")) == ("event", "initialized")
            or (m["type"] == "response" and m["request_seq"] == attach)
        )
    )
    assert answer["type"] == "event" or answer["success"], answer
    if answer["type"] == "response":
        dap.backlog.append(answer)
        dap.event("initialized")


def detach(dap: DebugAdapter) -> float:
    """What VS Code's Disconnect does to an attached session: the app runs on. Returns when
    the answer came (time.monotonic())."""
    dap.response(dap.send("disconnect", terminateDebuggee=False))
    detached = time.monotonic()
    dap.close()
    return detached


def pause_and_continue(config) -> tuple[int, float]:
    """Attach, pause the app's threads, continue, detach; returns the id of the process and
    how long the debugger took to answer `initialize` on the new connection (the re-attach,
    as a client sees it)."""
    asked = time.monotonic()
    dap = DebugAdapter(config.host, config.port("debugger"))
    try:
        dap.response(dap.send("initialize", adapterID="debugpy", linesStartAt1=True))
        accepted = time.monotonic() - asked
        pending = dap.send("attach", justMyCode=True)
        initialized(dap, pending)
        dap.response(dap.send("configurationDone"))
        dap.response(pending)
        process = dap.event("process")["body"]["systemProcessId"]
        threads = dap.response(dap.send("threads"))["body"]["threads"]
        dap.response(dap.send("pause", threadId=threads[0]["id"]))
        stopped = dap.event("stopped")["body"]
        assert stopped["reason"] == "pause", stopped
        dap.response(dap.send("continue", threadId=stopped["threadId"]))
        with urllib.request.urlopen(f"{config.app_url}/api/v1/health/", timeout=30) as response:
            assert response.status == 200  # the app runs on
        detach(dap)
        return process, accepted
    finally:
        dap.close()


def stop_at_the_breakpoint(config) -> int:
    """Attach, break in the notes list during a real request, continue, get the response;
    returns the id of the process that served it."""
    dap, pending = attach(config.host, config.port("debugger"))
    try:
        reply = dap.response(
            dap.send("setBreakpoints", source={"path": str(VIEWS)}, breakpoints=[{"line": LINE}])
        )
        assert reply["body"]["breakpoints"][0]["line"] == LINE
        dap.response(dap.send("configurationDone"))
        dap.response(pending)
        process = dap.event("process")["body"]["systemProcessId"]

        answer: dict = {}

        def get() -> None:
            with urllib.request.urlopen(f"{config.app_url}/api/v1/notes/", timeout=120) as response:
                answer.update(status=response.status, body=json.loads(response.read()))

        request = threading.Thread(target=get)
        request.start()
        stopped = dap.event("stopped")["body"]
        assert stopped["reason"] == "breakpoint", stopped
        trace = dap.response(dap.send("stackTrace", threadId=stopped["threadId"], levels=1))
        frame = trace["body"]["stackFrames"][0]
        assert (frame["source"]["path"], frame["line"]) == (str(VIEWS), LINE), frame
        assert frame["name"] == "get_queryset"
        time.sleep(1)
        assert request.is_alive() and not answer, "the request did not wait at the breakpoint"
        dap.response(dap.send("continue", threadId=stopped["threadId"]))
        request.join(60)
        assert answer.get("status") == 200 and "count" in answer["body"], answer
        # Detach without waiting for the answer, as a quick client does: the next attach
        # comes while this session is still closing.
        dap.send("disconnect", terminateDebuggee=False)
        return process
    finally:
        dap.close()


def test_debug_stops_at_a_breakpoint_in_a_view_and_up_ends_it(isolated_stack):
    config = isolated_stack.config
    result = nox(isolated_stack, "-s", "debug")
    assert result.returncode == 0, result.stderr
    where = f"{config.host}:{config.port('debugger')}"
    assert f"debugpy listens on {where}" in result.stderr
    first = stop_at_the_breakpoint(config)

    # Detach and attach again, at once, in the same process: the debugger takes each client.
    # debugpy's separate adapter process stopped answering for good after a quick re-attach,
    # or after a connection closed before its greeting, such as this port probe.
    socket.create_connection((config.host, config.port("debugger")), timeout=10).close()
    for _ in range(3):
        process, accepted = pause_and_continue(config)
        assert process == first
        assert accepted < 5, f"a re-attach took {accepted:.1f}s to be answered"

    # Reload still works: a view written again (same content) restarts the server as a fresh
    # process, which listens again; the debugger attaches to that one.
    VIEWS.write_text(VIEWS.read_text())
    time.sleep(3)
    deadline, again = time.monotonic() + 60, first
    while again == first:
        assert time.monotonic() < deadline, "no debugger in a reloaded server after 60s"
        try:
            again = stop_at_the_breakpoint(config)
        except (ConnectionError, OSError, queue.Empty):
            time.sleep(1)
    assert pause_and_continue(config)[0] == again

    result = nox(isolated_stack, "-s", "up")
    assert result.returncode == 0, result.stderr
    env = isolated_stack.exec("app", "printenv", "DEBUGPY", capture=True, check=False)
    assert env.stdout.decode().strip() == "false"
    try:  # nothing listens behind the published port any more
        dap = DebugAdapter(config.host, config.port("debugger"))
        try:
            dap.send("initialize", adapterID="debugpy")
            dap.wait(lambda m: True, timeout=5)
            raise AssertionError("a debug adapter still answers after `nox -s up`")
        except (ConnectionError, OSError, queue.Empty):
            pass
        finally:
            dap.close()
    except OSError:
        pass  # refused: as good

"""A send after the client has gone does not raise OSError.

The client sends its handshake and closes the connection before the application answers;
then the application sends its denial. The server claims spec 2.4, which says such a send
raises ``OSError`` (so that the application, and ``asgi_ws_deny.deny()``, know that nobody
got the answer). uvicorn's legacy websockets implementation makes it a silent no-op;
granian accepts the start and raises ``RuntimeError('ASGI flow error: Connection already
upgraded')`` on the body, which looks like an application bug. The client leaves with a
FIN and lets the app go on once the server has closed its side too, the sign that it has
read the FIN (a server that keeps its side open is given half a second): a send before that
races the server's reading of the FIN, and one that wins goes out as if the client were there.

Conformance cases 4.2, 5.8 of asgi-ws-deny (conformance/expectations.toml).

Run it with the server installed (`pip install <server>`), from anywhere:

    python conformance/repros/send_after_client_left.py [--server NAME]

It starts the server on a free 127.0.0.1 port with the application below, talks to it from a
raw socket, prints what came back, and stops the server by its pid. It exits 1 while the
server behaves so, 0 once it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

#: The servers this runs on (the first is the default).
SERVERS = (
    "uvicorn-legacy",
    "granian",
    "uvicorn-sansio",
)
#: The cases of the conformance matrix this shows.
CASES = (
    "4.2",
    "5.8",
)


import asyncio  # noqa: E402  (the servers above run applications on asyncio)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] != "websocket":
        return None
    attempt = scope["path"].strip("/")
    spec_version = (scope.get("asgi") or {}).get("spec_version")
    record("waiting", attempt=attempt, spec_version=spec_version)
    go = Path(f"{os.environ['REPRO_EVENTS']}.{attempt}.go")  # made once the client has gone
    for _ in range(500):
        if go.exists():  # noqa: ASYNC240  (one stat; another process creates the file)
            break
        await asyncio.sleep(0.01)
    headers = [(b"content-length", b"2")]
    try:
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        record("start-sent", attempt=attempt)
        await send({"type": "websocket.http.response.body", "body": b"no"})
        record("body-sent", attempt=attempt)
    except Exception as exc:
        record("send-raised", attempt=attempt, oserror=isinstance(exc, OSError), error=repr(exc))
    record("returned", attempt=attempt)
    return None


def server_closed(sock: socket.socket, within: float) -> bool:
    """Whether the server closes its side of the connection (b"") within ``within`` seconds."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True
    return False


def attempt(server: Server, number: int) -> str | None:
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request(f"/{number}"))
        if server.wait_event("waiting") is None:
            return "the app never ran"
        sock.shutdown(socket.SHUT_WR)  # the client's FIN
        ended = server_closed(sock, CLOSE_WAIT)
        print(f"attempt {number}: the server {'closed' if ended else 'kept'} its side")
    Path(f"{server.events_path}.{number}.go").touch()
    deadline = time.monotonic() + TIMEOUT
    while True:  # poll for the app's return, with a deadline
        events = [e for e in server.events() if e.get("attempt") == str(number)]
        if any(e["event"] == "returned" for e in events) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    print(f"attempt {number}, the app saw: {events}")
    if not any(e["event"] == "returned" for e in events):
        return "the app did not return"
    raised = [e for e in events if e["event"] == "send-raised"]
    if raised and raised[0]["oserror"]:
        return None
    if raised:
        sent = (
            " after the start was accepted"
            if any(e["event"] == "start-sent" for e in events)
            else ""
        )
        return f"the send raised {raised[0]['error']}{sent}, not OSError"
    spec = events[0]["spec_version"] or "2.0"
    if tuple(int(part) for part in spec.split(".")) < (2, 4):
        return None  # before 2.4 a no-op is allowed
    return f"spec_version {spec}, yet the send after the client left was a silent no-op"


def check(server: Server) -> str | None:
    return attempt(server, 1)


# --- The harness: the same in every repro, so that each file stands alone --------------------

HOST = "127.0.0.1"
#: How long a response is awaited, and then the close of the connection after it.
TIMEOUT = 2.0
CLOSE_WAIT = 0.5
#: How to start each server (after ``python -m``): the app is this file's ``app``.
COMMANDS = {
    "uvicorn-sansio": "uvicorn --host {host} --port {port} --ws websockets-sansio {app}",
    "uvicorn-legacy": "uvicorn --host {host} --port {port} --ws websockets {app}",
    "uvicorn-wsproto": "uvicorn --host {host} --port {port} --ws wsproto {app}",
    "hypercorn-asyncio": "hypercorn --bind {host}:{port} --workers 0 -k asyncio {app}",
    "hypercorn-trio": "hypercorn --bind {host}:{port} --workers 0 -k trio {app}",
    "hypercorn-h2": "hypercorn --bind {host}:{port} --workers 0 -k asyncio {app}",
    "anycorn-asyncio": "anycorn --bind {host}:{port} --workers 0 -k asyncio {app}",
    "anycorn-trio": "anycorn --bind {host}:{port} --workers 0 -k trio {app}",
    "daphne": "daphne --bind {host} --port {port} {app}",
    "granian": "granian --interface asgi --host {host} --port {port} --workers 1 {app}",
    "gunicorn": "gunicorn -k asgi --bind {host}:{port} --workers 1 --graceful-timeout 2 "
    "--no-control-socket {app}",
}


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def record(event: str, **data: Any) -> None:
    """Write what the app saw to the file the repro reads (the app runs in the server)."""
    with open(os.environ["REPRO_EVENTS"], "a", encoding="utf-8") as file:
        file.write(json.dumps({"event": event, **data}) + "\n")


def give_up(message: str) -> NoReturn:
    """The repro could not run (the server is missing or did not start): exit status 2."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


class Server:
    """The server on a free port of 127.0.0.1, its output in a file, stopped by its pid."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix="repro-"))
        self.events_path = self.dir / "events.jsonl"
        self.log_path = self.dir / "server.log"

    def __enter__(self) -> Server:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            self.port = sock.getsockname()[1]
        here = Path(__file__).resolve()
        command = COMMANDS[self.name].format(host=HOST, port=self.port, app=f"{here.stem}:app")
        env = {**os.environ, "PYTHONPATH": str(here.parent), "REPRO_EVENTS": str(self.events_path)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *command.split()],
                cwd=here.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while True:  # ready when the port answers; poll with a deadline
            if self.process.poll() is not None:
                give_up(f"{self.name} exited before listening:\n{self.log()}")
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    give_up(f"{self.name} did not listen:\n{self.log()}")
                time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        with contextlib.suppress(ProcessLookupError):
            # Whatever the server forked is in its session's process group.
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        lines = self.events_path.read_text("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def wait_event(self, name: str, timeout: float = TIMEOUT) -> dict[str, Any] | None:
        """The app's first event ``name``, polled for until ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [event for event in self.events() if event["event"] == name]
            if found or time.monotonic() > deadline:
                return found[0] if found else None
            time.sleep(0.01)


@dataclass
class Response:
    """What came back on the connection: raw bytes, parsed, and whether it was closed."""

    raw: bytes = b""
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    closed: bool = False
    error: str = ""

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name]

    def describe(self) -> str:
        if self.error:
            return self.error
        head = "no response" if not self.raw else repr(self.raw[:600])
        return f"{head}; connection {'closed' if self.closed else 'still open'}"


def request(path: str, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {HOST}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse(response: Response) -> bool:
    """Parse ``response.raw``; whether the response is complete."""
    head, sep, rest = response.raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    status_line, *lines = head.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    response.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    response.headers = [
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(b":") for line in lines)
    ]
    if response.status == 101:
        response.body = rest
        return True
    if response.header(b"transfer-encoding") == [b"chunked"]:
        body = b""
        while True:
            size_line, sep, rest = rest.partition(b"\r\n")
            if not sep:
                return False
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                response.body = body
                return True
            if len(rest) < size + 2:
                response.body = body + rest[:size]
                return False
            body, rest = body + rest[:size], rest[size + 2 :]
    response.body = rest
    length = response.header(b"content-length")
    return bool(length) and length[0].isdigit() and len(rest) >= int(length[0])


def read(sock: socket.socket, response: Response, close_wait: float = CLOSE_WAIT) -> Response:
    """Read until the connection closes, or the response is whole and ``close_wait`` passed,
    or nothing arrives within ``TIMEOUT``."""
    complete = parse(response)
    deadline = time.monotonic() + TIMEOUT
    while True:
        wait = close_wait if complete else deadline - time.monotonic()
        if wait <= 0:
            return response
        sock.settimeout(wait)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return response
        except ConnectionError:
            response.closed = True
            return response
        if not data:
            response.closed = True
            return response
        response.raw += data
        complete = parse(response)
        if complete:
            deadline = time.monotonic()


def handshake(
    server: Server,
    path: str = "/",
    headers: tuple[tuple[str, str], ...] = (),
    close_wait: float = CLOSE_WAIT,
) -> Response:
    """One WebSocket handshake over HTTP/1.1 from a raw socket."""
    try:
        sock = socket.create_connection((HOST, server.port), timeout=TIMEOUT)
    except OSError as exc:
        return Response(closed=True, error=f"cannot connect: {exc}")
    with sock:
        sock.sendall(request(path, headers))
        return read(sock, Response(), close_wait)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0])
    name = parser.parse_args().server
    with Server(name) as server:
        problem = check(server)
        log = server.log()
    print(f"{name}: {problem}" if problem else f"{name}: as it should be")
    if problem and log.strip():
        print(f"server output:\n{log[-3000:]}")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())

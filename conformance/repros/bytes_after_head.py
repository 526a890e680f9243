"""Bytes that follow the request head, on the same connection, break the denial.

A client pipelines a second request after its WebSocket handshake, or sends its first frame
right after the head without waiting for the answer (both are allowed to arrive before the
server answers). The application denies with a complete 401 (``content-length: 2``, body
``no``). A server should answer the handshake with that 401 and stay up; here it answers 400
instead of the application's response, writes a second response for the bytes that followed,
or exits altogether (hypercorn's trio worker, also on a second handshake on a connection whose
application still awaits ``receive()``).

Conformance cases 8.1 to 8.4, 8.6, 8.8 and 8.9 to 8.12 of asgi-ws-deny
(conformance/expectations.toml).

Run it with the server installed (`pip install <server>`), from anywhere:

    python conformance/repros/bytes_after_head.py [--server NAME]

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
    "hypercorn-trio",
    "hypercorn-asyncio",
    "granian",
    "uvicorn-sansio",
)
#: The cases of the conformance matrix this shows.
CASES = (
    "8.1",
    "8.2",
    "8.3",
    "8.4",
    "8.6",
    "8.8",
    "8.9",
    "8.10",
    "8.11",
    "8.12",
)

#: A masked text frame "hi", as a client sends it (RFC 6455 section 5.2).
FRAME = bytes([0x81, 0x82, 1, 2, 3, 4, ord("h") ^ 1, ord("i") ^ 2])


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] != "websocket":
        return None
    await receive()
    headers = [(b"content-length", b"2")]
    await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": b"no"})
    if scope["path"] == "/deny-then-receive":
        await receive()  # still running, as many applications are, while the client goes on
    return None


def after_head(server: Server, path: str, extra: bytes) -> Response:
    """A handshake with ``extra`` written in the same segment, right after its head."""
    try:
        sock = socket.create_connection((HOST, server.port), timeout=TIMEOUT)
    except OSError as exc:
        return Response(closed=True, error=f"cannot connect: {exc}")
    with sock:
        sock.sendall(request(path) + extra)
        return read(sock, Response(), CLOSE_WAIT)


def reused(server: Server, path: str) -> Response:
    """A handshake, its answer read, then a second handshake on the same connection."""
    try:
        sock = socket.create_connection((HOST, server.port), timeout=TIMEOUT)
    except OSError as exc:
        return Response(closed=True, error=f"cannot connect: {exc}")
    with sock:
        sock.sendall(request(path))
        first = read(sock, Response(), CLOSE_WAIT)
        if not first.closed:
            with contextlib.suppress(OSError):
                sock.sendall(request(path))
                read(sock, Response(), CLOSE_WAIT)
        return first


def check(server: Server) -> str | None:
    problems = []
    for what, extra in (("a pipelined request", request("/deny")), ("a frame", FRAME)):
        for path in ("/deny", "/deny-then-receive"):
            response = after_head(server, path, extra)
            print(f"{path} + {what}: {response.describe()}")
            second = response.raw.find(b"HTTP/1.1 ", 1)
            if response.status != 401:
                problems.append(f"{path} + {what}: {response.status or 'no response'}, not 401")
            elif second != -1 and not response.raw.startswith(b"HTTP/1.1 401", second):
                problems.append(
                    f"{path} + {what}: a second response {response.raw[second:][:20]!r}"
                )
    response = reused(server, "/deny-then-receive")
    print(f"/deny-then-receive, then a second handshake: {response.describe()}")
    deadline = time.monotonic() + TIMEOUT
    while server.alive() and time.monotonic() < deadline:  # a server on its way out
        if handshake(server, "/deny").status == 401:
            break
    if not server.alive():
        problems.append("the server exited")
    return "; ".join(problems) or None


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

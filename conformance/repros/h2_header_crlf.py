"""Over HTTP/2, a denial header value with CR LF is sent as is.

Over HTTP/2 (RFC 8441 extended CONNECT), the application's denial has the header
``x-injected: a\r\nx-split: yes``. A field value with CR or LF makes the message
malformed (RFC 9113 section 8.2.1), and a proxy that turns it back into HTTP/1.1 splits it
into two headers. The server should refuse it (over HTTP/1.1, h11 does).

Conformance case 2.13 of asgi-ws-deny (conformance/expectations.toml).

Run it with the server installed (`pip install <server>`), from anywhere:

    python conformance/repros/h2_header_crlf.py [--server NAME]

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

import h2.config
import h2.connection
import h2.events

#: The servers this runs on (the first is the default).
SERVERS = ("hypercorn-h2",)
#: The cases of the conformance matrix this shows.
CASES = ("2.13",)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] != "websocket":
        return None
    headers = [(b"x-injected", b"a\r\nx-split: yes"), (b"content-length", b"2")]
    try:
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"no"})
    except Exception as exc:
        record("send-raised", error=repr(exc))
    return None


def check(server: Server) -> str | None:
    response = h2_handshake(server)
    print(response.describe())
    bad = [(n, v) for n, v in response.headers if b"\r" in v or b"\n" in v]
    return f"header values with CR/LF sent: {bad}" if bad else None


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
    """What came back on the HTTP/2 stream: the HEADERS, the DATA bytes, how it ended."""

    status: bytes | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    error: str = ""

    def describe(self) -> str:
        if self.status is None and not self.error:
            return "no response"
        text = f":status {self.status!r} headers {self.headers!r} body {self.body!r}"
        text += ", stream ended" if self.ended else ", stream still open"
        return text + (f"; client error: {self.error}" if self.error else "")


def h2_handshake(server: Server, path: str = "/") -> Response:
    """One WebSocket handshake by RFC 8441 extended CONNECT over HTTP/2 cleartext.

    The frames are read by hand as well as through ``h2`` (with its checks of inbound headers
    off), so that what the server wrote is reported even where ``h2`` refuses it.
    """
    response = Response()
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
    )
    conn.initiate_connection()
    stream: int | None = None
    try:
        sock = socket.create_connection((HOST, server.port), timeout=TIMEOUT)
    except OSError as exc:
        response.error = f"cannot connect: {exc}"
        return response
    with sock:
        sock.sendall(conn.data_to_send())
        pending = b""
        deadline = time.monotonic() + TIMEOUT
        while not response.ended:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionError):
                break
            if not data:
                break
            pending += data
            while len(pending) >= 9 and len(pending) >= 9 + int.from_bytes(pending[:3], "big"):
                size = 9 + int.from_bytes(pending[:3], "big")
                frame, pending = pending[:size], pending[size:]
                kind, flags = frame[3], frame[4]
                ours = stream is not None and int.from_bytes(frame[5:9], "big") == stream
                if ours and kind == 0x0:  # DATA
                    response.body += frame[9:]
                if ours and (kind == 0x3 or (kind in (0x0, 0x1) and flags & 0x1)):
                    response.ended = True  # RST_STREAM, or END_STREAM
                if response.error:
                    continue
                try:
                    events = conn.receive_data(frame)
                except Exception as exc:  # the server broke HTTP/2: say so, read on
                    response.error = f"{type(exc).__name__}: {exc}"
                    continue
                for event in events:
                    if isinstance(event, h2.events.RemoteSettingsChanged) and stream is None:
                        if not conn.remote_settings.enable_connect_protocol:
                            response.error = "no SETTINGS_ENABLE_CONNECT_PROTOCOL"
                            return response
                        stream = conn.get_next_available_stream_id()
                        request = [
                            (b":method", b"CONNECT"),
                            (b":protocol", b"websocket"),
                            (b":scheme", b"http"),
                            (b":path", path.encode()),
                            (b":authority", f"{HOST}:{server.port}".encode()),
                            (b"sec-websocket-version", b"13"),
                        ]
                        conn.send_headers(stream, request)
                    elif isinstance(
                        event,
                        h2.events.ResponseReceived | h2.events.InformationalResponseReceived,
                    ):
                        headers = list(event.headers or ())
                        response.status = dict(headers).get(b":status")
                        response.headers = [(n, v) for n, v in headers if n != b":status"]
                sock.sendall(conn.data_to_send())
    return response


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

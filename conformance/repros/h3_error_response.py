"""Over HTTP/3, hypercorn's own error responses are malformed: the client drops the connection.

When the application closes before accepting (``websocket.close``: the server answers 403) or
raises before any message (500), hypercorn writes its own response with the header
``connection: close`` (protocol/ws_stream.py, ``_send_error_response``). Over HTTP/3 a
connection-specific header makes the message malformed (RFC 9114 section 4.2: "An endpoint
MUST NOT generate an HTTP/3 field section containing connection-specific fields"), so an
HTTP/3 client closes the whole QUIC connection with H3_MESSAGE_ERROR: the 403 never arrives.
Over HTTP/2 the h2 library strips the header, and the client reads the 403. anycorn, the AnyIO
fork of hypercorn, does the same on asyncio and on trio.

Measured with hypercorn 0.18.0, anycorn 0.20.1 and aioquic 1.7.2 (conformance/tests/test_h3.py).
The request is an RFC 9220 extended CONNECT; the certificate is self-signed, made for this run.

Run it with hypercorn's HTTP/3 extra installed (`pip install 'hypercorn[h3]'`), from anywhere:

    python conformance/repros/h3_error_response.py [--server NAME]

It starts the server on a free 127.0.0.1 port (TCP and QUIC) with the application below, sends
two handshakes over HTTP/3, prints what came back, and stops the server by its pid. It exits 1
while the server behaves so, 0 once it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: The servers this runs on (the first is the default): hypercorn and anycorn over QUIC.
SERVERS = ("hypercorn-h3", "anycorn-h3", "anycorn-h3-trio")
#: The cases this shows, run over HTTP/3 (conformance/tests/test_h3.py): close before accept
#: (3.1) and an exception before any message (3.4).
CASES = ("3.1", "3.4")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] != "websocket":
        return None
    if scope["path"] == "/raise":
        raise RuntimeError("a deliberate error before any message")
    await send({"type": "websocket.close", "code": 1000})
    return None


def check(server: Server) -> str | None:
    problems = []
    for path, status in (("/close", b"403"), ("/raise", b"500")):
        response = h3_handshake(server, path)
        print(f"{path}: {response.describe()}")
        if response.status != status:
            problems.append(
                f"{path}: expected :status {status.decode()}, got {response.describe()}"
            )
    return "; ".join(problems) or None


# --- The harness: as in the other repros, with QUIC, TLS and an HTTP/3 client --------------

HOST = "127.0.0.1"
#: How long a response is awaited, and then the close of the connection after it.
TIMEOUT = 2.0
CLOSE_WAIT = 0.5
#: How to start the server (after ``python -m``): TCP (TLS) and QUIC on one port number.
COMMANDS = {
    "hypercorn-h3": "hypercorn --bind {host}:{port} --quic-bind {host}:{port} --certfile "
    "{certfile} --keyfile {keyfile} --workers 0 -k asyncio {app}",
    "anycorn-h3": "anycorn --bind {host}:{port} --quic-bind {host}:{port} --certfile "
    "{certfile} --keyfile {keyfile} --workers 0 -k asyncio {app}",
    "anycorn-h3-trio": "anycorn --bind {host}:{port} --quic-bind {host}:{port} --certfile "
    "{certfile} --keyfile {keyfile} --workers 0 -k trio {app}",
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
        certfile, keyfile = certificate(self.dir)
        command = COMMANDS[self.name].format(
            host=HOST, port=self.port, app=f"{here.stem}:app", certfile=certfile, keyfile=keyfile
        )
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


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1, made for this run (QUIC needs TLS)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


@dataclass
class Response:
    """What came back on the HTTP/3 stream, and how the QUIC connection ended."""

    status: bytes | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    #: The client's CONNECTION_CLOSE: aioquic found the server's message malformed.
    closed_by_client: str = ""

    def describe(self) -> str:
        text = "no response" if self.status is None else f":status {self.status!r}"
        if self.status is not None:
            text += f" headers {self.headers!r} body {self.body!r}"
        if self.closed_by_client:
            text += f"; the client closed the connection: {self.closed_by_client}"
        return text


class Client(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.events: asyncio.Queue[Any] = asyncio.Queue()

    def quic_event_received(self, event: QuicEvent) -> None:
        for http_event in self.http.handle_event(event):
            self.events.put_nowait(http_event)
        self.events.put_nowait(event)


async def exchange(port: int, path: str) -> Response:
    response = Response()
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE
    )
    async with connect(HOST, port, configuration=configuration, create_protocol=Client) as client:
        assert isinstance(client, Client)
        while client.http.received_settings is None:
            await client.events.get()
        stream = client._quic.get_next_available_stream_id()
        request = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":path", path.encode()),
            (b":authority", f"{HOST}:{port}".encode()),
            (b"sec-websocket-version", b"13"),
        ]
        client.http.send_headers(stream, request)
        client.transmit()
        while not response.ended:
            event = await client.events.get()
            if isinstance(event, HeadersReceived) and event.stream_id == stream:
                headers = list(event.headers)
                response.status = dict(headers).get(b":status")
                response.headers = [(n, v) for n, v in headers if not n.startswith(b":")]
                response.ended = event.stream_ended
            elif isinstance(event, DataReceived) and event.stream_id == stream:
                response.body += event.data
                response.ended = event.stream_ended
            elif isinstance(event, ConnectionTerminated):
                response.closed_by_client = f"{event.error_code:#x} {event.reason_phrase}"
                response.ended = True
    return response


def h3_handshake(server: Server, path: str = "/") -> Response:
    """One WebSocket handshake by RFC 9220 extended CONNECT over HTTP/3 (QUIC, 127.0.0.1)."""
    try:
        return asyncio.run(asyncio.wait_for(exchange(server.port, path), TIMEOUT))
    except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
        return Response()  # nothing within TIMEOUT


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

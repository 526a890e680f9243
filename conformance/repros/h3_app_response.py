"""Over HTTP/3, hypercorn sends the application's denial response as given, unchecked.

Over HTTP/3 (RFC 9220 extended CONNECT) hypercorn keeps a ``websocket.http.response.start``
until the first body message (``WSStream.app_send``, protocol/ws_stream.py: a second start
replaces the first), then ``_send_rejection`` writes ``:status`` from ``int(status)`` and the
headers through ``build_and_validate_headers`` (utils.py), which only strips whitespace;
``H3Protocol.stream_send`` (protocol/h3.py) hands them to aioquic, which sends what it is given,
and the body follows whatever its length. So, with no error to the application:

- a second start replaces the first (the client reads the 402 of the second);
- ``:status 101`` is sent, which HTTP/3 does not support (RFC 9114 section 4.5), and the
  body's DATA then raises in aioquic; ``:status 99`` and ``:status 600`` are sent too (RFC
  9110 section 15: 100 to 599);
- a header value with CR LF is sent as is (RFC 9110 section 5.5; malformed in HTTP/3, RFC
  9114 section 4.1.2);
- a ``content-length`` that does not match the body is sent with it (malformed, RFC 9114
  section 4.1.2).

The client rejects the 101, the 99, the CR LF and both lengths as malformed and closes the QUIC
connection (H3_MESSAGE_ERROR), so nothing of the denial reaches it. Besides, with QUIC bound
every response carries ``alt-svc: h3=":PORT"; ma=3600`` (``Config.response_headers``,
config.py), a denial too, over HTTP/3 itself; and the scope claims ``spec_version`` "2.3" (a
send after the client left may be a no-op; 2.4 says it raises). anycorn, the AnyIO fork of
hypercorn, does the same on asyncio and on trio.

Conformance cases 1.2, 2.2, 2.8, 2.10, 2.11, 2.12, 2.13, 2.14 and 2.15 of asgi-ws-deny
(conformance/expectations.toml), measured with hypercorn 0.18.0, anycorn 0.20.1 and aioquic
1.7.2. The certificate is self-signed, made for this run. The client prints each header block
as it decoded it, before aioquic checks it (a malformed one is otherwise lost with the
connection).

Run it with hypercorn's HTTP/3 extra installed (`pip install 'hypercorn[h3]'`), from anywhere:

    python conformance/repros/h3_app_response.py [--server NAME]

It starts the server on a free 127.0.0.1 port (TCP and QUIC) with the application below, sends
one handshake over HTTP/3 per path, prints what came back, and stops the server by its pid. It
exits 1 while the server behaves so, 0 once it does not.
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
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: The servers this runs on (the first is the default): hypercorn and anycorn over QUIC.
SERVERS = ("hypercorn-h3", "anycorn-h3", "anycorn-h3-trio")
#: The cases of the conformance matrix this shows, each on a path of its own (``PATHS``).
CASES = (
    "1.2",
    "2.2",
    "2.8",
    "2.10",
    "2.11",
    "2.12",
    "2.13",
    "2.14",
    "2.15",
)

BODY = b'{"error":"no"}'
#: Each case, its path, and the messages the application sends there (as the matrix's app does).
PATHS = (
    ("1.2", "/denial", "start 401 (content-length 2), body b'no'; the scope's asgi is recorded"),
    ("2.2", "/denial", "start 401 (content-length 2), body b'no'"),
    ("2.8", "/start-twice", "start 401, start 402 (content-length 2), body b'no'"),
    ("2.10", "/status-101", "start 101 (content-length 2), body b'no'"),
    ("2.11", "/status-99", "start 99 (content-length 2), body b'no'"),
    ("2.12", "/status-600", "start 600 (content-length 2), body b'no'"),
    ("2.13", "/crlf", "start 401 (x-injected: 'a\\r\\nx-split: yes', content-length 2), body"),
    ("2.14", "/length-20", f"start 401 (content-length 20), a body of {len(BODY)} bytes"),
    ("2.15", "/length-5", f"start 401 (content-length 5), a body of {len(BODY)} bytes"),
)
#: The headers a server may add to a denial it frames.
FRAMING = (b":status", b"date", b"server", b"content-length")


def start(status: int, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "websocket.http.response.start", "status": status, "headers": headers}


def body(data: bytes) -> dict[str, Any]:
    return {"type": "websocket.http.response.body", "body": data, "more_body": False}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] != "websocket":
        return None
    path = scope["path"]
    record("scope", path=path, asgi=scope.get("asgi"))
    short = [(b"content-length", b"2")]
    try:
        if path == "/start-twice":
            await send(start(401, short))
            await send(start(402, short))
            await send(body(b"no"))
        elif path.startswith("/status-"):
            await send(start(int(path.removeprefix("/status-")), short))
            await send(body(b"no"))
        elif path == "/crlf":
            await send(start(401, [(b"x-injected", b"a\r\nx-split: yes"), *short]))
            await send(body(b"no"))
        elif path.startswith("/length-"):
            await send(start(401, [(b"content-length", path.removeprefix("/length-").encode())]))
            await send(body(BODY))
        else:  # /denial
            await send(start(401, short))
            await send(body(b"no"))
    except Exception as exc:
        record("send-raised", path=path, error=repr(exc))
    record("returned", path=path)
    return None


def app_events(server: Server, path: str) -> list[dict[str, Any]]:
    """What the app recorded on ``path``, once it has returned (polled for until TIMEOUT)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        events = [event for event in server.events() if event.get("path") == path]
        if any(event["event"] == "returned" for event in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.01)


def verdict(case: str, path: str, response: Response, events: list[dict[str, Any]]) -> str | None:
    """What is wrong in what the server sent for ``case``, or None."""
    fields = response.fields_sent[0] if response.fields_sent else []
    raised = [event["error"] for event in events if event["event"] == "send-raised"]
    if case == "1.2":
        asgi = next((e["asgi"] for e in events if e["event"] == "scope"), None) or {}
        version = asgi.get("spec_version", "2.0")
        if tuple(int(part) for part in version.split(".")) < (2, 4):
            return f"spec_version {version}: a send after the client left may be a no-op"
    elif case == "2.2":
        added = [f"{n.decode()}: {v.decode()}" for n, v in fields if n not in FRAMING]
        if added:
            return f"headers the app did not send: {added}"
    elif case == "2.8":
        if not raised:
            return f"the second start raised nothing; sent {dict(fields).get(b':status')!r}"
    elif path.startswith("/status-"):
        status = path.removeprefix("/status-").encode()
        if (b":status", status) in fields:
            return f":status {status.decode()} sent"
    elif case == "2.13":
        bad = [(n, v) for n, v in fields if b"\r" in v or b"\n" in v]
        if bad:
            return f"header values with CR/LF sent: {bad}"
    elif path.startswith("/length-"):
        declared = int(path.removeprefix("/length-"))
        if not raised or len(response.body) > declared:
            return f"content-length {declared} sent with {len(response.body)} bytes of data"
    return None


def check(server: Server) -> str | None:
    problems = []
    for case, path, what in PATHS:
        response = h3_handshake(server, path)
        events = app_events(server, path)
        raised = [event["error"] for event in events if event["event"] == "send-raised"]
        print(f"{case} {path}: the app sends {what}\n  {response.describe()}")
        if case == "1.2":
            scope = next((e["asgi"] for e in events if e["event"] == "scope"), None)
            print(f"  scope['asgi']: {scope}")
        print(f"  the app's sends: {'raised ' + '; '.join(raised) if raised else 'no error'}")
        problem = verdict(case, path, response, events)
        if problem:
            problems.append(f"{case} {problem}")
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

    #: Every header block of the stream as the client decoded it, before it checked it: what
    #: the server sent, even where the client then rejected the message as malformed.
    fields_sent: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    #: The status and headers the client accepted, and the data it read.
    status: bytes | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    #: How the QUIC connection ended, if it did: error code and reason.
    closed: str = ""
    #: The client closed it with H3_MESSAGE_ERROR: it found the server's message malformed.
    rejected: bool = False

    def describe(self) -> str:
        lines = [f"fields sent: {fields!r}" for fields in self.fields_sent]
        if self.body:
            lines.append(f"data: {self.body!r}")
        if self.status is not None:
            lines.append(f"the client read :status {self.status.decode()}")
        if self.rejected:
            lines.append(
                f"the client rejected the message as malformed and closed the QUIC "
                f"connection (H3_MESSAGE_ERROR): {self.closed}"
            )
        elif self.closed:
            lines.append(f"the QUIC connection ended: {self.closed}")
        elif self.ended:
            lines.append("the stream ended")
        return "\n  ".join(lines or [f"nothing within {TIMEOUT}s"])


class Recording(H3Connection):
    """aioquic's HTTP/3 layer, keeping each header block as decoded, before it is checked.

    aioquic rejects a malformed message by closing the connection, and its fields are lost
    with it; aioquic 1.x calls ``_decode_headers`` with every HEADERS frame before the check.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decoded: list[tuple[int, list[tuple[bytes, bytes]]]] = []

    def _decode_headers(self, stream_id: int, frame: bytes | None) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = super()._decode_headers(stream_id, frame)
        self.decoded.append((stream_id, list(headers)))
        return headers


class Client(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = Recording(self._quic)
        self.events: asyncio.Queue[Any] = asyncio.Queue()

    def quic_event_received(self, event: QuicEvent) -> None:
        for http_event in self.http.handle_event(event):
            self.events.put_nowait(http_event)
        self.events.put_nowait(event)


async def exchange(port: int, path: str, response: Response) -> None:
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
        try:
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
                    response.closed = f"{event.error_code:#x} {event.reason_phrase}"
                    response.rejected = event.error_code == ErrorCode.H3_MESSAGE_ERROR
                    response.ended = True
        finally:
            response.fields_sent = [fields for sid, fields in client.http.decoded if sid == stream]


def h3_handshake(server: Server, path: str = "/") -> Response:
    """One WebSocket handshake by RFC 9220 extended CONNECT over HTTP/3 (QUIC, 127.0.0.1)."""
    response = Response()
    # Not the built-in TimeoutError before Python 3.11; the response keeps what came in time.
    with contextlib.suppress(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(exchange(server.port, path, response), TIMEOUT))
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

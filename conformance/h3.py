"""WebSockets over HTTP/3 (RFC 9220): hypercorn over QUIC on 127.0.0.1, and a client on aioquic.

Theory of operation
-------------------
RFC 9220 carries a WebSocket over an HTTP/3 stream opened by an extended CONNECT, as RFC 8441
does over HTTP/2: the server announces ``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1``, the client
sends ``:method CONNECT`` with ``:protocol websocket``, and a 2xx opens the tunnel; any other
status is a refusal, which is where a denial response goes. hypercorn (with its ``h3`` extra,
aioquic) serves HTTP/3 on ``--quic-bind``: aioquic's ``H3Connection`` sends the setting, and
hypercorn hands a CONNECT stream to the same WebSocket stream code as over HTTP/2. anycorn, its
AnyIO fork, keeps that code and runs it on asyncio and on trio.

QUIC needs TLS, so `run_h3_server` writes a self-signed certificate for 127.0.0.1 (made with
``cryptography`` for this run, in a temporary directory) and starts hypercorn with TCP (TLS)
and QUIC bound to the same port number on 127.0.0.1: the launcher waits for the TCP port, and
the client speaks QUIC to the UDP port. `h3_ws_handshake` is a blocking call, like
``conformance.client.ws_handshake``, that runs one handshake on its own asyncio loop and
returns a `conformance.client.WireResponse` (``http_version`` ``HTTP/3``).

The case catalogue reaches servers through HTTP/1.1 and HTTP/2 only, so these variants are not
columns of the matrix: ``conformance/tests/test_h3.py`` measures it with its own cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import ipaddress
import ssl
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection, Setting
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conformance.client import WireResponse
from conformance.servers import HOST, EventLoop, RunningServer, Variant, run_server

__all__ = (
    "H3_DEVIATIONS",
    "H3_VARIANT",
    "H3_VARIANTS",
    "h3_ws_handshake",
    "run_h3_server",
    "self_signed_certificate",
)


def _h3_variant(name: str, server: str, event_loop: EventLoop) -> Variant:
    return Variant(
        name,
        (
            "{python}",
            "-m",
            server,
            "--bind",
            "{host}:{port}",
            "--quic-bind",
            "{host}:{port}",
            "--certfile",
            "{certfile}",
            "--keyfile",
            "{keyfile}",
            "--workers",
            "0",
            "-k",
            event_loop,
            "{app}",
        ),
        protocol="h3",
        server=server,
        requires=(server, "aioquic") if event_loop == "asyncio" else (server, "aioquic", "trio"),
        description=f"{server} -k {event_loop}, HTTP/3 over QUIC with RFC 9220 extended CONNECT",
        event_loop=event_loop,
    )


#: The servers reached over HTTP/3: hypercorn, and anycorn (its AnyIO fork, which keeps its
#: HTTP/3 code) on asyncio and trio. ``{certfile}`` and ``{keyfile}`` are filled in by
#: `run_h3_server`.
H3_VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        _h3_variant("hypercorn-h3", "hypercorn", "asyncio"),
        _h3_variant("anycorn-h3", "anycorn", "asyncio"),
        _h3_variant("anycorn-h3-trio", "anycorn", "trio"),
    )
}
H3_VARIANT = H3_VARIANTS["hypercorn-h3"]

#: The deviations every variant of `H3_VARIANTS` shows over HTTP/3 only, by case of the
#: catalogue (measured by conformance/tests/test_h3.py, reproduced by
#: conformance/repros/h3_error_response.py). Their others are those of hypercorn-h2 (status
#: 101, 99 and 600, CR LF, content-length).
H3_DEVIATIONS = {
    "3.1": "close before accept: the 403 carries 'connection: close', malformed in HTTP/3 "
    "(RFC 9114 section 4.2); the client drops the QUIC connection",
    "3.4": "an exception before any message: the 500 carries 'connection: close' (see 3.1)",
}


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a certificate and key for 127.0.0.1, valid for a day, into ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
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
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


@contextlib.contextmanager
def run_h3_server(
    app: str,
    *,
    variant: Variant = H3_VARIANT,
    app_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 20.0,
) -> Iterator[RunningServer]:
    """Run ``app`` on ``variant`` (one of `H3_VARIANTS`) over TCP (TLS) and QUIC at 127.0.0.1,
    one port number for both."""
    with tempfile.TemporaryDirectory(prefix="asgi-ws-deny-h3-") as directory:
        certfile, keyfile = self_signed_certificate(Path(directory))
        files = {"{certfile}": str(certfile), "{keyfile}": str(keyfile)}
        command = tuple(files.get(item, item) for item in variant.command)
        with run_server(
            dataclasses.replace(variant, command=command),
            app,
            app_dir=app_dir,
            env=env,
            ready_timeout=ready_timeout,
        ) as server:
            yield server


class _Client(QuicConnectionProtocol):
    """A QUIC connection with an HTTP/3 layer; every HTTP/3 event goes to a queue."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.events: asyncio.Queue[H3Event | QuicEvent] = asyncio.Queue()

    def quic_event_received(self, event: QuicEvent) -> None:
        for http_event in self.http.handle_event(event):
            self.events.put_nowait(http_event)
        # The QUIC event itself too: a reset or the connection's end, and a wake-up for the
        # reader, as the peer's SETTINGS arrive without an HTTP/3 event of their own.
        self.events.put_nowait(event)


def h3_ws_handshake(
    host: str,
    port: int,
    path: str = "/",
    headers: Sequence[tuple[str, str]] = (),
    *,
    timeout: float = 5.0,
    wait_close: float = 0.0,
) -> WireResponse:
    """Open a WebSocket by RFC 9220 extended CONNECT over HTTP/3; return the answer.

    ``closed`` means the stream ended (``reset`` for RESET_STREAM or the connection's end),
    ``raw`` is a readable trace of the HTTP/3 events, ``error`` says why no request could be
    made (no QUIC handshake, no ``SETTINGS_ENABLE_CONNECT_PROTOCOL``). After a 2xx (which opens
    the tunnel) ``wait_close`` bounds the wait for the end of the stream. The server's
    certificate is not verified: it is the one `run_h3_server` made for this run.
    """
    return asyncio.run(_handshake(host, port, path, headers, timeout, wait_close))


async def _handshake(
    host: str,
    port: int,
    path: str,
    headers: Sequence[tuple[str, str]],
    timeout: float,
    wait_close: float,
) -> WireResponse:
    started = time.monotonic()
    response = WireResponse(http_version=b"HTTP/3")
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE
    )
    trace: list[str] = []

    async def run() -> None:
        async with connect(
            host, port, configuration=configuration, create_protocol=_Client
        ) as client:
            assert isinstance(client, _Client)
            await _exchange(client, host, port, path, headers, response, trace, wait_close)

    try:
        await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
        response.timed_out = response.status is None or not response.closed
    except ConnectionError as exc:
        response.error = response.error or f"QUIC: {exc!r}"
    response.raw = "\n".join(trace).encode()
    response.elapsed = time.monotonic() - started
    return response


async def _exchange(
    client: _Client,
    host: str,
    port: int,
    path: str,
    headers: Sequence[tuple[str, str]],
    response: WireResponse,
    trace: list[str],
    wait_close: float,
) -> None:
    while client.http.received_settings is None:
        await client.events.get()
    settings = client.http.received_settings
    trace.append(f"SETTINGS {dict(settings)}")
    if settings.get(Setting.ENABLE_CONNECT_PROTOCOL) != 1:
        response.error = "server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL=1"
        return
    stream_id = client._quic.get_next_available_stream_id()
    request = [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":path", path.encode("latin-1")),
        (b":authority", f"{host}:{port}".encode("latin-1")),
        (b"sec-websocket-version", b"13"),
        *((n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers),
    ]
    client.http.send_headers(stream_id, request)
    client.transmit()
    while not response.closed:
        tunnel = response.status is not None and 200 <= response.status < 300
        try:
            event = await (
                asyncio.wait_for(client.events.get(), wait_close) if tunnel else client.events.get()
            )
        except asyncio.TimeoutError:
            return  # the tunnel is open and stays so: not a time-out of the handshake
        if isinstance(event, HeadersReceived) and event.stream_id == stream_id:
            trace.append(f"HEADERS {event.headers!r} end={event.stream_ended}")
            if response.status is None:
                fields = [(name, value) for name, value in event.headers]
                status = dict(fields).get(b":status", b"")
                response.status = int(status) if status.isdigit() else None
                response.headers = [(n, v) for n, v in fields if not n.startswith(b":")]
            response.closed = event.stream_ended
        elif isinstance(event, DataReceived) and event.stream_id == stream_id:
            trace.append(f"DATA {event.data!r} end={event.stream_ended}")
            response.body += event.data
            response.closed = event.stream_ended
        elif isinstance(event, StreamReset) and event.stream_id == stream_id:
            trace.append(f"RESET_STREAM {event.error_code}")
            response.closed = response.reset = True
        elif isinstance(event, ConnectionTerminated):
            trace.append(f"CONNECTION_CLOSE {event.error_code} {event.reason_phrase!r}")
            response.closed = response.reset = True

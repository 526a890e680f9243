"""A WebSocket client over HTTP/3 (RFC 9220), on aioquic, for the matrix's HTTP/3 variants.

RFC 9220 carries a WebSocket over an HTTP/3 stream opened by an extended CONNECT, as RFC 8441
does over HTTP/2: the server announces ``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1``, the client
sends ``:method CONNECT`` with ``:protocol websocket``, and a 2xx opens the tunnel; any other
status is a refusal, which is where a denial response goes. hypercorn (with its ``h3`` extra,
aioquic) serves HTTP/3 on ``--quic-bind``: aioquic's ``H3Connection`` sends the setting, and
hypercorn hands a CONNECT stream to the same WebSocket stream code as over HTTP/2. anycorn, its
AnyIO fork, keeps that code and runs it on asyncio and on trio.

The variants (``hypercorn-h3``, ``anycorn-h3``, ``anycorn-h3-trio`` in `conformance.servers`)
bind TCP (TLS) and QUIC to the same port number on 127.0.0.1, with a certificate made for the
start (`conformance.tls`): the launcher waits for the TCP port, and `h3_ws_handshake` speaks
QUIC to the UDP one. It is a blocking call, like ``conformance.client.ws_handshake``, that runs
one handshake on its own asyncio loop and returns a `conformance.client.WireResponse`
(``http_version`` ``HTTP/3``), the WebSocket frames of an open tunnel in its ``body``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection, Setting
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset

from conformance.client import WireResponse

__all__ = ("h3_settings", "h3_ws_handshake")


class _Recording(H3Connection):
    """aioquic's HTTP/3 layer, keeping every header block as decoded, before it is checked.

    aioquic rejects a malformed response (RFC 9114 section 4.1.2) by closing the connection,
    and its fields are lost with it; the matrix must still show what the server sent. The hook
    is ``_decode_headers``, which aioquic 1.x calls with each HEADERS frame before validating it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decoded: list[tuple[int, list[tuple[bytes, bytes]]]] = []

    def _decode_headers(self, stream_id: int, frame: bytes | None) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = super()._decode_headers(stream_id, frame)
        self.decoded.append((stream_id, headers))
        return headers


class _Client(QuicConnectionProtocol):
    """A QUIC connection with an HTTP/3 layer; every HTTP/3 event goes to a queue."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = _Recording(self._quic)
        self.events: asyncio.Queue[H3Event | QuicEvent] = asyncio.Queue()

    def quic_event_received(self, event: QuicEvent) -> None:
        for http_event in self.http.handle_event(event):
            self.events.put_nowait(http_event)
        # The QUIC event itself too: a reset or the connection's end, and a wake-up for the
        # reader, as the peer's SETTINGS arrive without an HTTP/3 event of their own.
        self.events.put_nowait(event)


@contextlib.asynccontextmanager
async def _connect(host: str, port: int) -> AsyncIterator[_Client]:
    """A QUIC connection to ``host:port`` (IPv4), closed at once on leaving.

    aioquic's own ``connect`` waits out the closing period after the client's CONNECTION_CLOSE
    (three probe timeouts, about 80 ms on the loopback) before it returns; RFC 9000 section
    10.2 lets an endpoint leave it early, and a case makes several handshakes."""
    loop = asyncio.get_running_loop()
    # The server's certificate is not verified: it is the one `run_server` made for its start.
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE
    )
    connection = QuicConnection(configuration=configuration)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Client(connection), local_addr=(host, 0)
    )
    try:
        protocol.connect((host, port))
        await protocol.wait_connected()
        yield protocol
    finally:
        protocol.close()  # sends the CONNECTION_CLOSE
        transport.close()


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
    certificate is not verified: it is the one `conformance.servers.run_server` made for it.
    """
    return asyncio.run(_handshake(host, port, path, headers, timeout, wait_close))


def h3_settings(host: str, port: int, *, timeout: float = 2.0) -> dict[int, int] | str:
    """The HTTP/3 SETTINGS the server at ``host:port`` (UDP) sends after the QUIC handshake, or
    why none came (a sentence)."""
    return asyncio.run(_settings(host, port, timeout))


async def _settings(host: str, port: int, timeout: float) -> dict[int, int] | str:
    async def run() -> dict[int, int]:
        async with _connect(host, port) as client:
            while client.http.received_settings is None:
                await client.events.get()
            return dict(client.http.received_settings)

    try:
        return await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
        return f"no HTTP/3 SETTINGS within {timeout:g}s"
    except ConnectionError as exc:
        return f"QUIC: {exc!r}"


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
    trace: list[str] = []

    async def run() -> None:
        async with _connect(host, port) as client:
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
            if event.error_code == ErrorCode.H3_MESSAGE_ERROR:
                # The client's HTTP/3 layer refused what the server sent: an answer, malformed.
                # No client gets to read it, so the response stays empty; the trace keeps it.
                response.malformed = True
                response.error = f"malformed: {event.reason_phrase}"
                rejected = [fields for stream, fields in client.http.decoded if stream == stream_id]
                trace.extend(f"HEADERS (rejected) {fields!r}" for fields in rejected)

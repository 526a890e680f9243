"""The wire client over HTTP/2: WebSocket handshakes by RFC 8441 extended CONNECT.

Theory of operation
-------------------
`h2_ws_handshake` does what `conformance.client.ws_handshake` does, over HTTP/2 cleartext
(prior knowledge): it opens a stream with an extended CONNECT (``:protocol websocket``), using
the ``h2`` state machine for the connection, and returns the same `WireResponse`, every read
bounded by one `Deadline`. It reports what the server wrote rather than what ``h2`` would
accept: inbound header validation is off, and the body comes from the DATA frames themselves.

`H2WireConnection` keeps such a connection open for a test to act between frames: open several
streams, hold back flow-control credit, reset one stream or the whole connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conformance.client import RECV_SIZE, Deadline, Reader, TcpConnection, WireResponse

__all__ = (
    "CANCEL",
    "H2Frame",
    "H2WireConnection",
    "h2_ws_handshake",
)

# RFC 9113 section 4.1: a 9-octet frame header (length 24, type 8, flags 8, R + stream id 31).
_FRAME_HEADER = 9
_DATA, _HEADERS, _RST_STREAM, _GOAWAY = 0x0, 0x1, 0x3, 0x7
_END_STREAM, _PADDED = 0x1, 0x8


def _frames(buffer: bytes) -> tuple[list[tuple[int, int, int, bytes]], bytes]:
    """Split complete frames off ``buffer``: (type, flags, stream id, frame bytes), rest."""
    frames = []
    while len(buffer) >= _FRAME_HEADER:
        length = int.from_bytes(buffer[:3], "big")
        if len(buffer) < _FRAME_HEADER + length:
            break
        kind, flags = buffer[3], buffer[4]
        stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
        frames.append((kind, flags, stream, buffer[: _FRAME_HEADER + length]))
        buffer = buffer[_FRAME_HEADER + length :]
    return frames, buffer


def _data_payload(flags: int, frame: bytes) -> bytes:
    payload = frame[_FRAME_HEADER:]
    if flags & _PADDED and payload:
        pad = payload[0]
        payload = payload[1 : len(payload) - pad]
    return payload


def h2_ws_handshake(
    host: str,
    port: int,
    path: str = "/",
    headers: Sequence[tuple[str, str]] = (),
    *,
    timeout: float = 5.0,
    wait_close: float = 0.0,
) -> WireResponse:
    """Open a WebSocket by RFC 8441 extended CONNECT over HTTP/2 cleartext; return the answer.

    ``status`` and ``headers`` come from the stream's HEADERS (decoded by ``h2``, with inbound
    validation off so that what the server wrote is what is reported); ``body`` is read from
    the DATA frames directly, so a body that contradicts its content-length is still reported
    as sent. ``closed`` means the stream ended (END_STREAM; RST_STREAM sets ``reset``), ``raw``
    holds the frames as received, ``error`` the first protocol error ``h2`` found. After a 2xx
    (which opens the tunnel) ``wait_close`` bounds the wait for the end of the stream.
    """
    import h2.config
    import h2.connection
    import h2.events

    started = time.monotonic()
    response = WireResponse(http_version=b"HTTP/2")
    deadline = Deadline(timeout)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        response.closed = True
        response.error = f"connect: {exc}"
        response.elapsed = time.monotonic() - started
        return response
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_inbound_headers=False,
                normalize_inbound_headers=False,
            )
        )
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        reader = Reader(sock, response)
        pending = b""
        settings_seen = False
        h2_broken = False
        stream_id: int | None = None
        while not (response.closed and stream_id is not None):
            if stream_id is None and settings_seen:
                if not conn.remote_settings.enable_connect_protocol:
                    response.error = "server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL=1"
                    break
                stream_id = conn.get_next_available_stream_id()
                request = [
                    (b":method", b"CONNECT"),
                    (b":protocol", b"websocket"),
                    (b":scheme", b"http"),
                    (b":path", path.encode("latin-1")),
                    (b":authority", f"{host}:{port}".encode("latin-1")),
                    (b"sec-websocket-version", b"13"),
                    *((n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers),
                ]
                conn.send_headers(stream_id, request)
                sock.sendall(conn.data_to_send())
            active = deadline
            tunnel = response.status is not None and 200 <= response.status < 300
            if tunnel:
                active = Deadline(min(wait_close, max(deadline.left(), 0.0)))
            reader.buffer = b""
            if not reader.fill(active):
                if tunnel and active is not deadline:
                    response.timed_out = False
                break
            frames, pending = _frames(pending + reader.buffer)
            for kind, flags, stream, frame in frames:
                ours = stream_id is not None and stream == stream_id
                if ours and kind == _DATA:
                    response.body += _data_payload(flags, frame)
                if not h2_broken:
                    try:
                        events = conn.receive_data(frame)
                    except Exception as exc:  # the server broke HTTP/2: record, read on
                        h2_broken = True
                        response.error = f"{type(exc).__name__}: {exc}"
                        events = []
                    for event in events:
                        if isinstance(event, h2.events.RemoteSettingsChanged):
                            settings_seen = True
                        elif (
                            isinstance(
                                event,
                                h2.events.ResponseReceived
                                | h2.events.InformationalResponseReceived,
                            )
                            and event.stream_id == stream_id
                        ):
                            response.headers = []
                            for name, value in event.headers or ():
                                if name == b":status":
                                    response.status = int(value) if value.isdigit() else None
                                else:
                                    response.headers.append((name, value))
                        elif isinstance(event, h2.events.DataReceived):
                            with contextlib.suppress(Exception):
                                conn.acknowledge_received_data(
                                    event.flow_controlled_length, event.stream_id
                                )
                    with contextlib.suppress(OSError):
                        sock.sendall(conn.data_to_send())
                if ours and kind in (_DATA, _HEADERS) and flags & _END_STREAM:
                    response.closed = True
                elif ours and kind == _RST_STREAM:
                    response.closed = True
                    response.reset = True
                elif kind == _GOAWAY:
                    response.closed = True
    except Exception as exc:  # an error of the exchange is an observation of the server
        response.error = f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    response.elapsed = time.monotonic() - started
    return response


#: RFC 9113 section 7: the RST_STREAM error code of a client that no longer wants the stream.
CANCEL = 0x8
_FRAME_NAMES = {
    0x0: "DATA",
    0x1: "HEADERS",
    0x2: "PRIORITY",
    0x3: "RST_STREAM",
    0x4: "SETTINGS",
    0x5: "PUSH_PROMISE",
    0x6: "PING",
    0x7: "GOAWAY",
    0x8: "WINDOW_UPDATE",
    0x9: "CONTINUATION",
}


@dataclass(frozen=True)
class H2Frame:
    """One HTTP/2 frame as received: type, flags, stream and payload length (RFC 9113 4.1)."""

    kind: str
    flags: int
    stream: int
    length: int

    def __str__(self) -> str:
        return f"{self.kind}[{self.stream}] {self.length}B flags=0x{self.flags:x}"


class H2WireConnection(TcpConnection):
    """One HTTP/2 cleartext connection (prior knowledge) for WebSocket streams that a test opens
    by RFC 8441 extended CONNECT, reads frame by frame and leaves abruptly: one stream alone
    (`reset_stream`, RST_STREAM) or the whole connection (`abort`, a TCP RST). Even `close`
    sends no GOAWAY: the tests want the server to see a client leave.

    `h2_ws_handshake` runs one exchange start to end; the fault tests need to act between
    frames, on a connection that outlives a stream. Reads are bounded as everywhere here.
    ``responses`` holds what each stream has received so far (``status``, ``headers`` and
    ``body`` as in `h2_ws_handshake`; ``closed`` at END_STREAM, ``reset`` at the server's
    RST_STREAM); ``frames`` lists every frame received, in order. With ``acknowledge=False``
    received DATA is not acknowledged (no WINDOW_UPDATE), so the server can send no more than
    the initial flow-control windows of 65,535 octets (RFC 9113 section 6.9.2).

    Raises `ConnectionError` (an `OSError`) if the server does not answer the connection
    preface with SETTINGS that allow extended CONNECT (RFC 8441 section 3).
    """

    def __init__(
        self, host: str, port: int, *, timeout: float = 5.0, acknowledge: bool = True
    ) -> None:
        import h2.config
        import h2.connection

        self.acknowledge = acknowledge
        self.responses: dict[int, WireResponse] = {}
        self.frames: list[H2Frame] = []
        #: The server ended the connection (EOF or TCP RST); ``error`` says how, if not EOF.
        self.closed = False
        #: The server sent GOAWAY: it takes no new stream after the last it names.
        self.goaway = False
        self.error: str | None = None
        self._pending = b""
        self._settings_seen = False
        self._pings_acknowledged: set[bytes] = set()
        self._unacknowledged: dict[int, int] = {}
        self._broken = False
        super().__init__(host, port, timeout)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_inbound_headers=False,
                normalize_inbound_headers=False,
            )
        )
        self.conn.initiate_connection()
        self._flush()
        if not self.read_until(lambda: self._settings_seen):
            self.close()
            raise ConnectionError(f"no SETTINGS from {host}:{port} ({self.error or 'timeout'})")
        if not self.conn.remote_settings.enable_connect_protocol:
            self.close()
            raise ConnectionError("the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL=1")

    def open_websocket(self, path: str = "/", headers: Sequence[tuple[str, str]] = ()) -> int:
        """Send an extended CONNECT for a WebSocket on a new stream; its stream id."""
        stream_id = self.conn.get_next_available_stream_id()
        request = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"http"),
            (b":path", path.encode("latin-1")),
            (b":authority", f"{self.host}:{self.port}".encode("latin-1")),
            (b"sec-websocket-version", b"13"),
            *((n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers),
        ]
        self.responses[stream_id] = WireResponse(http_version=b"HTTP/2")
        self.conn.send_headers(stream_id, request)
        self._flush()
        return stream_id

    def read_until(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read until ``condition()`` holds, the connection ends or ``timeout`` passes (the
        default: the connection's); whether it held."""
        deadline = Deadline(self.timeout if timeout is None else timeout)
        while not condition():
            if not self._fill(deadline):
                return condition()
        return True

    def read_response(self, stream_id: int, *, timeout: float | None = None) -> WireResponse:
        """Read until stream ``stream_id`` ends; its response (``timed_out`` if it had not
        ended by the deadline while the connection was still open)."""
        response = self.responses[stream_id]
        started = time.monotonic()
        if not self.read_until(lambda: response.closed, timeout) and not self.closed:
            response.timed_out = True
        response.elapsed += time.monotonic() - started
        return response

    def ping(self, timeout: float | None = None) -> bool:
        """Send a PING and wait for its ACK (RFC 9113 section 6.7); whether it came in time.

        A server reads its connection in order, so the ACK also shows that it has read every
        frame sent before the PING (a RST_STREAM, say).
        """
        payload = os.urandom(8)
        self.conn.ping(payload)
        self._flush()
        return self.read_until(lambda: payload in self._pings_acknowledged, timeout)

    def reset_stream(self, stream_id: int, error_code: int = CANCEL) -> None:
        """Reset one stream with RST_STREAM; the connection stays open.

        What the stream received unacknowledged is handed back to the connection's window:
        DATA on a stream counts against the connection's window whatever becomes of the stream
        (RFC 9113 section 6.9), and nobody will read this stream any more.
        """
        self.conn.reset_stream(stream_id, error_code)
        held = self._unacknowledged.pop(stream_id, 0)
        if held:
            self.conn.acknowledge_received_data(held, stream_id)
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            with contextlib.suppress(OSError):
                self.sock.sendall(data)

    def _fill(self, deadline: Deadline) -> bool:
        """Read once and take in the complete frames; False at EOF, reset or the deadline."""
        left = deadline.left()
        if self.closed or left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            return False
        except OSError as exc:
            self.closed = True
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        if not data:
            self.closed = True
            return False
        frames, self._pending = _frames(self._pending + data)
        for kind, flags, stream, frame in frames:
            self._take(kind, flags, stream, frame)
        self._flush()
        return True

    def _take(self, kind: int, flags: int, stream: int, frame: bytes) -> None:
        import h2.events

        self.frames.append(
            H2Frame(_FRAME_NAMES.get(kind, f"0x{kind:x}"), flags, stream, len(frame) - 9)
        )
        response = self.responses.get(stream)
        if response is not None:
            response.raw += frame
            if kind == _DATA:
                response.body += _data_payload(flags, frame)
        if not self._broken:
            try:
                events = self.conn.receive_data(frame)
            except Exception as exc:  # the server broke HTTP/2: record it, read on
                self._broken = True
                self.error = f"{type(exc).__name__}: {exc}"
                events = []
            for event in events:
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    self._settings_seen = True
                elif isinstance(event, h2.events.PingAckReceived) and event.ping_data:
                    self._pings_acknowledged.add(event.ping_data)
                elif (
                    isinstance(
                        event,
                        h2.events.ResponseReceived | h2.events.InformationalResponseReceived,
                    )
                    and event.stream_id in self.responses
                ):
                    target = self.responses[event.stream_id]
                    target.headers = []
                    for name, value in event.headers or ():
                        if name == b":status":
                            target.status = int(value) if value.isdigit() else None
                        else:
                            target.headers.append((name, value))
                elif isinstance(event, h2.events.DataReceived) and event.stream_id:
                    size = event.flow_controlled_length or 0
                    if self.acknowledge:
                        with contextlib.suppress(Exception):
                            self.conn.acknowledge_received_data(size, event.stream_id)
                    else:
                        held = self._unacknowledged.get(event.stream_id, 0)
                        self._unacknowledged[event.stream_id] = held + size
        if response is not None and kind in (_DATA, _HEADERS) and flags & _END_STREAM:
            response.closed = True
        elif response is not None and kind == _RST_STREAM:
            response.closed = True
            response.reset = True
        elif kind == _GOAWAY:
            self.goaway = True

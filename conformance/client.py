"""A WebSocket handshake client that reports the bytes a server wrote, with every read bounded.

Theory of operation
-------------------
Real WebSocket clients hide what a server did wrong: they raise on the first oddity and drop the
rest. This client does not interpret beyond what it must. `ws_handshake` opens a blocking socket
to 127.0.0.1, writes an RFC 6455 section 4.1 opening handshake (or any raw request), then reads:

1. the status line and header block, up to the blank line;
2. the body: per ``Content-Length``, chunk by chunk for ``Transfer-Encoding: chunked``, nothing
   after ``101`` or another 1xx, else up to the end of the connection;
3. optionally, for ``wait_close`` seconds more, whether the server closes the connection, and
   any bytes it writes beyond the body (``extra``).

All of it runs against one deadline, ``timeout``; when it passes the response is returned as far
as it got with ``timed_out`` set, so a server that never answers is a result, not a stall.

`h2_ws_handshake` does the same over HTTP/2 cleartext (prior knowledge) with an RFC 8441
extended CONNECT, using the ``h2`` state machine, and returns the same `WireResponse`.
`H2WireConnection` keeps such a connection open for a test to act between frames: open several
streams, hold back flow-control credit, reset one stream or the whole connection.

After an accepted handshake, `WireConnection.read_frames` reads the server's WebSocket frames
up to its close frame (`ws_frames` splits them; over HTTP/2 they arrive as the stream's body),
and `close_frame` is the masked close a client answers with (RFC 6455 sections 5.2, 5.5.1).
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = (
    "CANCEL",
    "CLOSE",
    "LINGER_RESET",
    "TEXT",
    "H2Frame",
    "H2WireConnection",
    "WireConnection",
    "WireResponse",
    "build_handshake",
    "close_frame",
    "h2_ws_handshake",
    "read_response",
    "ws_frames",
    "ws_handshake",
)

_RECV = 65536
# Bytes read past a response before giving up on finding its end (a 1 MiB body fits easily).
_MAX_RESPONSE = 8 * 1024 * 1024
#: WebSocket opcodes (RFC 6455 section 5.2).
TEXT, CLOSE = 0x1, 0x8


@dataclass
class WireResponse:
    """What the server wrote in answer to one handshake, as received.

    ``headers`` keeps the names' original case and order (HTTP/2 names are lowercase on the
    wire). ``closed`` means the server ended the connection (HTTP/1.1) or the stream (HTTP/2);
    ``reset`` that it did so abortively (TCP RST, or RST_STREAM). ``timed_out`` means the
    response was not complete when the deadline passed.
    """

    raw: bytes = b""
    status: int | None = None
    reason: bytes = b""
    http_version: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    closed: bool = False
    reset: bool = False
    timed_out: bool = False
    elapsed: float = 0.0
    chunked: bool = False
    extra: bytes = b""
    error: str | None = None

    def header(self, name: str | bytes) -> list[bytes]:
        """Every value of header ``name`` (case-insensitive), in the order received."""
        wanted = (name.encode("latin-1") if isinstance(name, str) else name).lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def first(self, name: str | bytes) -> bytes | None:
        """The first value of header ``name``, or None."""
        values = self.header(name)
        return values[0] if values else None

    @property
    def header_names(self) -> list[bytes]:
        """Lowercase header names in the order received."""
        return [key.lower() for key, _ in self.headers]

    def summary(self) -> str:
        """A short human reading: status, reason, how it ended."""
        if self.status is None:
            what = "no response"
        else:
            what = f"{self.status} {self.reason.decode('latin-1')}".rstrip()
        ends = []
        if self.timed_out:
            ends.append("timed out")
        if self.reset:
            ends.append("reset")
        elif self.closed:
            ends.append("closed")
        if self.error:
            ends.append(self.error)
        return f"{what} ({', '.join(ends)})" if ends else what


def build_handshake(
    host: str,
    port: int,
    path: str = "/",
    headers: Sequence[tuple[str, str]] = (),
    *,
    key: str | None = None,
) -> bytes:
    """An RFC 6455 section 4.1 client opening handshake, plus ``headers``."""
    key = key or base64.b64encode(os.urandom(16)).decode("ascii")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


class _Reader:
    """Buffered reads from a socket, each bounded by the shared deadline."""

    def __init__(self, sock: socket.socket, response: WireResponse) -> None:
        self.sock = sock
        self.response = response
        self.buffer = b""

    def fill(self, deadline: _Deadline) -> bool:
        """Read once more; False at EOF, reset or the deadline (recorded on the response)."""
        if self.response.closed:
            return False
        left = deadline.left()
        if left <= 0:
            self.response.timed_out = True
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(_RECV)
        except TimeoutError:
            self.response.timed_out = True
            return False
        except ConnectionResetError:
            self.response.closed = True
            self.response.reset = True
            return False
        except OSError as exc:
            self.response.closed = True
            self.response.error = f"{type(exc).__name__}: {exc}"
            return False
        if not data:
            self.response.closed = True
            return False
        self.response.raw += data
        self.buffer += data
        return True

    def until(self, marker: bytes, deadline: _Deadline) -> bytes | None:
        while marker not in self.buffer:
            if len(self.buffer) > _MAX_RESPONSE or not self.fill(deadline):
                return None
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def exactly(self, size: int, deadline: _Deadline) -> tuple[bytes, bool]:
        while len(self.buffer) < size:
            if not self.fill(deadline):
                data, self.buffer = self.buffer, b""
                return data, False
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data, True

    def rest(self, deadline: _Deadline) -> bytes:
        while len(self.buffer) <= _MAX_RESPONSE and self.fill(deadline):
            pass
        data, self.buffer = self.buffer, b""
        return data


def _parse_head(head: bytes, response: WireResponse) -> None:
    status_line, *lines = head.split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    response.http_version = version
    response.status = int(code) if code.isdigit() else None
    response.reason = reason
    if response.status is None:
        response.error = f"unparsable status line {status_line!r}"
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep:
            response.error = f"unparsable header line {line!r}"
            continue
        response.headers.append((name, value.strip(b" \t")))


def _read_chunked(reader: _Reader, deadline: _Deadline) -> tuple[bytes, bool]:
    body = b""
    while True:
        size_line = reader.until(b"\r\n", deadline)
        if size_line is None:
            return body, False
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            reader.response.error = f"bad chunk size {size_line!r}"
            return body, False
        if size == 0:
            # Trailer section, then the final CRLF (RFC 9112 section 7.1.2).
            while True:
                line = reader.until(b"\r\n", deadline)
                if line is None:
                    return body, False
                if not line:
                    return body, True
        chunk, complete = reader.exactly(size + 2, deadline)
        body += chunk[:size]
        if not complete:
            return body, False


def read_response(
    sock: socket.socket,
    *,
    timeout: float,
    wait_close: float = 0.0,
    response: WireResponse | None = None,
    buffer: bytes = b"",
) -> tuple[WireResponse, bytes]:
    """Read one response from ``sock``; returns it and any bytes read past its end."""
    started = time.monotonic()
    response = response or WireResponse()
    reader = _Reader(sock, response)
    reader.buffer = buffer
    deadline = _Deadline(timeout)
    head = reader.until(b"\r\n\r\n", deadline)
    if head is None:
        if reader.buffer:
            response.error = f"incomplete response head {reader.buffer[:200]!r}"
        response.elapsed = time.monotonic() - started
        return response, b""
    _parse_head(head, response)
    status = response.status
    if status is not None and (status < 200 or status in (204, 304)):
        # No body: 1xx (101 hands the connection to WebSocket), 204, 304 (RFC 9112 section 6.3).
        pass
    elif b"chunked" in b",".join(response.header("transfer-encoding")).lower():
        response.chunked = True
        response.body, complete = _read_chunked(reader, deadline)
        if not complete and response.closed:
            response.error = "connection closed inside the chunked body"
    elif response.header("content-length"):
        lengths = response.header("content-length")
        try:
            size = int(lengths[0])
        except ValueError:
            response.error = f"bad content-length {lengths!r}"
            size = 0
        response.body, complete = reader.exactly(size, deadline)
        if not complete and response.closed:
            response.error = f"connection closed after {len(response.body)} of {size} body bytes"
    else:
        response.body = reader.rest(deadline)
    leftover = reader.buffer
    if wait_close > 0 and not response.closed and not response.timed_out:
        # Whether the server ends the connection after the response: wait for EOF, keeping
        # anything else it writes (a body longer than its Content-Length, a second response).
        reader.buffer = b""
        close_deadline = _Deadline(min(wait_close, max(deadline.left(), 0.0)))
        while reader.fill(close_deadline):
            pass
        if not response.closed:
            # Still open at the end of the wait: that is the observation, not a timeout.
            response.timed_out = False
        leftover += reader.buffer
        reader.buffer = b""
    if wait_close > 0:
        response.extra, leftover = leftover, b""
    response.elapsed = time.monotonic() - started
    return response, leftover


def ws_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split unmasked server-to-client WebSocket frames into ``(opcode, payload)`` pairs.

    RFC 6455 section 5.2: a server never masks its frames. A truncated last frame is left out.
    """
    frames = []
    while len(data) >= 2:
        opcode, size, start = data[0] & 0x0F, data[1] & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        elif size == 127:
            size, start = int.from_bytes(data[2:10], "big"), 10
        if len(data) < start + size:
            break
        frames.append((opcode, data[start : start + size]))
        data = data[start + size :]
    return frames


def close_frame(code: int = 1000) -> bytes:
    """A client's close frame with ``code`` and no reason: masked, with a zero key (RFC 6455)."""
    return b"\x88\x82\x00\x00\x00\x00" + code.to_bytes(2, "big")


#: ``struct linger`` with ``l_onoff`` 1 and ``l_linger`` 0: ``close`` then sends a RST instead
#: of a FIN (socket(7)), as a client that vanishes does.
LINGER_RESET = struct.pack("ii", 1, 0)


_Connection = TypeVar("_Connection", bound="_TcpConnection")


class _TcpConnection:
    """A client's TCP connection (Nagle off): closed with a FIN by `close`, or with a RST by
    `abort`, as a client that vanishes does."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __enter__(self: _Connection) -> _Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def abort(self) -> None:
        """Close with a TCP RST: SO_LINGER on with a linger time of 0 makes ``close`` reset the
        connection rather than end it with a FIN."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        self.close()

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def leave(self, timeout: float) -> bool:
        """End the client's side with a FIN, then wait up to ``timeout`` for the server to end
        its side too, which is how a server shows that it has seen the client go. True when it
        did; whatever it sends meanwhile is read and dropped."""
        deadline = _Deadline(timeout)
        try:
            self.sock.shutdown(socket.SHUT_WR)
            while (left := deadline.left()) > 0:
                self.sock.settimeout(left)
                if not self.sock.recv(65536):
                    return True
        except TimeoutError:
            return False
        except OSError:
            return True  # reset: the server is gone from the connection too
        return False


class WireConnection(_TcpConnection):
    """One TCP connection to a server, for sending requests and reading responses in turn."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        super().__init__(host, port, timeout)
        self.pending = b""

    def send(self, data: bytes) -> None:
        """Write ``data``; a reset or broken pipe is ignored (the read reports what happened)."""
        with contextlib.suppress(OSError):
            self.sock.sendall(data)

    def handshake(
        self,
        path: str = "/",
        headers: Sequence[tuple[str, str]] = (),
        *,
        timeout: float | None = None,
        wait_close: float = 0.0,
    ) -> WireResponse:
        """Send an opening handshake on this connection and read the answer."""
        self.send(build_handshake(self.host, self.port, path, headers))
        return self.read(timeout=timeout, wait_close=wait_close)

    def read(self, *, timeout: float | None = None, wait_close: float = 0.0) -> WireResponse:
        """Read the next response."""
        response, self.pending = read_response(
            self.sock,
            timeout=self.timeout if timeout is None else timeout,
            wait_close=wait_close,
            buffer=self.pending,
        )
        return response

    def read_frames(
        self, *, timeout: float | None = None, idle: float | None = None
    ) -> list[tuple[int, bytes]]:
        """After a 101: the server's frames until its close frame, the end of the connection
        or the deadline (``timeout``), whichever comes first; with ``idle``, also once the
        server has sent something and then stayed silent that long."""
        deadline = _Deadline(self.timeout if timeout is None else timeout)
        data, self.pending = self.pending, b""
        while not any(opcode == CLOSE for opcode, _ in ws_frames(data)):
            left = deadline.left()
            if data and idle is not None:
                left = min(left, idle)
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(_RECV)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        return ws_frames(data)


def ws_handshake(
    host: str,
    port: int,
    path: str = "/",
    headers: Sequence[tuple[str, str]] = (),
    *,
    timeout: float = 5.0,
    wait_close: float = 0.0,
    request: bytes | None = None,
) -> WireResponse:
    """Send a WebSocket opening handshake to ``host:port`` and return what came back.

    ``headers`` are added to the RFC 6455 handshake (or ``request`` replaces the whole request).
    Every read is bounded by ``timeout`` in total. With ``wait_close`` the client then waits up
    to that long for the server to close the connection (``closed``; ``extra`` holds any bytes
    written past the response). A connection refused or reset before any byte is a response
    with ``status`` None and ``error``/``reset`` set, not an exception.
    """
    started = time.monotonic()
    try:
        connection = WireConnection(host, port, timeout=timeout)
    except OSError as exc:
        return WireResponse(
            closed=True, error=f"connect: {exc}", elapsed=time.monotonic() - started
        )
    with connection:
        connection.send(request or build_handshake(host, port, path, headers))
        response = connection.read(timeout=timeout, wait_close=wait_close)
    response.elapsed = time.monotonic() - started
    return response


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
    deadline = _Deadline(timeout)
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
        reader = _Reader(sock, response)
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
                active = _Deadline(min(wait_close, max(deadline.left(), 0.0)))
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


class H2WireConnection(_TcpConnection):
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
        deadline = _Deadline(self.timeout if timeout is None else timeout)
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

    def _fill(self, deadline: _Deadline) -> bool:
        """Read once and take in the complete frames; False at EOF, reset or the deadline."""
        left = deadline.left()
        if self.closed or left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(_RECV)
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

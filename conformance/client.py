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

`conformance.client_h2` does the same over HTTP/2 (RFC 8441) and returns the same
`WireResponse`; the pieces both clients share are here: the response, the `Deadline`, the
`Reader` that bounds every read by it, and the `TcpConnection` that a client can end with a FIN
or a RST.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = (
    "CLOSE",
    "LINGER_RESET",
    "RECV_SIZE",
    "TEXT",
    "Deadline",
    "Reader",
    "TcpConnection",
    "WireConnection",
    "WireResponse",
    "build_handshake",
    "close_frame",
    "read_response",
    "ws_frames",
    "ws_handshake",
)

#: The most bytes one ``recv`` asks for.
RECV_SIZE = 65536
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
    response was not complete when the deadline passed. ``malformed`` means the server answered
    with a message the client had to reject as malformed (the HTTP/3 client's layer checks
    every field, RFC 9114 section 4.1.2), which ends the connection before the message is read.
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
    malformed: bool = False

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


class Deadline:
    """A point in time that every read of one exchange shares: `left` says how long remains."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.end - time.monotonic()


class Reader:
    """Buffered reads from a socket, each bounded by the shared deadline."""

    def __init__(self, sock: socket.socket, response: WireResponse) -> None:
        self.sock = sock
        self.response = response
        self.buffer = b""

    def fill(self, deadline: Deadline) -> bool:
        """Read once more; False at EOF, reset or the deadline (recorded on the response)."""
        if self.response.closed:
            return False
        left = deadline.left()
        if left <= 0:
            self.response.timed_out = True
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(RECV_SIZE)
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

    def until(self, marker: bytes, deadline: Deadline) -> bytes | None:
        while marker not in self.buffer:
            if len(self.buffer) > _MAX_RESPONSE or not self.fill(deadline):
                return None
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def exactly(self, size: int, deadline: Deadline) -> tuple[bytes, bool]:
        while len(self.buffer) < size:
            if not self.fill(deadline):
                data, self.buffer = self.buffer, b""
                return data, False
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data, True

    def rest(self, deadline: Deadline) -> bytes:
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


def _read_chunked(reader: Reader, deadline: Deadline) -> tuple[bytes, bool]:
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
    reader = Reader(sock, response)
    reader.buffer = buffer
    deadline = Deadline(timeout)
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
        close_deadline = Deadline(min(wait_close, max(deadline.left(), 0.0)))
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


_Connection = TypeVar("_Connection", bound="TcpConnection")


class TcpConnection:
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
        deadline = Deadline(timeout)
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


class WireConnection(TcpConnection):
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
        deadline = Deadline(self.timeout if timeout is None else timeout)
        data, self.pending = self.pending, b""
        while not any(opcode == CLOSE for opcode, _ in ws_frames(data)):
            left = deadline.left()
            if data and idle is not None:
                left = min(left, idle)
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(RECV_SIZE)
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

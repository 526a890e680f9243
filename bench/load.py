"""A bounded load client: many WebSocket handshakes to one server on 127.0.0.1, timed.

Theory of operation
-------------------
One thread, one ``epoll`` loop, non-blocking sockets: the cheapest client Python can run, so
that the server, not the client, sets the pace (`run_load` reports its own CPU time so a caller
can show it). At most ``concurrency`` connections are open at once; as one ends the next starts,
until ``count`` connections have been made or ``budget`` seconds have passed. Each connection:

1. connects and writes its opening handshake: an RFC 6455 section 4.1 ``GET`` with
   ``Upgrade: websocket``, or over HTTP/2 (``protocol="h2"``, cleartext, prior knowledge) the
   connection preface, then an RFC 8441 extended ``CONNECT`` once the server's SETTINGS allow it;
2. reads the answer: a refusal is complete when its body is (``Content-Length``, or the end of
   the connection when there is none; over HTTP/2, the end of the stream); an acceptance (``101``,
   or ``200`` over HTTP/2) is complete when the server's WebSocket close frame arrives, which the
   client answers with its own close frame, as RFC 6455 section 5.5.1 asks (or, with
   ``leave_after_message``, at the first data message, after which the client closes first);
3. closes its socket as soon as the answer is complete, as a client that has read a refusal does
   (servers that keep the connection open after a denial would otherwise hold every slot).

Nothing is interpreted beyond that. Each connection becomes an `Exchange` with what arrived and
either ``error`` None (complete) or why not (``"reset"``, ``"eof"``, ``"timeout"``, ...). Every
request is built before the clock starts. The client never sleeps: it waits in ``select``.
"""

from __future__ import annotations

import errno
import math
import os
import select
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from conformance.client import build_handshake
from conformance.servers import VARIANTS

__all__ = (
    "LOAD_VARIANTS",
    "Exchange",
    "LoadResult",
    "Protocol",
    "percentile",
    "run_load",
)

Protocol = Literal["http/1.1", "h2"]
#: The matrix's variants this client reaches, which the bench and the soak run on: it speaks no
#: HTTP/3, so the QUIC variants are left out (their denials are measured by the matrix only).
LOAD_VARIANTS = [
    name for name, variant in VARIANTS.items() if variant.protocol in get_args(Protocol)
]

_RECV = 65536
# RFC 6455 section 5.2: FIN + opcode 0x8 (close); 0x80 | length marks the payload as masked.
_CLOSE_OPCODE = 0x8
_PING_OPCODE = 0x9
_MASK = b"\x37\xfa\x21\x3d"
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_H2_DATA, _H2_HEADERS, _H2_RST, _H2_SETTINGS = 0x0, 0x1, 0x3, 0x4
_H2_PING, _H2_GOAWAY, _H2_CONTINUATION = 0x6, 0x7, 0x9
_END_STREAM, _ACK, _END_HEADERS, _PADDED = 0x1, 0x1, 0x4, 0x8
_ENABLE_CONNECT_PROTOCOL = 0x8  # RFC 8441 section 3
_STREAM = 1


@dataclass(slots=True)
class Exchange:
    """What one connection got: status, headers (lowercase names), body, then, after an
    acceptance, the WebSocket data messages and the close code. ``error`` is None when the
    answer was complete; ``latency`` runs from the connect to the complete answer."""

    index: int
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    messages: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None
    error: str | None = None
    latency: float = math.nan

    def header(self, name: bytes) -> list[bytes]:
        """Every value of header ``name`` (lowercase), in order."""
        return [value for key, value in self.headers if key == name]


@dataclass
class LoadResult:
    """Every exchange of one run, how long it took and what the client itself cost."""

    exchanges: list[Exchange]
    elapsed: float
    client_cpu: float
    concurrency: int

    @property
    def completed(self) -> list[Exchange]:
        """The exchanges whose answer arrived whole."""
        return [exchange for exchange in self.exchanges if exchange.error is None]

    @property
    def errors(self) -> Counter[str]:
        """How many exchanges failed, by reason."""
        return Counter(exchange.error for exchange in self.exchanges if exchange.error is not None)

    @property
    def rate(self) -> float:
        """Complete answers per second of the run."""
        return len(self.completed) / self.elapsed if self.elapsed > 0 else 0.0

    def latency(self, fraction: float) -> float:
        """A latency percentile of the complete exchanges, in seconds (NaN when none)."""
        return percentile([exchange.latency for exchange in self.completed], fraction)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    head = len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big")
    return head + payload


def _h2_request(host: str, port: int, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    import hpack

    # Every connection has a fresh HPACK context, so the block encoded by a fresh encoder is
    # valid as the first request of any connection.
    block = hpack.Encoder().encode(
        [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", f"{host}:{port}"),
            ("sec-websocket-version", "13"),
            *((name.lower(), value) for name, value in headers),
        ]
    )
    return _h2_frame(_H2_HEADERS, _END_HEADERS, _STREAM, block)


# Last stream 1, NO_ERROR.
_GOAWAY = _h2_frame(_H2_GOAWAY, 0, 0, (1).to_bytes(4, "big") + (0).to_bytes(4, "big"))


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (RFC 6455 section 5.3: masked), payload under 126 bytes."""
    masked = bytes(b ^ _MASK[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + _MASK + masked


class _Connection:
    """One handshake in flight: the bytes to write and a parser for the answer."""

    __slots__ = (
        "buffer",
        "content_length",
        "decoder",
        "done",
        "exchange",
        "head_done",
        "headers_block",
        "leave_after_message",
        "out",
        "protocol",
        "request",
        "request_sent",
        "sock",
        "started",
        "stream_ended",
        "upgraded",
        "ws_buffer",
    )

    def __init__(
        self,
        sock: socket.socket,
        exchange: Exchange,
        request: bytes,
        protocol: str,
        leave_after_message: bool = False,
    ):
        self.sock = sock
        self.leave_after_message = leave_after_message
        self.exchange = exchange
        self.protocol = protocol
        self.request = request
        self.started = time.perf_counter()
        self.buffer = bytearray()
        self.head_done = False
        self.upgraded = False
        self.done = False
        self.content_length: int | None = None
        self.decoder: object | None = None
        self.headers_block = b""
        self.stream_ended = False
        # HTTP/2 only: WebSocket bytes of the stream, a frame may span DATA frames.
        self.ws_buffer = bytearray()
        if protocol == "h2":
            self.out = _H2_PREFACE + _h2_frame(_H2_SETTINGS, 0, 0)
            self.request_sent = False
        else:
            self.out = request
            self.request_sent = True

    # -- HTTP/1.1 ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if self.protocol == "h2":
            self._h2_frames()
            return
        if not self.head_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._h1_head(bytes(self.buffer[:end]))
            del self.buffer[: end + 4]
            if self.done:
                return
        if self.upgraded:
            self._ws_frames(self.buffer)
        elif self.content_length is not None and len(self.buffer) >= self.content_length:
            self.exchange.body = bytes(self.buffer[: self.content_length])
            self._finish()

    def _h1_head(self, head: bytes) -> None:
        self.head_done = True
        status_line, *lines = head.split(b"\r\n")
        exchange = self.exchange
        parts = status_line.split(b" ", 2)
        try:
            exchange.status = int(parts[1])
        except (IndexError, ValueError):
            self._fail("bad status line")
            return
        for line in lines:
            name, _, value = line.partition(b":")
            exchange.headers.append((name.strip().lower(), value.strip(b" \t")))
        if exchange.status == 101:
            self.upgraded = True
            return
        if exchange.status in (204, 304) or 100 <= exchange.status < 200:
            self._finish()
            return
        lengths = exchange.header(b"content-length")
        if exchange.header(b"transfer-encoding"):
            self._fail("chunked body")
        elif lengths:
            self.content_length = int(lengths[0])
        # Otherwise the body runs to the end of the connection (RFC 9112 section 6.3).

    def eof(self) -> None:
        if self.done:
            return
        # Without a Content-Length the body runs to the end of the connection.
        if (
            self.protocol != "h2"
            and self.head_done
            and not self.upgraded
            and (self.content_length is None)
        ):
            self.exchange.body = bytes(self.buffer)
            self._finish()
            return
        self._fail("eof")

    # -- WebSocket frames (after 101, or inside the HTTP/2 stream after 200) -------------------

    def _ws_frames(self, buffer: bytearray) -> None:
        while len(buffer) >= 2 and not self.done:
            opcode = buffer[0] & 0x0F
            length = buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length = int.from_bytes(buffer[2:4], "big")
                offset = 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length = int.from_bytes(buffer[2:10], "big")
                offset = 10
            if buffer[1] & 0x80:
                offset += 4  # a masked server frame is a protocol error; read past it anyway
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode in (0x1, 0x2):
                text = opcode == 0x1
                self.exchange.messages.append(
                    payload.decode("utf-8", "replace") if text else payload
                )
                if self.leave_after_message:
                    # The client has what it came for and closes first, with 1000.
                    self._close_frame((1000).to_bytes(2, "big"))
            elif opcode == _CLOSE_OPCODE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.exchange.close_code = code
                self._close_frame(payload[:2])
            elif opcode == _PING_OPCODE:
                pong = _masked_frame(0xA, payload)
                if self.protocol == "h2":
                    pong = _h2_frame(_H2_DATA, 0, _STREAM, pong)
                self.out += pong

    def _close_frame(self, code: bytes) -> None:
        reply = _masked_frame(_CLOSE_OPCODE, code)
        if self.protocol == "h2":
            reply = _h2_frame(_H2_DATA, _END_STREAM, _STREAM, reply)
        self.out += reply
        self._finish()

    # -- HTTP/2 --------------------------------------------------------------------------------

    def _h2_frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 9 and not self.done:
            length = int.from_bytes(buffer[0:3], "big")
            if len(buffer) < 9 + length:
                return
            kind, flags = buffer[3], buffer[4]
            stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            payload = bytes(buffer[9 : 9 + length])
            del buffer[: 9 + length]
            self._h2_frame(kind, flags, stream, payload)

    def _h2_frame(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        if kind == _H2_SETTINGS and not flags & _ACK:
            settings = {
                int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(
                    payload[i + 2 : i + 6], "big"
                )
                for i in range(0, len(payload) - 5, 6)
            }
            self.out += _h2_frame(_H2_SETTINGS, _ACK, 0)
            if not self.request_sent:
                if settings.get(_ENABLE_CONNECT_PROTOCOL) != 1:
                    self._fail("no extended CONNECT")
                    return
                self.out += self.request
                self.request_sent = True
        elif kind in (_H2_HEADERS, _H2_CONTINUATION) and stream == _STREAM:
            if kind == _H2_HEADERS:
                payload = _h2_unpad(flags, payload)
                if flags & 0x20:  # PRIORITY: exclusive bit, dependency and weight first
                    payload = payload[5:]
            self.headers_block += payload
            if flags & _END_STREAM and kind == _H2_HEADERS:
                # The stream ends with this header block, which CONTINUATION frames may finish
                # (RFC 9113 section 6.10): the answer is whole only once the block is.
                self.stream_ended = True
            if flags & _END_HEADERS:
                self._h2_headers()
                if self.stream_ended:
                    self._finish()
        elif kind == _H2_DATA and stream == _STREAM:
            data = _h2_unpad(flags, payload)
            if self.upgraded:
                self.ws_buffer += data
                self._ws_frames(self.ws_buffer)
            else:
                self.exchange.body += data
            if flags & _END_STREAM and not self.done:
                if self.upgraded:
                    self._fail("stream ended without a close frame")
                else:
                    self._finish()
        elif kind == _H2_RST and stream == _STREAM:
            self._fail("reset stream")
        elif kind == _H2_GOAWAY:
            self._fail("goaway")
        elif kind == _H2_PING and not flags & _ACK:
            self.out += _h2_frame(_H2_PING, _ACK, 0, payload)

    def _h2_headers(self) -> None:
        import hpack

        if self.decoder is None:
            self.decoder = hpack.Decoder()
        decoded = self.decoder.decode(self.headers_block, raw=True)  # type: ignore[attr-defined]
        self.headers_block = b""
        for name, value in decoded:
            if name == b":status":
                self.exchange.status = int(value)
            else:
                self.exchange.headers.append((bytes(name), bytes(value)))
        status = self.exchange.status
        self.head_done = True
        if status is not None and 200 <= status < 300:
            self.upgraded = True

    # -- the end -------------------------------------------------------------------------------

    def _finish(self) -> None:
        self.done = True
        self.exchange.latency = time.perf_counter() - self.started
        if self.protocol == "h2":
            # RFC 9113 section 6.8: say goodbye before closing; without it a server may keep
            # the connection (and its memory) until an idle timeout notices the socket is gone.
            self.out += _GOAWAY

    def _fail(self, reason: str) -> None:
        # Once the answer is whole, a failure to say goodbye (the server dropped the connection
        # before the client's close frame or GOAWAY went out) does not undo it.
        if self.done and not math.isnan(self.exchange.latency):
            return
        self.done = True
        if self.exchange.error is None:
            self.exchange.error = reason


def _h2_unpad(flags: int, payload: bytes) -> bytes:
    if flags & _PADDED and payload:
        return payload[1 : len(payload) - payload[0]]
    return payload


def run_load(
    host: str,
    port: int,
    path: str | Callable[[int], str],
    *,
    count: int,
    concurrency: int,
    protocol: Protocol = "http/1.1",
    headers: Sequence[tuple[str, str]] = (),
    timeout: float = 10.0,
    budget: float = 120.0,
    leave_after_message: bool = False,
) -> LoadResult:
    """Make ``count`` handshakes to ``host:port``, ``concurrency`` at a time; bounded in time.

    ``path`` is the request path, or a function from the connection's index to its path. Each
    connection may take ``timeout`` seconds; after ``budget`` seconds no new connection starts
    and those in flight are ended with ``"budget"``, so the call always returns. With
    ``leave_after_message`` an accepted connection is complete at its first data message, and
    the client closes it (code 1000) instead of waiting for the server's close frame.
    """
    if count < 0 or concurrency < 1:
        raise ValueError(f"count must be >= 0 and concurrency >= 1, got {count}, {concurrency}")
    build = _h2_request if protocol == "h2" else build_handshake
    paths = [path(i) if callable(path) else path for i in range(count)]
    requests = [build(host, port, paths[i], headers) for i in range(count)]
    exchanges = [Exchange(i) for i in range(count)]
    # epoll directly rather than `selectors`: a third less CPU per connection, all of it the
    # client's, which is what lets it stay ahead of the fastest server.
    poll = select.epoll()
    active: dict[int, _Connection] = {}
    address = (host, port)
    next_index = 0
    cpu_start = time.process_time()
    started = time.perf_counter()
    deadline = started + budget
    next_check = started + 0.1

    def close(fd: int, conn: _Connection) -> None:
        # Closing the socket also removes it from the epoll set.
        conn.sock.close()
        del active[fd]

    def flush(fd: int, conn: _Connection) -> None:
        """Write what is pending; then wait to read, or close a finished connection."""
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            conn._fail(_reason(exc))
            close(fd, conn)
            return
        conn.out = conn.out[sent:]
        if conn.out:
            poll.modify(fd, select.EPOLLOUT)
        elif conn.done:
            close(fd, conn)
        else:
            poll.modify(fd, select.EPOLLIN)

    try:
        while active or next_index < count:
            now = time.perf_counter()
            while len(active) < concurrency and next_index < count and now < deadline:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                exchange = exchanges[next_index]
                conn = _Connection(
                    sock, exchange, requests[next_index], protocol, leave_after_message
                )
                next_index += 1
                code = sock.connect_ex(address)
                if code not in (0, errno.EINPROGRESS):
                    exchange.error = f"connect: {os.strerror(code)}"
                    sock.close()
                    continue
                fd = sock.fileno()
                active[fd] = conn
                # On loopback the connection is usually established by now: write at once,
                # and wait for writability only when the socket says so.
                try:
                    sent = sock.send(conn.out)
                except (BlockingIOError, OSError):
                    poll.register(fd, select.EPOLLOUT)
                    continue
                conn.out = conn.out[sent:]
                poll.register(fd, select.EPOLLOUT if conn.out else select.EPOLLIN)
            if now >= deadline and next_index < count:
                for index in range(next_index, count):
                    exchanges[index].error = "budget"
                next_index = count
            if not active:
                continue
            for fd, mask in poll.poll(0.1):
                polled = active.get(fd)
                if polled is None:
                    continue
                conn = polled
                if mask & select.EPOLLOUT:
                    error = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        conn._fail(f"connect: {os.strerror(error)}")
                        close(fd, conn)
                    else:
                        flush(fd, conn)
                    continue
                try:
                    data = conn.sock.recv(_RECV)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    conn._fail(_reason(exc))
                    close(fd, conn)
                    continue
                if not data:
                    conn.eof()
                    close(fd, conn)
                    continue
                conn.feed(data)
                if conn.out:
                    flush(fd, conn)
                elif conn.done:
                    close(fd, conn)
            now = time.perf_counter()
            if now >= next_check:
                next_check = now + 0.1
                for fd, conn in list(active.items()):
                    if now - conn.started > timeout:
                        conn._fail("timeout")
                        close(fd, conn)
                    elif now >= deadline:
                        conn._fail("budget")
                        close(fd, conn)
    finally:
        for fd, conn in list(active.items()):
            conn._fail("aborted")
            close(fd, conn)
        poll.close()
    elapsed = time.perf_counter() - started
    return LoadResult(exchanges, elapsed, time.process_time() - cpu_start, concurrency)


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return "reset"
    return f"{type(exc).__name__}: {exc}"

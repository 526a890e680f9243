"""Faults: the client resets its connection before the denial, between start and body, and during
the body. The helper returns ``"disconnected"`` or completes; it never raises into the server and
never hangs.

In process, the reset is exact: the server's ``send`` raises the ``OSError`` a server raises
once the client is gone (ASGI HTTP & WebSocket spec 2.4), at the chosen message, after
suspending as a real write does.

On real servers (every HTTP/1.1 variant of the matrix, started on 127.0.0.1), the application
of ``bench.fault_app`` stops at the chosen point and waits while the test resets the client with
a TCP RST, then waits (bounded) for the server to close its end, which is how a server shows it
has seen the reset. What a server then does with the denial is its own choice and the test
accepts each that the spec allows.

Over HTTP/2 (hypercorn-h2: RFC 8441 extended CONNECT, h2c with prior knowledge) a client can
leave in two ways, and `H2WireConnection` does both: it resets the WebSocket's stream alone
(RST_STREAM with CANCEL; the connection stays open), or the whole connection (a TCP RST). A
stream reset has reached the server once the ACK of a PING sent after it arrives (RFC 9113
section 6.7; the server reads its connection in order); a connection reset, once the server has
closed its socket for that connection. After a stream reset the same connection must still deny
on a new stream; after either, a new connection must. Observed with the pinned versions:

===========================  ===========================  ====================================
variant                      reset before / between       notes
===========================  ===========================  ====================================
uvicorn-sansio               ``disconnected``             send raises ``ClientDisconnected``
                                                          (OSError)
uvicorn-wsproto              ``disconnected``             likewise
uvicorn-legacy               ``response``                 sends after the reset are dropped
                                                          silently
hypercorn-asyncio            ``response``                 closes its socket at once; the
                                                          sends return normally, dropped
hypercorn-trio               ``response``                 mostly keeps its end open past the
                                                          1 s bound; the sends return
                                                          normally, dropped
hypercorn-h2, stream reset   ``response``                 the stream is marked closed, later
                                                          sends are dropped; the connection
                                                          goes on (PING answered, a new
                                                          stream denied)
hypercorn-h2, connection     ``response``                 closes its socket at once (asyncio
reset                                                     drops the transport on ECONNRESET);
                                                          later sends are dropped
daphne, gunicorn             ``close`` (before)           no extension: the fallback close;
                                                          with no start and no body, no
                                                          "between" or "during"
granian                      ``RuntimeError`` escapes     send raises RuntimeError("ASGI flow
                                                          error: Connection already
                                                          upgraded"), not OSError: `deny`
                                                          lets it through (expected failure)
===========================  ===========================  ====================================

Between start and body, hypercorn over HTTP/2 keeps the start until the body comes, so a client
that leaves then has received no HEADERS: on the wire, "between" is "before".

During the body, every HTTP/1.1 server takes the body message whole and buffers it, so ``send``
returns (``response``) before the reset; the test checks that the client really reset in the
middle of the body (it read part of it) and that the server then dropped the rest quietly.

Over HTTP/2, flow control holds the server to the client's windows. The client acknowledges
nothing (no WINDOW_UPDATE) and hypercorn writes the HEADERS and exactly the initial window of
65,535 octets (DATA of 16,384, 16,384, 16,384 and 16,383), then waits in the body's ``send``.
After either kind of reset that ``send`` never returns (expected failure, both cases): hypercorn
closes the stream but not the stream's send buffer, which goes on waiting for window. It is let
go only when ``h2`` has dropped the closed stream (once another stream opens) and a
connection-level WINDOW_UPDATE comes after that; once the connection is gone, never, and the
application stays in ``send`` until the server is killed. All else holds: the same connection
denies on a new stream, a new connection is denied, nothing is logged.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asgi_ws_deny import Denial, deny
from bench import proc
from bench.serverlog import unexpected_errors
from conformance.client import WireConnection, WireResponse, build_handshake, ws_handshake
from conformance.client_h2 import H2WireConnection, h2_ws_handshake
from conformance.servers import VARIANTS, RunningServer, run_server
from tests.helpers import forbidden_receive, websocket_scope

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"error":"unauthorized"}'

# --- in process ------------------------------------------------------------------------------


def _client_disconnected() -> type[OSError]:
    from uvicorn.protocols.utils import ClientDisconnected

    return ClientDisconnected


#: What servers raise from ``send`` once the client has gone (all ``OSError`` subclasses).
OS_ERRORS = [
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
    OSError,
    _client_disconnected(),
]


class ResettingSend:
    """A server's ``send`` whose client resets at ``point``:

    ``before``   the first message finds the client gone;
    ``between``  the start is taken, the body finds the client gone;
    ``during``   the body is taken, the write suspends, then the client resets.

    Every call suspends first, as a write that waits for the socket does.
    """

    def __init__(self, point: str, error: type[OSError]) -> None:
        self.point = point
        self.error = error
        self.delivered: list[dict[str, Any]] = []
        self.calls = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        if self.point == "before" or (self.point == "between" and self.calls == 2):
            raise self.error("client reset")
        self.delivered.append(message)
        if self.point == "during" and self.calls == 2:
            await anyio.lowlevel.checkpoint()
            raise self.error("client reset while writing the body")


DENIAL = Denial(401, [("www-authenticate", 'Bearer realm="api"')], BODY)


async def by_deny(scope: dict[str, Any], send: Any) -> object:
    return await deny(scope, send, 401, [("www-authenticate", 'Bearer realm="api"')], BODY)


async def by_denial(scope: dict[str, Any], send: Any) -> object:
    return await deny(scope, send, DENIAL)


async def by_application(scope: dict[str, Any], send: Any) -> object:
    await DENIAL(scope, forbidden_receive, send)
    return None


CALLS = {"deny": by_deny, "deny-denial": by_denial, "application": by_application}


@pytest.mark.anyio
@pytest.mark.parametrize("error", OS_ERRORS, ids=lambda error: error.__name__)
@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(
    ("point", "extension", "delivered"),
    [
        ("before", True, 0),
        ("between", True, 1),
        ("during", True, 2),
        ("before", False, 0),
    ],
    ids=["before", "between", "during", "before-fallback"],
)
async def test_a_reset_ends_the_denial_quietly(
    point: str, extension: bool, delivered: int, call: str, error: type[OSError]
) -> None:
    send = ResettingSend(point, error)
    with anyio.fail_after(5):
        outcome = await CALLS[call](websocket_scope(extension=extension), send)
    assert outcome == (None if call == "application" else "disconnected")
    assert len(send.delivered) == delivered
    # Nothing more is tried once the client is known to be gone.
    assert send.calls == {"before": 1, "between": 2, "during": 2}[point]


@pytest.mark.anyio
async def test_a_send_that_never_returns_can_be_cancelled(core: ModuleType) -> None:
    """A server that cancels the application (its client left) stops a denial in ``send``."""
    entered = anyio.Event()
    calls = 0

    async def stuck_send(message: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        entered.set()
        await anyio.Event().wait()

    finished = False

    async def denying() -> None:
        nonlocal finished
        await core.deny(websocket_scope(), stuck_send, 401)
        finished = True

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(denying)
            await entered.wait()
            group.cancel_scope.cancel()
    assert not finished
    assert calls == 1


@pytest.mark.anyio
async def test_other_errors_from_send_are_not_taken_for_a_reset(core: ModuleType) -> None:
    """Only OSError means "the client left"; a server's other errors reach the server."""

    async def broken_send(message: dict[str, Any]) -> None:
        raise RuntimeError("server bug")

    with pytest.raises(RuntimeError, match="server bug"):
        await core.deny(websocket_scope(), broken_send, 401)


def _guard_apps() -> dict[str, Any]:
    from asgi_ws_deny import Denied, WebSocketGuard

    async def never_called(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a refused handshake reached the application")

    async def raises_denied(scope: Any, receive: Any, send: Any) -> None:
        raise Denied(401, [("www-authenticate", 'Bearer realm="api"')], BODY)

    async def returns(scope: Any, receive: Any, send: Any) -> None:
        return None

    return {
        "check-refuses": WebSocketGuard(never_called, check=lambda handshake: DENIAL),
        "app-raises-denied": WebSocketGuard(raises_denied),
        "app-returns": WebSocketGuard(returns),
    }


@pytest.mark.anyio
@pytest.mark.parametrize("app", ["check-refuses", "app-raises-denied", "app-returns"])
@pytest.mark.parametrize("point", ["before", "between", "during"])
async def test_the_guard_ends_a_denial_quietly_when_the_client_resets(app: str, point: str) -> None:
    send = ResettingSend(point, ConnectionResetError)
    with anyio.fail_after(5):
        await _guard_apps()[app](websocket_scope(), forbidden_receive, send)
    assert send.calls <= 2


# --- on real servers -------------------------------------------------------------------------

#: HTTP/1.1 variants. Those without the denial-response extension deny with one close: they
#: have no "between" and no body to reset "during".
FAULT_VARIANTS = [name for name, variant in VARIANTS.items() if variant.protocol == "http/1.1"]
WITHOUT_EXTENSION = {"daphne", "gunicorn"}
WITH_EXTENSION = [name for name in FAULT_VARIANTS if name not in WITHOUT_EXTENSION]
ALLOWED = {"outcome response", "outcome close", "outcome disconnected"}
#: granian raises RuntimeError, not OSError, from ``send`` once the client has reset during
#: the handshake, so `deny` cannot tell it from a bug and lets it through.
RAISES_ON_RESET = {"granian"}
#: How long the server may take to show it has seen the reset (by closing its socket).
NOTICE_S = 1.0


@pytest.fixture(scope="module", params=FAULT_VARIANTS)
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with run_server(request.param, "bench.fault_app:app", app_dir=ROOT) as running:
        yield running


class Control:
    """The test's end of the application's control connection: lines in, ``go`` out."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port: int = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.buffer = b""

    def accept(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(10)

    def line(self) -> str:
        assert self.conn is not None
        while b"\n" not in self.buffer:
            data = self.conn.recv(4096)
            if not data:
                raise AssertionError(f"the application ended without a word: {self.buffer!r}")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def go(self) -> None:
        assert self.conn is not None
        self.conn.sendall(b"go\n")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def control() -> Iterator[Control]:
    control = Control()
    yield control
    control.close()


def open_denial(
    server: RunningServer, control: Control, path: str, query: str = ""
) -> WireConnection:
    client = WireConnection(server.host, server.port, timeout=10)
    target = f"{path}?control={control.port}{query}"
    client.send(build_handshake(server.host, server.port, target))
    control.accept()
    assert control.line() == f"entered {path}"
    return client


def reset(client: WireConnection) -> None:
    """Reset the client's connection. On 127.0.0.1 the RST reaches the server's socket before
    ``abort`` returns (measured: 2,000 times of 2,000), so whatever the app sends next goes to
    a reset connection, whether or not the server has noticed yet (some close their end at
    once, others only when they next read or write): both are a reset before the app's next
    send."""
    client.abort()


def assert_the_server_carries_on(server: RunningServer, mark: int) -> None:
    assert server.alive()
    answer = ws_handshake(server.host, server.port, "/deny", timeout=10, wait_close=0)
    expected = 403 if server.variant.name in WITHOUT_EXTENSION else 401
    assert answer.status == expected, answer.summary()
    assert unexpected_errors(server.variant.name, server.log(mark)) == []


def expect_failure_where_send_raises(server: RunningServer, request: pytest.FixtureRequest) -> None:
    if server.variant.name in RAISES_ON_RESET:
        request.applymarker(
            pytest.mark.xfail(
                reason="granian raises RuntimeError, not OSError, from send after a reset",
                raises=AssertionError,
                strict=True,
            )
        )


def test_reset_before_the_denial(
    server: RunningServer, control: Control, request: pytest.FixtureRequest
) -> None:
    expect_failure_where_send_raises(server, request)
    mark = server.log_mark()
    client = open_denial(server, control, "/before")
    reset(client)
    control.go()
    assert control.line() in ALLOWED
    assert_the_server_carries_on(server, mark)


@pytest.mark.parametrize("server", WITH_EXTENSION, indirect=True)
def test_reset_between_start_and_body(
    server: RunningServer, control: Control, request: pytest.FixtureRequest
) -> None:
    expect_failure_where_send_raises(server, request)
    mark = server.log_mark()
    client = open_denial(server, control, "/between")
    assert control.line() == "started"
    reset(client)
    control.go()
    assert control.line() in ALLOWED
    assert_the_server_carries_on(server, mark)


def test_reset_during_the_body(server: RunningServer, control: Control) -> None:
    size = 8 * 1024 * 1024
    mark = server.log_mark()
    client = WireConnection(server.host, server.port, timeout=10)
    client.send(
        build_handshake(server.host, server.port, f"/during?control={control.port}&size={size}")
    )
    control.accept()
    assert control.line() == "entered /during"
    if server.variant.name in WITHOUT_EXTENSION:
        assert control.line() == "outcome close"
        client.abort()
        assert_the_server_carries_on(server, mark)
        return
    received = b""
    while b"\r\n\r\n" not in received or len(received) < 65536:
        data = client.sock.recv(65536)
        assert data, f"the server closed after {len(received)} bytes"
        received += data
    assert received.startswith(b"HTTP/1.1 401")
    assert len(received) < size, "the body must still be on its way when the client resets"
    client.abort()
    assert control.line() in ALLOWED
    assert_the_server_carries_on(server, mark)


# --- over HTTP/2 -----------------------------------------------------------------------------

#: hypercorn lists the extension over HTTP/2 as well, so the fallback close is no outcome here.
H2_ALLOWED = {"outcome response", "outcome disconnected"}
#: RFC 9113 section 6.9.2: the initial window of a stream and of the connection alike.
H2_INITIAL_WINDOW = 65_535
#: A body larger than the initial window, so that its end is still held back by flow control.
H2_BODY_SIZE = 1024 * 1024


class StillSending(AssertionError):
    """The application was still in ``send`` when the bound after the reset had passed."""


#: hypercorn keeps an HTTP/2 stream's send buffer waiting for window after the client has left
#: (module docstring): the body's ``send`` never returns.
SEND_NEVER_RETURNS = pytest.mark.xfail(
    reason="hypercorn-h2 never releases the body's send once the client leaves during it",
    raises=StillSending,
    strict=True,
)


@pytest.fixture(scope="module")
def h2_server() -> Iterator[RunningServer]:
    # The sends the "during" cases leave behind keep hypercorn from exiting on SIGTERM: kill it
    # after NOTICE_S rather than after the default five seconds.
    with run_server(
        "hypercorn-h2", "bench.fault_app:app", app_dir=ROOT, stop_timeout=NOTICE_S
    ) as running:
        yield running


def open_h2_denial(conn: H2WireConnection, control: Control, point: str, query: str = "") -> int:
    """Open a WebSocket stream to ``/<point>`` and wait until the application stops there."""
    stream = conn.open_websocket(f"/{point}?control={control.port}{query}")
    control.accept()
    assert control.line() == f"entered /{point}"
    if point == "between":
        assert control.line() == "started"
    return stream


def read_the_first_window(conn: H2WireConnection, stream: int) -> None:
    """Read the denial's HEADERS and as much of its body as flow control lets the server send
    (nothing is acknowledged): part of it, and the stream still open."""
    response = conn.responses[stream]
    assert conn.read_until(lambda: len(response.body) >= H2_INITIAL_WINDOW), response.summary()
    assert response.status == 401
    assert response.first("content-length") == str(H2_BODY_SIZE).encode()
    assert len(response.body) == H2_INITIAL_WINDOW < H2_BODY_SIZE
    assert not response.closed
    assert conn.error is None


def server_socket_for(server: RunningServer, client: socket.socket) -> str:
    """The ``socket:[inode]`` link of the server's end of ``client``'s connection."""
    client_port = client.getsockname()[1]
    with Path("/proc/net/tcp").open() as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)) == (
                server.port,
                client_port,
            ):
                return f"socket:[{fields[9]}]"
    raise AssertionError(f"no connection from port {client_port} to the server")


def holds(pids: Iterable[int], link: str) -> bool:
    """Whether one of ``pids`` has a descriptor open on ``link`` (a ``socket:[inode]``)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == link:
                        return True
    return False


def reset_the_connection(server: RunningServer, conn: H2WireConnection) -> None:
    """Reset the whole connection (TCP RST) and wait until the server has closed its end.

    Only that socket is watched: counting every descriptor would also see the connections of
    earlier cases close.
    """
    end = server_socket_for(server, conn.sock)
    pids = proc.group_pids(server.pid)
    conn.abort()
    assert proc.wait_until(lambda: not holds(pids, end), NOTICE_S), "the server kept its end"


def reset_the_stream(conn: H2WireConnection, stream: int) -> int:
    """Reset one stream (RST_STREAM, CANCEL) and wait until the server has read the reset;
    how many frames had arrived by then."""
    conn.reset_stream(stream)
    assert conn.ping(), "no PING ACK after the RST_STREAM"
    return len(conn.frames)


def assert_nothing_more_on(conn: H2WireConnection, stream: int, since: int) -> None:
    """No frame on ``stream`` after the server read its reset: the stream is closed, and a
    closed stream carries nothing but PRIORITY (RFC 9113 section 5.1)."""
    assert [str(frame) for frame in conn.frames[since:] if frame.stream == stream] == []


def outcome_within(control: Control, seconds: float) -> str | None:
    """The application's next line, or None if it has written none within ``seconds``."""
    assert control.conn is not None
    control.conn.settimeout(seconds)
    try:
        return control.line()
    except TimeoutError:
        return None
    finally:
        control.conn.settimeout(10)


def assert_an_h2_denial(response: WireResponse) -> None:
    """The fault app's ordinary ``/deny``, whole: 401, its header, its body, END_STREAM."""
    assert response.status == 401, response.summary()
    assert response.first("www-authenticate") == b'Bearer realm="api"'
    assert response.body == BODY
    assert response.closed
    assert not response.reset
    assert not response.timed_out


def assert_the_connection_still_denies(conn: H2WireConnection) -> None:
    """A new stream on the connection whose stream was reset gets its whole denial: the reset
    ended that stream, not the connection (RFC 9113 section 5.4.2)."""
    assert_an_h2_denial(conn.read_response(conn.open_websocket("/deny")))
    assert not conn.closed
    assert not conn.goaway
    assert conn.error is None


def assert_the_h2_server_carries_on(server: RunningServer, mark: int) -> None:
    """The server still runs, denies on a new connection and has logged no unexpected error."""
    assert server.alive()
    assert_an_h2_denial(h2_ws_handshake(server.host, server.port, "/deny", timeout=10))
    assert unexpected_errors(server.variant.name, server.log(mark)) == []


@pytest.mark.parametrize("point", ["before", "between"])
def test_h2_stream_reset_before_the_body(
    h2_server: RunningServer, control: Control, point: str
) -> None:
    """A stream reset ends the denial quietly, and that stream only: the server sends nothing
    more on it and goes on serving the same connection."""
    mark = h2_server.log_mark()
    with H2WireConnection(h2_server.host, h2_server.port, timeout=10) as conn:
        stream = open_h2_denial(conn, control, point)
        since = reset_the_stream(conn, stream)
        control.go()
        assert control.line() in H2_ALLOWED
        assert_the_connection_still_denies(conn)
        assert_nothing_more_on(conn, stream, since)
    assert_the_h2_server_carries_on(h2_server, mark)


@pytest.mark.parametrize("point", ["before", "between"])
def test_h2_connection_reset_before_the_body(
    h2_server: RunningServer, control: Control, point: str
) -> None:
    """A connection reset ends the denial on it quietly; the server serves new connections."""
    mark = h2_server.log_mark()
    with H2WireConnection(h2_server.host, h2_server.port, timeout=10) as conn:
        open_h2_denial(conn, control, point)
        reset_the_connection(h2_server, conn)
    control.go()
    assert control.line() in H2_ALLOWED
    assert_the_h2_server_carries_on(h2_server, mark)


@SEND_NEVER_RETURNS
def test_h2_stream_reset_during_the_body(h2_server: RunningServer, control: Control) -> None:
    """A stream reset while the body waits for window: the body's send must end (it does not,
    on hypercorn), the connection must go on (it does)."""
    mark = h2_server.log_mark()
    with H2WireConnection(h2_server.host, h2_server.port, timeout=10, acknowledge=False) as conn:
        stream = open_h2_denial(conn, control, "during", f"&size={H2_BODY_SIZE}")
        read_the_first_window(conn, stream)
        since = reset_the_stream(conn, stream)
        # Before anything else is sent: a new stream and more window would let hypercorn go.
        outcome = outcome_within(control, NOTICE_S)
        assert_the_connection_still_denies(conn)
        assert_nothing_more_on(conn, stream, since)
    assert_the_h2_server_carries_on(h2_server, mark)
    if outcome is None:
        raise StillSending("the application is still in send after the stream reset")
    assert outcome in H2_ALLOWED


@SEND_NEVER_RETURNS
def test_h2_connection_reset_during_the_body(h2_server: RunningServer, control: Control) -> None:
    """A connection reset while the body waits for window: the body's send must end (it does
    not, on hypercorn), the server must go on (it does)."""
    mark = h2_server.log_mark()
    with H2WireConnection(h2_server.host, h2_server.port, timeout=10, acknowledge=False) as conn:
        stream = open_h2_denial(conn, control, "during", f"&size={H2_BODY_SIZE}")
        read_the_first_window(conn, stream)
        reset_the_connection(h2_server, conn)
    outcome = outcome_within(control, NOTICE_S)
    assert_the_h2_server_carries_on(h2_server, mark)
    if outcome is None:
        raise StillSending("the application is still in send after the connection reset")
    assert outcome in H2_ALLOWED

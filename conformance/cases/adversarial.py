"""Group 8, adversarial clients: what a server does around a denial when the client misbehaves.

Real clients and intermediaries do more than ask once and read the answer. Around a denial the
client here pipelines a second request, or sends it on the same connection after the answer;
sends bytes after the request head; half-closes its side before the answer; dribbles the head;
never reads a large denial; resets the connection once the response has started. Each runs
against ``conformance.apps`` ``adv-*`` behaviours: the app takes ``websocket.connect``, denies
through ``deny()`` (the response where the extension is listed, else the fallback close, 403)
or through the fallback close alone (``close``), then returns at once or stays in
``receive()``. What the app saw (deny()'s outcome, what receive() returned) is in the detail.

A denial is *whole* when the client gets the response deny() promises: 401 with its body where
the extension is listed, 403 where it is not or where the app closes. After every case, as
after every case of the suite, the server must still serve a fresh connection
(`conformance.runner.still_serves`).
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from conformance import apps
from conformance.cases.case import H1, Case, Level
from conformance.cases.probe import (
    CLOSE_WAIT,
    EVENT_WAIT,
    HANG,
    Observation,
    Probe,
    base_cell,
    crash_or,
    show,
    traceback_logged,
)
from conformance.client import LINGER_RESET, WireConnection, WireResponse, build_handshake

__all__ = ("CASES", "GROUP", "TITLE")

GROUP = "8"
TITLE = "Adversarial clients"

RFC_9112 = "RFC 9112"
#: Where a second request goes: the conformance app closes it (403).
SECOND = "/close"
#: A masked WebSocket text frame, "hello" (RFC 6455 section 5.3), as an eager client sends
#: before the 101 arrives.
_KEY = b"\x01\x02\x03\x04"
EAGER_FRAME = bytes([0x81, 0x85]) + _KEY + bytes(b ^ _KEY[n % 4] for n, b in enumerate(b"hello"))
#: The slow client: the head in pieces of this many bytes, this many seconds apart.
DRIBBLE_PIECE = 16
DRIBBLE_PAUSE = 0.02
#: The receive buffer of the client that never reads (the kernel may round it up).
SMALL_BUFFER = 4096


@dataclass(frozen=True)
class Reading:
    """What the client saw: the response, the words it adds to the cell, whether that part
    of the check is met."""

    response: WireResponse
    extra: str = ""
    ok: bool = True
    detail: str = ""


def _second_target() -> str:
    return f"{SECOND}?t=second-{uuid.uuid4().hex[:8]}"


def _trailing(response: WireResponse) -> bytes:
    """Bytes the server wrote after the response: in ``extra``, or, for a body delimited by the
    end of the connection, from the first status line inside it."""
    if response.extra:
        return response.extra
    delimited = response.header("content-length") or response.chunked
    if not delimited and b"HTTP/1.1 " in response.body:
        return response.body[response.body.index(b"HTTP/1.1 ") :]
    return b""


def _second(trailing: bytes) -> str:
    """What followed the denial on the connection: nothing, a second response, or garbage."""
    if not trailing:
        return "2nd none"
    if trailing.startswith(b"HTTP/1.1 ") and trailing[9:12].isdigit():
        return f"2nd {int(trailing[9:12])}"
    return "garbage after"


# --- The client behaviours --------------------------------------------------------------------


def pipelined(probe: Probe, target: str) -> Reading:
    """The handshake and a second one in one write, before reading anything."""
    host, port = probe.server.host, probe.server.port
    requests = build_handshake(host, port, target) + build_handshake(host, port, _second_target())
    with WireConnection(host, port, timeout=HANG) as connection:
        connection.send(requests)
        response = connection.read(timeout=HANG, wait_close=CLOSE_WAIT)
    second = _second(_trailing(response))
    return Reading(response, second, second != "garbage after")


def reused(probe: Probe, target: str) -> Reading:
    """After reading the denial, a second handshake on the same connection, if it is open."""
    host, port = probe.server.host, probe.server.port
    with WireConnection(host, port, timeout=HANG) as connection:
        response = connection.handshake(target, timeout=HANG, wait_close=0.3)
        if response.closed or response.status is None:
            return Reading(response, "closed")
        second = connection.handshake(_second_target(), timeout=HANG)
    # An open connection must answer what comes on it, or close: silence hangs the client.
    answered = second.status is not None or (second.closed and not second.timed_out)
    return Reading(response, f"2nd {base_cell(second)}", answered, show(second))


def bytes_after_head(probe: Probe, target: str) -> Reading:
    """A WebSocket frame right after the head, in the same write, as an eager client sends."""
    host, port = probe.server.host, probe.server.port
    with WireConnection(host, port, timeout=HANG) as connection:
        connection.send(build_handshake(host, port, target) + EAGER_FRAME)
        response = connection.read(timeout=HANG, wait_close=CLOSE_WAIT)
    trailing = _trailing(response)
    # The frame is no request: nothing may answer it (a 400 after the denial reads it as one).
    return Reading(response, _second(trailing) if trailing else "", not trailing)


def half_closed(probe: Probe, target: str) -> Reading:
    """The handshake, then, once the app has it, the client's FIN (it shuts down its sending
    side); the app denies after that (``go``), and the client reads."""
    host, port = probe.server.host, probe.server.port
    with WireConnection(host, port, timeout=HANG) as connection:
        connection.send(build_handshake(host, port, target))
        probe.wait_event("waiting", timeout=HANG)
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_WR)
        probe.go()
        response = connection.read(timeout=HANG, wait_close=CLOSE_WAIT)
    return Reading(response)


def dribbled(probe: Probe, target: str) -> Reading:
    """The head in small pieces, a pause between them: a slow client, not a stalled one."""
    host, port = probe.server.host, probe.server.port
    head = build_handshake(host, port, target)
    with WireConnection(host, port, timeout=HANG) as connection:
        for start in range(0, len(head), DRIBBLE_PIECE):
            connection.send(head[start : start + DRIBBLE_PIECE])
            # The pause is the behaviour under test (a slow client), not a synchronisation.
            time.sleep(DRIBBLE_PAUSE)
        response = connection.read(timeout=HANG, wait_close=CLOSE_WAIT)
    return Reading(response)


def never_read(probe: Probe, target: str) -> Reading:
    """A client with a small receive buffer asks for a large denial and reads none of it; while
    it holds the connection, a fresh client must be served."""
    host, port = probe.server.host, probe.server.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        sock.settimeout(HANG)
        sock.connect((host, port))
        sock.sendall(build_handshake(host, port, target))
        called = probe.wait_event("connect", timeout=HANG)
        # deny() returns at once where the server buffers the body, or waits on the client.
        denied = probe.wait_event("outcome", timeout=CLOSE_WAIT)
        other = probe.request(_second_target(), timeout=HANG)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    app = "app not called" if called is None else "deny() waits"
    if denied is not None:
        app = f"deny() {denied.get('outcome')}"
    served = other.status is not None
    others = "serves others" if served else f"others {base_cell(other)}"
    # The stalled client's own response is never read: the cell is about everyone else.
    return Reading(WireResponse(), f"{others}, {app}", served, f"other: {show(other)}")


def reset_mid_response(probe: Probe, target: str) -> Reading:
    """Read the response head, then reset the connection while the body is on its way."""
    host, port = probe.server.host, probe.server.port
    with WireConnection(host, port, timeout=HANG) as connection:
        connection.send(build_handshake(host, port, target))
        head = b""
        deadline = time.monotonic() + HANG
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in head and time.monotonic() < deadline:
                connection.sock.settimeout(max(deadline - time.monotonic(), 0.01))
                chunk = connection.sock.recv(65536)
                if not chunk:
                    break
                head += chunk
        connection.abort()
    response = WireResponse(raw=head)
    if b"\r\n\r\n" in head and head[9:12].isdigit():
        response.status = int(head[9:12])
    else:
        response.closed = True
        return Reading(response)
    outcome = (probe.wait_event("outcome", timeout=EVENT_WAIT) or {}).get("outcome")
    probe.settle()
    traceback = traceback_logged(probe)
    extra = f"deny() {outcome}" + (", traceback" if traceback else "")
    # deny() must give an outcome (the client's departure is "disconnected", never an error).
    ok = outcome in ("response", "close", "disconnected") and not traceback
    return Reading(response, extra, ok)


# --- Reading a case ---------------------------------------------------------------------------


def _wanted(probe: Probe, denial: str) -> int:
    """The status deny() promises here: 401 where the extension is listed, else 403."""
    if denial == "close":
        return 403
    return 401 if probe.extension_listed_on_server() else 403


def _app_detail(probe: Probe) -> str:
    events = {event["event"]: event for event in probe.events()}
    outcome = events.get("outcome", {}).get("outcome")
    receive = events.get("receive", {})
    received = receive.get("message") or receive.get("outcome")
    return f"app: deny() {outcome}, receive() {received or 'not returned yet'}"


@dataclass(frozen=True)
class Behaviour:
    """One adversarial client, its level and what it requires."""

    key: str
    label: str
    client: Callable[[Probe, str], Reading]
    level: Level
    description: str
    reference: str
    #: deny() sends `apps.ADVERSARIAL_BODY` (8 MiB) rather than a short body.
    large: bool = False
    #: The client reads only the response head (its body is the case's business, not its own).
    head_only: bool = False
    #: The client never reads its own response: the cell is the client's reading alone.
    unread: bool = False
    #: The app denies only on the client's signal (``go=1``): after its half-close.
    go: bool = False
    default: str = ""


def _run(behaviour: Behaviour, denial: str, wait: bool) -> Callable[[Probe], Observation]:
    mode = "receive" if wait else "return"
    app = f"adv-large-{mode}" if behaviour.large and denial == "deny" else f"adv-{denial}-{mode}"
    body = apps.ADVERSARIAL_BODY if behaviour.large else apps.JSON_BODY

    def run(probe: Probe) -> Observation:
        want = _wanted(probe, denial)
        if behaviour.unread and want != 401:
            return Observation("n/a", None, detail="no large denial without the extension")
        reading = behaviour.client(probe, probe.target(app) + ("&go=1" if behaviour.go else ""))
        response = reading.response
        if behaviour.unread:
            cell, ok = reading.extra, reading.ok
        else:
            if response.status == want and (
                behaviour.head_only or want != 401 or response.body == body
            ):
                cell = "denial ok"
            elif response.status == want:
                cell = "denial cut"
            else:
                cell = crash_or(probe, response)
            ok = cell == "denial ok" and reading.ok
            if reading.extra:
                cell += f", {reading.extra}"
        detail = "; ".join(
            part for part in (reading.detail, _app_detail(probe), show(response, 300)) if part
        )
        conforms = None if behaviour.level == "INFO" else ok
        return Observation(cell, conforms, response.status, detail)

    run.__name__ = f"run_{behaviour.key.replace('-', '_')}_{denial}_{mode}"
    return run


MODES = (("deny", False), ("deny", True), ("close", False), ("close", True))

BEHAVIOURS = (
    Behaviour(
        "pipelined",
        "Pipelined",
        pipelined,
        "SHOULD",
        "The client sends a second handshake in the same write, before reading: the denial "
        "arrives whole, and nothing but an HTTP response follows it on the connection.",
        f"{RFC_9112} section 9.3.2 (pipelining)",
    ),
    Behaviour(
        "reused",
        "Reused",
        reused,
        "SHOULD",
        "After reading the denial the client sends a second handshake on the connection, if "
        "it is still open: it is closed, or the second handshake is answered (never silence).",
        f"{RFC_9112} section 9.3 (persistence)",
    ),
    Behaviour(
        "bytes-after-head",
        "Bytes after head",
        bytes_after_head,
        "SHOULD",
        "A WebSocket frame follows the head in the same write, as from a client that does not "
        "wait for the 101: the denial arrives whole, with nothing after it.",
        "RFC 6455 section 4.1 (the client waits for the server's handshake)",
    ),
    Behaviour(
        "half-close",
        "Half-close",
        half_closed,
        "INFO",
        "The client shuts down its sending side (a FIN) once the app has the handshake, "
        "the app denies after that, the client reads: is the denial still written?",
        f"{RFC_9112} section 9.6 (tear-down)",
        default="no response",
        go=True,
    ),
    Behaviour(
        "slow-head",
        "Slow head",
        dribbled,
        "MUST",
        f"The head arrives in {DRIBBLE_PIECE}-byte pieces {DRIBBLE_PAUSE * 1000:g} ms apart: "
        "the denial arrives whole, as for a fast client.",
        f"{RFC_9112} section 2.2 (a message is read as a stream)",
    ),
    Behaviour(
        "large-unread",
        "Large unread",
        never_read,
        "MUST",
        "deny() with an 8 MiB body to a client with a small receive buffer that reads none of "
        "it: while that client holds the connection, a fresh client is served.",
        "ASGI spec, Disconnected Client; a server serves its clients independently",
        large=True,
        unread=True,
    ),
    Behaviour(
        "reset",
        "Reset mid-response",
        reset_mid_response,
        "MUST",
        "The client reads the response head, then resets the connection (RST) while the body "
        "(8 MiB where the extension is listed) is on its way: deny() returns an outcome "
        "('disconnected' for a client that left), no traceback in the server log.",
        "asgi_ws_deny docs: deny() outcome 'disconnected'; ASGI spec, Disconnected Client",
        large=True,
        head_only=True,
    ),
)


def _cases() -> tuple[Case, ...]:
    cases: list[Case] = []
    for behaviour in BEHAVIOURS:
        for denial, wait in MODES:
            if behaviour.unread and denial == "close":
                continue  # the fallback close has no body to leave unread
            mode = "in receive()" if wait else "returns"
            how = "deny()" if denial == "deny" else "the fallback close"
            after = "then stays in receive()" if wait else "then returns"
            cases.append(
                Case(
                    f"8.{len(cases) + 1}",
                    f"{behaviour.key}-{denial}-{'receive' if wait else 'return'}",
                    f"{behaviour.label}: {'deny()' if denial == 'deny' else 'close'}, {mode}",
                    f"{behaviour.description} The app denies with {how}, {after}.",
                    behaviour.reference,
                    behaviour.level,
                    _run(behaviour, denial, wait),
                    default=behaviour.default,
                    protocols=H1,
                )
            )
    return tuple(cases)


CASES: tuple[Case, ...] = _cases()

"""Cases for what the guard keeps after the handshake, on every server: the application's
``receive`` after a denial, one-time tickets, connection caps and message limits (issues:
"The guard shields the application from what a server does after a denial"; "connection caps,
one-time tickets for browsers, limits after admission").

Each case runs
``conformance.apps_admission:app`` through the public API of asgi_ws_deny and is a helper-contract
MUST. The connection-cap, message-limit and receive cases hold an HTTP/1.1 connection open and
write frames on it, so they are ``n/a`` over HTTP/2 and HTTP/3.
"""

from __future__ import annotations

import time
import uuid

from conformance.cases.case import Case
from conformance.cases.probe import (
    CLOSE_WAIT,
    EVENT_WAIT,
    HANG,
    Observation,
    Probe,
    base_cell,
    crash_or,
    show,
)
from conformance.client import CLOSE, TEXT, WireConnection, build_handshake, close_frame

__all__ = ("APP", "CASES", "GROUP", "TITLE")

GROUP = "9"
TITLE = "What the guard keeps after admission"

APP = "conformance.apps_admission:app"
H1 = frozenset({"http/1.1"})
#: How long a lease may take to come back after the client closed (the server's close handshake,
#: then the application's disconnect).
RELEASE_WAIT = 3.0


def _masked_text(payload: bytes) -> bytes:
    """A client's text frame (RFC 6455 section 5.3: masked; a zero key leaves the payload)."""
    assert len(payload) < 126
    return bytes((0x80 | TEXT, 0x80 | len(payload))) + b"\x00\x00\x00\x00" + payload


def _refusal_cell(probe: Probe, status: int | None) -> tuple[str, bool]:
    """``401``/``429`` where the extension is listed, the fallback 403 where it is not."""
    listed = probe.extension_listed_on_server()
    return ("403 fallback", status == 403) if listed is False else (str(status), False)


def run_receive_after_denial(probe: Probe) -> Observation:
    target = probe.target("deny-then-receive")
    with WireConnection(probe.server.host, probe.server.port, timeout=HANG) as connection:
        connection.send(build_handshake(probe.server.host, probe.server.port, target))
        response = connection.read(timeout=HANG, wait_close=0.3)
        # The client still holds the connection: the guarded app must have its disconnect.
        early = probe.wait_event("receive", timeout=EVENT_WAIT)
    if early is not None:
        code = early.get("code")
        cell = f"disconnect {code} at once"
        return Observation(cell, code == 1006, response.status, f"{early!r}; {show(response)}")
    late = probe.wait_event("receive", timeout=EVENT_WAIT)
    cell = "on client close" if late is not None else crash_or(probe, response)
    if cell == base_cell(response):
        cell = "blocks"
    return Observation(cell, False, response.status, f"{late!r}; {show(response)}")


def run_ticket_once(probe: Probe) -> Observation:
    issued = probe.open(probe.target("issue"))
    if not issued.accepted or not issued.texts:
        return Observation(
            f"no ticket: {base_cell(issued.response)}", False, None, show(issued.response)
        )
    offer = [("Sec-WebSocket-Protocol", f"chat, ticket.{issued.texts[0].decode()}")]
    first = probe.open(probe.target("ticket-chat"), headers=offer)
    again = probe.request(probe.target("ticket-chat"), headers=offer, wait_close=CLOSE_WAIT)
    problems = []
    if not first.accepted:
        problems.append(f"the ticket was refused: {base_cell(first.response)}")
    else:
        if first.response.header("sec-websocket-protocol") != [b"chat"]:
            problems.append(f"subprotocol {first.response.header('sec-websocket-protocol')!r}")
        if first.texts[:1] != [b"hello alice"]:
            problems.append(f"no subject: {first.texts!r}")
    refused, fallback_ok = _refusal_cell(probe, again.status)
    if refused == "401":
        conforms_again = again.status == 401 and again.body == b'{"error":"invalid_ticket"}'
    else:
        conforms_again = fallback_ok
    if not conforms_again:
        problems.append(f"the reused ticket: {show(again)}")
    admitted = str(first.response.status) if first.accepted else base_cell(first.response)
    cell = f"{admitted} once, then {refused}"
    detail = "; ".join([*problems, show(first.response), show(again)])
    return Observation(cell, not problems, again.status, detail)


def run_connection_cap(probe: Probe) -> Observation:
    user = uuid.uuid4().hex[:8]
    host, port = probe.server.host, probe.server.port
    holder = WireConnection(host, port, timeout=HANG)
    with holder:
        held = holder.handshake(f"/capped?user={user}")
        if held.status != 101:
            return Observation(f"first: {base_cell(held)}", False, held.status, show(held))
        second = probe.request(f"/capped?user={user}", wait_close=CLOSE_WAIT)
        holder.send(close_frame(1000))
        holder.read_frames(timeout=HANG)
    refused, fallback_ok = _refusal_cell(probe, second.status)
    if refused == "429":
        refused_ok = second.status == 429 and second.first("retry-after") == b"5"
    else:
        refused_ok = fallback_ok
    deadline = time.monotonic() + RELEASE_WAIT
    while True:
        third = probe.request(f"/capped?user={user}")
        if third.status == 101 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    released = "released on close" if third.status == 101 else f"not released ({third.status})"
    cell = f"{refused}, {released}"
    detail = "; ".join([show(second), show(third)])
    return Observation(cell, refused_ok and third.status == 101, second.status, detail)


def run_message_limit(probe: Probe) -> Observation:
    return _message_limit(probe, "limited", 1009)


def run_message_limit_4009(probe: Probe) -> Observation:
    return _message_limit(probe, "limited-4009", 4009)


def _message_limit(probe: Probe, behaviour: str, want: int) -> Observation:
    target = probe.target(behaviour)
    with WireConnection(probe.server.host, probe.server.port, timeout=HANG) as connection:
        response = connection.handshake(target)
        if response.status != 101:
            return Observation(base_cell(response), False, response.status, show(response))
        connection.send(_masked_text(b"x" * 16))
        connection.send(_masked_text(b"x" * 17))
        frames = connection.read_frames(timeout=HANG)
        close = next((payload for opcode, payload in frames if opcode == CLOSE), None)
        if close is not None:
            connection.send(close_frame(int.from_bytes(close[:2], "big") if close else 1000))
    event = probe.wait_event("disconnect", timeout=EVENT_WAIT)
    echoed = [payload for opcode, payload in frames if opcode == TEXT] == [b"x" * 16]
    if close is None:
        return Observation("no close", False, 101, f"frames {frames!r}; app {event!r}")
    code, reason = int.from_bytes(close[:2], "big"), close[2:]
    cell = f"close {code}" + ("" if reason == b"message too big" else ", reason dropped")
    app_saw = event is not None and event.get("code") == want
    if not echoed:
        cell += ", no echo"
    if not app_saw:
        cell += ", app not told"
    conforms = code == want and echoed and app_saw
    return Observation(cell, conforms, 101, f"frames {frames!r}; app {event!r}")


CASES: tuple[Case, ...] = (
    Case(
        "9.1",
        "guard-receive-after-denial",
        "Guard: receive() after a denial",
        "Under WebSocketGuard the app denies with deny(), then loops on receive() until a "
        "disconnect while the client still holds the connection: it gets websocket.disconnect "
        "with 1006 at once, whatever the server's own receive() does then (case 4.1).",
        "asgi_ws_deny.guard, 'After a denial'; " + APP,
        "MUST",
        run_receive_after_denial,
        protocols=H1,
        contract=True,
        app=APP,
    ),
    Case(
        "9.2",
        "ticket-once",
        "One-time ticket",
        "A ticket issued for alice, offered as the subprotocol 'ticket.<ticket>' beside 'chat': "
        "101 with 'chat' selected and 'hello alice' (the subject through the scope); the same "
        "ticket again: 401 {'error':'invalid_ticket'} (403 with no body where the extension is "
        "not listed).",
        "asgi_ws_deny docs: tickets; " + APP,
        "MUST",
        run_ticket_once,
        contract=True,
        app=APP,
    ),
    Case(
        "9.3",
        "connection-cap",
        "Connection cap, lease released on close",
        "ConnectionLimit(1) per user: while the first connection is open a second is refused "
        "with 429 and retry-after (the fallback 403 where the extension is not listed); after "
        "the client closes the first, the user is admitted again (the server's disconnect ends "
        "the app, and the guard gives the lease back).",
        "asgi_ws_deny docs: connection-limits; " + APP,
        "MUST",
        run_connection_cap,
        protocols=H1,
        contract=True,
        app=APP,
    ),
    Case(
        "9.4",
        "message-limit",
        "Message limit after admission",
        "MessageLimits(max_size=16): a 16-byte message is echoed; a 17-byte one closes the "
        "connection with 1009 'message too big' and the app receives websocket.disconnect 1009.",
        "asgi_ws_deny docs: message-limits; RFC 6455 section 7.4.1; " + APP,
        "MUST",
        run_message_limit,
        protocols=H1,
        contract=True,
        app=APP,
    ),
    Case(
        "9.5",
        "message-limit-4009",
        "Message limit, close code 4009",
        "The same with MessageLimits(max_size=16, size_code=4009), for servers that send no "
        "close code outside 1000 and 3000-4999: the close carries 4009 and the app receives "
        "websocket.disconnect 4009.",
        "asgi_ws_deny docs: message-limits; " + APP,
        "MUST",
        run_message_limit_4009,
        protocols=H1,
        contract=True,
        app=APP,
    ),
)

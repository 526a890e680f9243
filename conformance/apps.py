"""The applications the conformance servers run: one ASGI app, one behaviour per path.

``conformance.apps:app`` routes a WebSocket handshake on ``/<behaviour>?t=<token>`` to one of
the behaviours below. *Server-behaviour* apps (``RAW``) send raw ASGI messages on purpose, some
of them invalid, to characterise what the server puts on the wire. *Helper-contract* apps
(``CONTRACT``) go through the public API of asgi_ws_deny only, as a user's code would. (The
framework cases of group 7 run the example apps of ``examples/frameworks/`` instead, unchanged,
each on a server of its own: see ``conformance.cases.FRAMEWORK_APPS``.)

Every handshake records what the app saw and did as JSON lines in the file named by the
``ASGI_WS_DENY_CONFORMANCE_EVENTS`` environment variable (each with the case's ``token``): the
scope (``extensions``, ``asgi.spec_version``), whether each ``send`` raised, what ``receive``
returned and when, and that the app returned. The checks in ``conformance.cases`` read them
back, because the client alone cannot see what happened inside the server.

Apps run under asyncio (uvicorn, hypercorn -k asyncio, daphne, granian, gunicorn) and trio
(hypercorn -k trio); anyio provides the sleeps and timeouts that must work on both.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.lowlevel

import asgi_ws_deny
from asgi_ws_deny import (
    MAX_BODY_BYTES,
    Denial,
    DenialUnsupportedError,
    InvalidDenialError,
    deny,
    supports_denial_response,
)

__all__ = ("CONTRACT", "EVENTS_ENV", "RAW", "app", "behaviour_names")

#: Environment variable naming the JSON-lines file the apps append their events to.
EVENTS_ENV = "ASGI_WS_DENY_CONFORMANCE_EVENTS"
#: How long an app waits for something (receive, the client's departure) before giving up.
APP_WAIT = 2.0

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


class Case:
    """What one handshake sees: its scope, its token, and the recorder for its events."""

    def __init__(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self._send = send
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        self.token = query.get("t", [""])[0]
        self.extension = asgi_ws_deny.supports_denial_response(scope)
        self.sent = 0

    def record(self, event: str, **data: Any) -> None:
        """Append one event for this handshake to the events file (or stderr without one)."""
        line = json.dumps(
            {"token": self.token, "event": event, "time": time.time(), **data}, default=repr
        )
        path = os.environ.get(EVENTS_ENV)
        if path:
            # One write of one line in append mode: concurrent workers never interleave lines.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        else:
            print(f"conformance-event {line}", file=sys.stderr, flush=True)

    async def send(self, message: Message) -> bool:
        """Send ``message``; record and swallow what the server raises. True if it went."""
        try:
            await self._send(message)
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            self.record("send-raised", message=message.get("type"), error=_describe(exc))
            return False
        self.sent += 1
        return True

    async def counting_send(self, message: Message) -> None:
        """A ``send`` for the public API that counts messages and lets errors through."""
        await self._send(message)
        self.sent += 1


def _describe(exc: BaseException) -> str:
    """``Name: message``, with ``(OSError)`` added for OSError subclasses of another name."""
    name = type(exc).__name__
    base = "(OSError)" if isinstance(exc, OSError) and name != "OSError" else ""
    return f"{name}{base}: {exc}"


def _start(status: int, headers: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "websocket.http.response.start", "status": status, "headers": headers}


def _body(body: bytes, more_body: bool = False) -> Message:
    return {"type": "websocket.http.response.body", "body": body, "more_body": more_body}


JSON_BODY = b'{"error":"no"}'
#: The headers of the byte-exact response: mixed-case value, quotes, a repeated name.
EXACT_HEADERS = [
    (b"www-authenticate", b'Bearer realm="conformance"'),
    (b"x-conformance", b"Value With Case"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(JSON_BODY)).encode()),
]
ORDER_HEADERS = [
    (b"x-order-b", b"1"),
    (b"set-cookie", b"a=1; Path=/"),
    (b"x-order-a", b"2"),
    (b"set-cookie", b"b=2; Path=/"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(JSON_BODY)).encode()),
]
LARGE_BODY = bytes(range(256)) * 4096  # 1 MiB, every byte value


# --- Server-behaviour apps: raw ASGI messages -------------------------------------------------


async def raw_scope(case: Case) -> None:
    await case.send({"type": "websocket.close", "code": 1000, "reason": ""})


async def raw_response(case: Case) -> None:
    if await case.send(_start(401, EXACT_HEADERS)):
        await case.send(_body(JSON_BODY))


async def raw_no_content_type(case: Case) -> None:
    if await case.send(_start(401, [(b"content-length", b"2")])):
        await case.send(_body(b"no"))


async def raw_order(case: Case) -> None:
    if await case.send(_start(401, ORDER_HEADERS)):
        await case.send(_body(JSON_BODY))


async def raw_chunked(case: Case) -> None:
    # No content-length: the server frames the body itself (chunked or close-delimited).
    if await case.send(_start(401, [(b"content-type", b"text/plain")])):
        for part, more in ((b"part1,", True), (b"part2,", True), (b"part3", False)):
            await case.send(_body(part, more))


async def raw_chunked_await(case: Case) -> None:
    # The same, with the event loop running between the chunks, as a streaming app would.
    if await case.send(_start(401, [(b"content-type", b"text/plain")])):
        for part, more in ((b"part1,", True), (b"part2,", True), (b"part3", False)):
            await case.send(_body(part, more))
            await anyio.sleep(0.05)


async def raw_large(case: Case) -> None:
    headers = [(b"content-length", str(len(LARGE_BODY)).encode())]
    if await case.send(_start(401, headers)):
        await case.send(_body(LARGE_BODY))


async def raw_start_only(case: Case) -> None:
    await case.send(_start(401, [(b"content-length", b"2")]))


async def raw_start_twice(case: Case) -> None:
    await case.send(_start(401, [(b"content-length", b"2")]))
    await case.send(_start(402, [(b"content-length", b"2")]))
    await case.send(_body(b"no"))


async def raw_body_first(case: Case) -> None:
    await case.send(_body(b"no"))
    await case.send(_start(401, [(b"content-length", b"2")]))
    await case.send(_body(b"no"))


async def _raw_status(case: Case, status: int) -> None:
    if await case.send(_start(status, [(b"content-length", b"2")])):
        await case.send(_body(b"no"))


async def raw_status_101(case: Case) -> None:
    await _raw_status(case, 101)


async def raw_status_99(case: Case) -> None:
    await _raw_status(case, 99)


async def raw_status_600(case: Case) -> None:
    await _raw_status(case, 600)


async def raw_crlf(case: Case) -> None:
    headers = [(b"x-injected", b"a\r\nx-split: yes"), (b"content-length", b"2")]
    if await case.send(_start(401, headers)):
        await case.send(_body(b"no"))


async def raw_length_long(case: Case) -> None:
    # content-length says 20, the body is 14 bytes.
    if await case.send(_start(401, [(b"content-length", b"20")])):
        await case.send(_body(JSON_BODY))


async def raw_length_short(case: Case) -> None:
    # content-length says 5, the body is 14 bytes.
    if await case.send(_start(401, [(b"content-length", b"5")])):
        await case.send(_body(JSON_BODY))


async def raw_close(case: Case) -> None:
    await case.send({"type": "websocket.close", "code": 1000, "reason": ""})


async def raw_close_reason(case: Case) -> None:
    await case.send({"type": "websocket.close", "code": 4001, "reason": "conformance-reason"})


async def raw_return(case: Case) -> None:
    return None


async def raw_raise_before(case: Case) -> None:
    raise RuntimeError("conformance: deliberate error before any message")


async def raw_raise_after_start(case: Case) -> None:
    await case.send(_start(401, [(b"content-length", b"2")]))
    raise RuntimeError("conformance: deliberate error after the response start")


async def raw_receive_after(case: Case) -> None:
    # As frameworks do: take websocket.connect first, deny, then call receive() again.
    await case.receive()
    if not await case.send(_start(401, [(b"content-length", b"2")])):
        return
    if not await case.send(_body(b"no")):
        return
    case.record("denied")
    started = time.monotonic()
    with anyio.move_on_after(APP_WAIT):
        try:
            message = await case.receive()
        except Exception as exc:
            case.record("receive", outcome="raised", error=_describe(exc))
            return
        case.record(
            "receive",
            outcome="returned",
            message=message.get("type"),
            after=time.monotonic() - started,
        )
        return
    case.record("receive", outcome="timeout", after=time.monotonic() - started)


async def _wait_for_go(case: Case) -> bool:
    """Wait until the client has gone; the check creates ``<events>.<token>.go`` after closing."""
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return False
    go = anyio.Path(f"{path}.{case.token}.go")
    with anyio.move_on_after(APP_WAIT):
        # The signal comes from another process (the check), so an anyio.Event cannot carry it.
        while not await go.exists():  # noqa: ASYNC110
            await anyio.sleep(0.01)
        # Let the server read the client's FIN before the app sends anything.
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        return True
    return False


async def raw_disconnect_before(case: Case) -> None:
    case.record("waiting")
    if not await _wait_for_go(case):
        case.record("no-go")
        return
    if await case.send(_start(401, [(b"content-length", b"2")])):
        case.record("start-sent")
        if await case.send(_body(b"no")):
            case.record("body-sent")


async def raw_unadvertised(case: Case) -> None:
    # Sent whether or not the extension is listed: what does a server without it do?
    if await case.send(_start(401, [(b"content-length", b"2")])):
        await case.send(_body(b"no"))


# --- Helper-contract apps: the public API of asgi_ws_deny ------------------------------------

CONTRACT_HEADERS = [("www-authenticate", "Bearer"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]


async def api_deny(case: Case) -> None:
    outcome = await deny(case.scope, case.counting_send, 401, CONTRACT_HEADERS, JSON_BODY)
    case.record("outcome", outcome=outcome, sent=case.sent)


async def api_deny_single(case: Case) -> None:
    headers = [("www-authenticate", "Bearer")]
    outcome = await deny(case.scope, case.counting_send, 401, headers, JSON_BODY)
    case.record("outcome", outcome=outcome, sent=case.sent)


async def api_deny_default(case: Case) -> None:
    outcome = await deny(case.scope, case.counting_send)
    case.record("outcome", outcome=outcome, sent=case.sent)


async def api_denial_app(case: Case) -> None:
    denial = Denial.json(429, {"error": "slow down"}, [("retry-after", "7")])
    await denial(case.scope, case.receive, case.counting_send)
    case.record("outcome", outcome="returned", sent=case.sent)


async def api_denial_text(case: Case) -> None:
    denial = Denial.text(403, "forbidden here")
    outcome = await deny(case.scope, case.counting_send, denial)
    case.record("outcome", outcome=outcome, sent=case.sent)


async def api_fallback_raise(case: Case) -> None:
    try:
        outcome = await deny(case.scope, case.counting_send, 401, fallback="raise")
    except DenialUnsupportedError:
        case.record("outcome", outcome="raised", sent=case.sent)
        await case.send({"type": "websocket.close", "code": 1008, "reason": ""})
        return
    case.record("outcome", outcome=outcome, sent=case.sent)


async def api_invalid_101(case: Case) -> None:
    try:
        await deny(case.scope, case.counting_send, 101)
    except InvalidDenialError:
        case.record("outcome", outcome="refused", sent=case.sent)
        # The framework's handling of its own error: deny with the default instead.
        outcome = await deny(case.scope, case.counting_send)
        case.record("fallback-outcome", outcome=outcome, sent=case.sent)
        return
    case.record("outcome", outcome="sent", sent=case.sent)


async def api_disconnected(case: Case) -> None:
    case.record("waiting")
    if not await _wait_for_go(case):
        case.record("no-go")
        return
    headers = [("www-authenticate", "Bearer")]
    try:
        outcome = await deny(case.scope, case.counting_send, 401, headers, JSON_BODY)
    except Exception as exc:
        case.record("outcome", outcome="raised", error=_describe(exc), sent=case.sent)
        raise
    case.record("outcome", outcome=outcome, sent=case.sent)


# --- Adversarial clients (group 8): deny() around a client that misbehaves -------------------
# Each takes websocket.connect first, as frameworks do, then denies through the public API:
# ``deny`` with the scope as it is (the response where the extension is listed), or ``close``:
# deny() with the extension hidden, so that it sends the fallback websocket.close (403). Then
# the app returns at once (``return``) or awaits receive() (``receive``), still running while
# the client does its worst. ``large`` denies with a body too large for any socket buffer.
# With ``go=1`` in the query the app waits for the client's signal before it denies.

#: A body no kernel buffers whole between server and client (the default tcp_wmem maximum is
#: 4 MiB): a server must hold it, or make the app wait, while the client does not read.
ADVERSARIAL_BODY = b"x" * (8 * 1024 * 1024)


async def _adversarial(case: Case, *, close: bool, wait: bool, body: bytes = JSON_BODY) -> None:
    first = await case.receive()
    case.record("connect", message=first.get("type"))
    if b"go=1" in case.scope.get("query_string", b""):
        # Deny only once the client has done its part (a half-close): a race no more.
        case.record("waiting")
        if not await _wait_for_go(case):
            case.record("no-go")
    scope = {**case.scope, "extensions": {}} if close else case.scope
    try:
        if len(body) > MAX_BODY_BYTES:
            outcome = await _deny_by_hand(scope, case.counting_send, body)
        else:
            outcome = await deny(
                scope, case.counting_send, 401, [("www-authenticate", "Bearer")], body
            )
    except Exception as exc:
        case.record("outcome", outcome="raised", error=_describe(exc), sent=case.sent)
        raise
    case.record("outcome", outcome=outcome, sent=case.sent)
    if not wait:
        return
    started = time.monotonic()
    with anyio.move_on_after(APP_WAIT):
        try:
            message = await case.receive()
        except Exception as exc:
            case.record("receive", outcome="raised", error=_describe(exc))
            return
        case.record(
            "receive",
            outcome="returned",
            message=message.get("type"),
            after=time.monotonic() - started,
        )
        return
    case.record("receive", outcome="timeout", after=time.monotonic() - started)


async def _deny_by_hand(scope: Mapping[str, Any], send: Any, body: bytes) -> str:
    """What `deny` does, for a body over the core's `MAX_BODY_BYTES` (which it refuses): the
    start and the one final body where the extension is listed, else the close fallback."""
    try:
        if not supports_denial_response(scope):
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return "close"
        headers = [(b"www-authenticate", b"Bearer"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
    except OSError:
        return "disconnected"
    return "response"


async def adv_deny_return(case: Case) -> None:
    await _adversarial(case, close=False, wait=False)


async def adv_deny_receive(case: Case) -> None:
    await _adversarial(case, close=False, wait=True)


async def adv_close_return(case: Case) -> None:
    await _adversarial(case, close=True, wait=False)


async def adv_close_receive(case: Case) -> None:
    await _adversarial(case, close=True, wait=True)


async def adv_large_return(case: Case) -> None:
    await _adversarial(case, close=False, wait=False, body=ADVERSARIAL_BODY)


async def adv_large_receive(case: Case) -> None:
    await _adversarial(case, close=False, wait=True, body=ADVERSARIAL_BODY)


# --- Guard contract: asgi_ws_deny.WebSocketGuard and Denied ----------------------------------
# Imported defensively: the guard is newer than the core, and a conformance run must still
# characterise the servers (and report the guard cases as missing) if it cannot be imported.
try:
    from asgi_ws_deny import Denied, WebSocketGuard
except ImportError:  # pragma: no cover - only while the guard is absent
    Denied = WebSocketGuard = None  # type: ignore[assignment, misc]


async def _guarded(case: Case, inner: Callable[..., Awaitable[None]], **options: Any) -> None:
    if WebSocketGuard is None:
        case.record("outcome", outcome="no guard")
        await case.send({"type": "websocket.close", "code": 1008, "reason": ""})
        return
    guard = WebSocketGuard(inner, **options)
    await guard(case.scope, case.receive, case.counting_send)
    case.record("outcome", outcome="returned", sent=case.sent)


def _inner(case: Case, then: Callable[[], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    async def inner(scope: Any, receive: Receive, send: Send) -> None:
        case.record("app-called")
        await then()

    return inner


async def _nothing() -> None:
    return None


async def api_guard_check(case: Case) -> None:
    def check(handshake: Any) -> Denial:
        return Denial(401, [("www-authenticate", "Bearer")], JSON_BODY)

    await _guarded(case, _inner(case, _nothing), check=check)


async def api_guard_denied(case: Case) -> None:
    async def refuse() -> None:
        raise Denied(404, [("x-conformance", "guard")], b"no such room")

    await _guarded(case, _inner(case, refuse))


async def api_guard_no_handshake(case: Case) -> None:
    await _guarded(case, _inner(case, _nothing))


async def api_guard_check_error(case: Case) -> None:
    def check(handshake: Any) -> None:
        raise LookupError("conformance: deliberate error in a check")

    await _guarded(case, _inner(case, _nothing), check=check)


# Browser-visible denials: browser_policy="origin" turns a denial before accept into an accept
# and a close (4000 + status, with a reason) for requests that carry an Origin header.

#: The reason the application gives with its Denied under the browser policy.
BROWSER_REASON = "no such room"


async def api_guard_browser_check(case: Case) -> None:
    def check(handshake: Any) -> Denial:
        return Denial(401, [("www-authenticate", "Bearer")], JSON_BODY)

    await _guarded(case, _inner(case, _nothing), check=check, browser_policy="origin")


async def api_guard_browser_denied(case: Case) -> None:
    async def refuse() -> None:
        raise Denied(404, [("x-conformance", "guard")], b"no such room", reason=BROWSER_REASON)

    await _guarded(case, _inner(case, refuse), browser_policy="origin")


Behaviour = Callable[[Case], Awaitable[None]]

RAW: dict[str, Behaviour] = {
    name.removeprefix("raw_").replace("_", "-"): func
    for name, func in dict(globals()).items()
    if name.startswith("raw_") and callable(func)
}
CONTRACT: dict[str, Behaviour] = {
    name.replace("_", "-"): func
    for name, func in dict(globals()).items()
    if name.startswith(("api_", "adv_")) and callable(func)
}
#: Raw behaviours that assume the extension; without it they close (403) and record that.
NEEDS_EXTENSION = frozenset(RAW) - {
    "scope",
    "close",
    "close-reason",
    "return",
    "raise-before",
    "unadvertised",
}


def behaviour_names() -> list[str]:
    """Every path the app serves (without the leading slash)."""
    return [*RAW, *CONTRACT]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _http(send: Send) -> None:
    body = b"asgi-ws-deny conformance app: connect with a WebSocket handshake\n"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def app(scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
    """The conformance application: ``/<behaviour>?t=<token>`` runs that behaviour."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "http":
        await _http(send)
        return
    case = Case(scope, receive, send)
    name = str(scope.get("path", "/")).strip("/")
    asgi = scope.get("asgi") or {}
    extensions = scope.get("extensions")
    case.record(
        "scope",
        path=name,
        spec_version=asgi.get("spec_version"),
        asgi_version=asgi.get("version"),
        extensions=sorted(extensions) if isinstance(extensions, Mapping) else extensions,
        http_version=scope.get("http_version"),
    )
    behaviour = RAW.get(name) or CONTRACT.get(name)
    try:
        if behaviour is None:
            case.record("unknown-path")
            await case.send({"type": "websocket.close", "code": 1008, "reason": ""})
        elif name in NEEDS_EXTENSION and not case.extension:
            case.record("not-applicable", reason="the extension is not advertised")
            await case.send({"type": "websocket.close", "code": 1008, "reason": ""})
        else:
            await behaviour(case)
    except BaseException as exc:
        case.record("app-raised", error=_describe(exc))
        raise
    finally:
        case.record("returned")

"""Deny from anywhere: a fail-closed guard middleware that answers `Denied` and failed checks.

Theory of operation
-------------------
`WebSocketGuard` wraps an ASGI application. ``http`` and ``lifespan`` scopes go straight to the
application with the same ``receive`` and ``send``: one comparison, nothing else. For a
``websocket`` scope the guard does three things, in order.

1. *Check.* When a ``check`` is configured it is called with a read-only `Handshake` before the
   application sees anything. ``None`` admits; a `Denial` (returned) or a `Denied` (raised)
   refuses, and the application is never called. Anything else fails closed: an exception, or a
   return value that is neither ``None``, an `Admission` nor a `Denial` (``False`` and
   ``True`` included), is logged and answered with ``error_denial`` (500 by default). The
   client never sees exception text. A handshake is admitted only when the check returned
   ``None`` or an `Admission`; the guard adds an admission's scope entries to the scope the
   application gets, and calls its release once the connection has ended, however it ended
   (the application returned or raised, was cancelled, or denied after all).

2. *Track.* The application gets a ``send`` that follows the handshake through the states of
   `HandshakeState` and refuses an out-of-order message with `HandshakeStateError` before the
   server sees it (raised by the call itself: the ``send`` hands the application the server's
   own awaitable, so no coroutine of the guard's sits between them)::

       CONNECTING --websocket.accept--------------------> OPEN --websocket.close--> CLOSED
       CONNECTING --websocket.http.response.start-------> RESPONDING
       RESPONDING --websocket.http.response.body (last)-> DENIED
       CONNECTING --websocket.close---------------------> DENIED

   ``websocket.send`` is allowed in OPEN only, further response bodies in RESPONDING only;
   every other message in a state is the application's mistake (a body before its start, two
   starts, an accept after a denial, a second accept, anything after the end). A response start
   is also refused where the server does not list the denial-response extension, and when its
   status is outside 200..599 (a 101 would complete the upgrade on several servers).

3. *Convert.* When the application ends, the guard finishes what it left undone:

   ============================  ==============================================================
   the application...            the guard...
   ============================  ==============================================================
   raises `Denied`, CONNECTING   denies with its `Denial` through `deny` (same ``fallback``)
   raises `Denied`, OPEN         sends ``websocket.close`` with the mapped close code and the
                                 reason cut to 123 UTF-8 bytes (RFC 6455 section 5.5)
   raises `Denied`, DENIED or    nothing: the connection is already refused or closed
   CLOSED
   raises `Denied`, RESPONDING   re-raises it: half a response is out and cannot be taken back
   raises anything else,         denies with ``error_denial`` (500), then re-raises, so the
   CONNECTING                    server logs the error as it logs any application error
   raises anything else, later   re-raises it untouched
   returns, CONNECTING           denies with ``no_handshake_denial`` (403) instead of the
                                 server's 500
   returns, RESPONDING           sends the final, empty response body
   ============================  ==============================================================

   A `Denied` that arrives inside an exception group (raised in a task group) counts as
   `Denied` when nothing else is in the group. A `Denied` raised in a task that nobody awaits
   (``asyncio.create_task``, a callback) never reaches the guard and is lost: the handshake
   goes on as if nothing was raised. Cancellation (a ``BaseException`` that is not an
   ``Exception``) is never caught, from the application or from a check: it may be the
   server cancelling the connection, and the guard cannot tell. A check that raises one
   leaves the handshake unanswered (the application is never called), and servers differ on
   what follows: daphne answers nothing and leaves the connection open. Bound a slow check
   with ``check_timeout`` instead, which answers 503.

The guard never calls ``receive`` for a denial of its own: servers disagree about what it does
after a denial (it returns at once on one, blocks on another, never returns on a third), so a
denial must not wait for it. It never imports an event loop either; it only awaits the callables
it is given, so it runs under asyncio and trio alike.

After a denial
--------------
For the same reason the application's ``receive`` is the guard's: once the handshake is DENIED
(a denial the application sent through the guard, or the guard's own), every later call returns
``{"type": "websocket.disconnect", "code": 1006, "reason": ""}`` at once, without asking the
server, so no application stays running on a denied connection whatever the server does. 1006
because the connection never opened and no close frame travelled (RFC 6455 section 7.1.5). A
call already waiting on the server when the denial goes out is the server's to answer. While
the connection is CONNECTING, OPEN or RESPONDING, and after the application's own close, the
call is the server's own, handed back untouched.

With ``message_limits`` the guard's ``receive`` also counts what an open connection receives;
on the first limit passed it sends ``websocket.close`` (1009 or 1008) itself, and the
application gets ``websocket.disconnect`` with that code, now and at every later call, while
its ``send`` raises `ClosedByGuardError` (an ``OSError``, as a server's after its client left).

Browser-visible denials
-----------------------
A browser's script never sees a denial's status or body: a refused handshake reaches it as an
``error`` event and close code 1006. With ``browser_policy="origin"`` (requests that carry an
``Origin`` header, which browsers always send) or ``"always"``, every denial the guard makes
before accept (check refusals and failures, `Denied`, a missing handshake) is instead an
*accept followed at once by a close* with the mapped close code (4000 + status by default, the
convention of graphql-ws: 4401, 4403, 4404, 4429, ...) and a reason (the `Denied` reason, else
the status phrase). The trade-off: the handshake completes (the server logs a 101, proxies and
rate limits count an open connection, a client that ignores close codes believes it connected)
and the denial's headers and body are not sent; only the code and the reason travel. When the
client offered subprotocols the accept names the first one that is a token of at most 64
characters and does not look like a credential (``bearer``, ``token``, ``auth``, ``jwt``,
``key``, ... anywhere in it), because a browser fails a connection whose accept omits the
subprotocol it asked for, and the close would then be lost. When no offered name qualifies
the refusal stays an HTTP response: echoing ``bearer.<token>`` would send the token back.
The application is never called for a check refusal, so it receives no message at all.
Measured in Chromium: a denial is ``error`` then ``close`` 1006 (the status shows only in the
developer console); under the policy, ``open`` then ``close`` 4404 "Not Found". daphne 4.2.3
sends the close code without its reason.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import operator
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal, get_args

from asgi_ws_deny import _deny
from asgi_ws_deny.handshake import (
    MAX_CLOSE_REASON_BYTES,
    Admission,
    AllOf,
    Check,
    CheckResult,
    Denied,
    Handshake,
    MultiMap,
    admit,
    check_name,
    close_reason,
    denied_in,
    run_check,
    status_phrase,
)
from asgi_ws_deny.message_limits import MessageLimits, MessageMeter

__all__ = (
    "MAX_CLOSE_REASON_BYTES",
    "Admission",
    "BrowserPolicy",
    "Check",
    "CheckResult",
    "CloseCodes",
    "ClosedByGuardError",
    "Denied",
    "Handshake",
    "HandshakeState",
    "HandshakeStateError",
    "MessageLimits",
    "MultiMap",
    "WebSocketGuard",
    "default_close_code",
    "run_check",
)

_logger = logging.getLogger("asgi_ws_deny")

#: When denials become an accept and a close: never, for requests with an ``Origin`` header
#: (browsers), or always.
BrowserPolicy = Literal["never", "origin", "always"]
#: Close codes by HTTP status, or a callable from status to close code.
CloseCodes = Mapping[int, int] | Callable[[int], int]

_App = Callable[..., Awaitable[None]]

_ACCEPT = "websocket.accept"
_SEND = "websocket.send"
_CLOSE = "websocket.close"
_START = "websocket.http.response.start"
_BODY = "websocket.http.response.body"

# RFC 6455 section 7.4: 1004, 1005, 1006 and 1015 must never be sent in a close frame; the rest
# of 1000-2999 is for the protocol (the registered 1000-1003 and 1007-1014 may be sent), and
# 3000-4999 is for libraries and applications.
_SENDABLE_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))
# The close code used when a configured mapping fails or yields a code that cannot be sent:
# RFC 6455 section 7.4.1, 1008 "policy violation".
_POLICY_VIOLATION = 1008


def _sendable(code: object) -> int | None:
    """``code`` as a plain int when a close frame may carry it (RFC 6455 section 7.4), else None.

    An int subclass (an IntEnum of close codes) counts by its value; a float or a Decimal that
    equals a code does not: servers pack the code as a 16-bit integer.
    """
    if isinstance(code, bool) or not isinstance(code, int):
        return None
    value = operator.index(code)
    return value if value in _SENDABLE_CLOSE_CODES else None


def default_close_code(status: int) -> int:
    """The close code for a denial with HTTP ``status`` after accept: ``4000 + status``."""
    return 4000 + status


# --- The handshake state --------------------------------------------------------------------


class HandshakeState(enum.Enum):
    """Where a WebSocket handshake stands, as the guard's ``send`` wrapper sees it."""

    CONNECTING = "connecting"
    """Nothing sent yet: the handshake can be accepted or denied."""
    OPEN = "open"
    """Accepted: data messages may flow until a close."""
    RESPONDING = "responding"
    """A denial response has started; more of its body may follow."""
    DENIED = "denied"
    """Refused: the final response body, or a close before accept, has been sent."""
    CLOSED = "closed"
    """Accepted, then closed by the application."""


class ClosedByGuardError(OSError):
    """The application sent on a connection the guard closed for it (a message limit).

    To the application the connection ended as if the client had left, so ``send`` raises an
    ``OSError``, as ASGI spec 2.4 asks of a server then; ``code`` and ``reason`` are those of
    the guard's close, which ``receive`` reported too.
    """

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"the guard closed the connection with {code} ({reason})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.reason))


class HandshakeStateError(_deny.DenyError, RuntimeError):
    """The application sent a message that its handshake state does not allow.

    Raised by the guard's ``send`` wrapper before the message reaches the server, so the server
    only ever sees a valid sequence. ``state`` is the `HandshakeState` at the time and
    ``message_type`` the message's ``type`` (``None`` when it had none).
    """

    def __init__(self, state: HandshakeState, message_type: object, detail: str) -> None:
        self.state = state
        self.message_type = message_type
        self.detail = detail
        super().__init__(f"{message_type!r} cannot be sent in state {state.name}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.state, self.message_type, self.detail))


_ACCEPT = "websocket.accept"
_SEND = "websocket.send"
_CLOSE = "websocket.close"
_START = "websocket.http.response.start"
_BODY = "websocket.http.response.body"

_CONNECTING = HandshakeState.CONNECTING
_OPEN = HandshakeState.OPEN
_RESPONDING = HandshakeState.RESPONDING
_DENIED = HandshakeState.DENIED
_CLOSED = HandshakeState.CLOSED

# Every move the application can make, by state and message type: the one transition table.
# Two moves also depend on the message itself, and `_Tracker.send` decides them: a response
# start needs the extension and a status that denies, and only the last response body
# (``more_body`` false) ends the denial. A message type missing from a state's row is refused.
_TRANSITIONS: dict[HandshakeState, dict[object, HandshakeState]] = {
    _CONNECTING: {_ACCEPT: _OPEN, _CLOSE: _DENIED, _START: _RESPONDING},
    _OPEN: {_SEND: _OPEN, _CLOSE: _CLOSED},
    _RESPONDING: {_BODY: _RESPONDING},
    _DENIED: {},
    _CLOSED: {},
}

_HINTS: dict[tuple[HandshakeState, object], str] = {
    (_CONNECTING, _BODY): "a response body comes after websocket.http.response.start",
    (_CONNECTING, _SEND): "accept the connection first",
    (_RESPONDING, _START): "the denial response has already started",
    (_RESPONDING, _ACCEPT): "a denial response has started; it cannot be accepted",
    (_OPEN, _ACCEPT): "the connection is already accepted",
    (_OPEN, _START): "a denial response is only possible before accept",
    (_OPEN, _BODY): "a denial response is only possible before accept",
}
_AFTER_DENIAL = (
    "the handshake was denied, and no message follows a denial "
    "(asgiref extensions, WebSocket Denial Response)"
)
_AFTER_CLOSE = "the connection is closed (RFC 6455 section 5.5.1: nothing follows a close)"


class _Tracker:
    """Follows the handshake through the messages the application sends, and ends what the
    application receives once the connection is over for it (see "After a denial")."""

    __slots__ = ("_receive", "_scope", "_send", "farewell", "meter", "receive", "state")

    def __init__(
        self,
        send: _deny.Send,
        scope: _deny.Scope,
        receive: _deny.Receive,
        meter: MessageMeter | None = None,
    ) -> None:
        self._send = send
        self._scope = scope  # asked about the extension only when a response starts
        self._receive = receive
        self.state = _CONNECTING
        self.meter = meter
        #: The websocket.disconnect the application receives from now on, once the guard has
        #: closed the open connection itself (a message limit); None while it has not.
        self.farewell: dict[str, Any] | None = None
        #: The application's receive, chosen once: only a metered connection can be closed by
        #: the guard, so only its receive looks for that.
        self.receive: Callable[[], Awaitable[Any]] = (
            self._plain_receive if meter is None else self._metered_receive
        )

    def _plain_receive(self) -> Awaitable[Any]:
        # As send: a plain function that hands back the server's own awaitable while the
        # connection lives: one comparison.
        if self.state is _DENIED:
            return _disconnected(_DENIED_DISCONNECT)
        return self._receive()

    def _metered_receive(self) -> Awaitable[Any]:
        if self.state is _DENIED or self.farewell is not None:
            return _disconnected(self.farewell or _DENIED_DISCONNECT)
        return self._metered()

    async def _metered(self) -> Any:
        message = await self._receive()
        assert self.meter is not None
        exceeded = self.meter.exceeded(message)
        if exceeded is None or self.state is not _OPEN:
            return message
        code, reason = exceeded
        _logger.info(
            "WebSocket client on %r passed a message limit (%s); closing with %d",
            self._scope.get("path"),
            reason,
            code,
        )
        close = {"type": _CLOSE, "code": code, "reason": reason}
        self.farewell = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.state = _CLOSED
        try:
            await _quietly(self._send(close))
        except Exception:
            # The guard's own close, not the application's: a server that refuses it (daphne
            # 4.2 sends only 1000 and 3000-4999) must not end the application with its error.
            _logger.exception(
                "The server refused the guard's close with %d on %r; choose close codes it "
                "sends (MessageLimits size_code, rate_code)",
                code,
                self._scope.get("path"),
            )
        return dict(self.farewell)

    def send(self, message: Any) -> Awaitable[None]:
        # A plain function that hands back the server's own awaitable: no coroutine of the
        # guard's sits between the application and the server on a long-lived connection. The
        # state moves when the application calls send, before it awaits, so two concurrent
        # sends cannot both pass one check (two accepts, an accept racing a denial); a refused
        # message raises from the call.
        try:
            kind = message["type"]
            state = _TRANSITIONS[self.state][kind]
        except (KeyError, TypeError):  # a move the table lacks, no "type", not a mapping
            raise self._refusal(message) from None
        if kind == _START:
            self._check_start(message)
        elif kind == _BODY and not message.get("more_body", False):
            state = _DENIED
        self.state = state
        return self._send(message)

    def _check_start(self, message: Mapping[str, Any]) -> None:
        if not _deny.supports_denial_response(self._scope):
            raise HandshakeStateError(
                self.state,
                _START,
                f"the server does not list {_deny.EXTENSION!r} in scope['extensions']; "
                "deny with websocket.close, or with deny(), which falls back to it",
            )
        # The core's own rules for a denial's status: 200..599, and no 2xx over HTTP/2 or HTTP/3,
        # where it would open the tunnel (RFC 8441 section 5, RFC 9220 section 3). The
        # application's headers and body
        # are its own; the server checks those.
        _deny.Denial(message.get("status")).messages(self._scope)  # type: ignore[arg-type]

    def _refusal(self, message: object) -> Exception:
        if self.farewell is not None:
            # The guard closed the connection, not the application: to the application it
            # ended as if the client had left, and ASGI spec 2.4 has send raise OSError then.
            return ClosedByGuardError(self.farewell["code"], self.farewell["reason"])
        kind = message.get("type") if isinstance(message, Mapping) else None
        state = self.state
        if state is _DENIED:
            hint = _AFTER_DENIAL
        elif state is _CLOSED:
            hint = _AFTER_CLOSE
        elif kind not in (_ACCEPT, _SEND, _CLOSE, _START, _BODY):
            hint = "it is not a WebSocket send event of ASGI or its denial-response extension"
        else:
            hint = _HINTS.get((state, kind), "it is out of order")
        return HandshakeStateError(state, kind, hint)


# --- The middleware -------------------------------------------------------------------------


class WebSocketGuard:
    """ASGI middleware that denies WebSocket handshakes before, and from inside, an application.

    ``WebSocketGuard(app, check=None, *, fallback="close", error_denial=Denial(500),
    no_handshake_denial=Denial(403), browser_policy="never", close_codes=None,
    check_timeout=None)``

    - ``check(handshake)`` (sync or async) runs before ``app`` for every ``websocket`` scope:
      ``None`` admits, a `Denial` or a raised `Denied` refuses and ``app`` is never called,
      anything else (an exception, ``False``, ``True``, any other value) fails closed with
      ``error_denial`` and is logged on the ``"asgi_ws_deny"`` logger. A sync check runs on
      the event loop: keep it quick, or make it async. A list or tuple of checks runs them in
      order, the first refusal winning, an origin check first (`asgi_ws_deny.checks.AllOf`).
      Without a check the guard only converts.
    - `Denied` raised by ``app`` (or anything it calls), a return without a handshake and an
      error before accept are converted as the module documentation describes; the ``send``
      given to ``app`` refuses out-of-order messages with `HandshakeStateError`.
    - ``fallback`` is `deny`'s: where the server lacks the denial-response extension,
      ``"close"`` sends ``websocket.close`` (the server answers 403), ``"raise"`` raises
      `DenialUnsupportedError` to the server.
    - ``browser_policy`` turns denials before accept into accept-then-close for browsers
      (``"origin"``) or every client (``"always"``); see "Browser-visible denials" above for
      what that costs.
    - ``close_codes`` maps an HTTP status to the close code used after accept: a mapping
      (statuses it lacks use ``4000 + status``) or a callable. A code that cannot be sent
      (RFC 6455 section 7.4) or a callable that raises gives 1008, logged.
    - ``check_timeout`` (seconds, ``None`` by default) bounds the check: one still running at
      the deadline is cancelled, logged, and answered 503 with ``retry-after``. It needs the
      ``anyio`` package (imported only when the option is set), which cancels under asyncio
      and trio alike; a sync check that blocks the event loop cannot be interrupted.
    - ``message_limits``: a `MessageLimits` the guard's ``receive`` counts each admitted
      connection's messages against (size of one, messages and bytes per interval), closing
      with 1009 or 1008 on the first one passed (`asgi_ws_deny.message_limits`). Off by
      default, and then nothing is counted.

    ``http`` and ``lifespan`` scopes pass through untouched. Use it around any ASGI app, or as
    ``starlette_app.add_middleware(WebSocketGuard, check=...)``. Raises `InvalidDenialError`
    for a bad option.
    """

    def __init__(
        self,
        app: _App,
        check: Check | Sequence[Check] | None = None,
        *,
        fallback: _deny.Fallback = "close",
        error_denial: _deny.Denial | None = None,
        no_handshake_denial: _deny.Denial | None = None,
        browser_policy: BrowserPolicy = "never",
        close_codes: CloseCodes | None = None,
        check_timeout: float | None = None,
        message_limits: MessageLimits | None = None,
    ) -> None:
        if not callable(app):
            raise _deny.InvalidDenialError(f"app must be an ASGI callable, got {app!r}")
        if isinstance(check, (list, tuple)):
            try:
                check = AllOf(*check)
            except _deny.DenyError as exc:  # checks' InvalidCheckError: an option of the guard's
                raise _deny.InvalidDenialError(f"check: {exc}") from None
        if check is not None and not callable(check):
            raise _deny.InvalidDenialError(
                f"check must be callable, a list of checks, or None, got {check!r}"
            )
        if fallback not in get_args(_deny.Fallback):
            raise _deny.InvalidDenialError(f"fallback must be 'close' or 'raise', got {fallback!r}")
        if browser_policy not in get_args(BrowserPolicy):
            raise _deny.InvalidDenialError(
                f"browser_policy must be 'never', 'origin' or 'always', got {browser_policy!r}"
            )
        self.app = app
        self.check = check
        self.fallback: _deny.Fallback = fallback
        self.error_denial = _option_denial("error_denial", error_denial, 500)
        self.no_handshake_denial = _option_denial("no_handshake_denial", no_handshake_denial, 403)
        self.browser_policy: BrowserPolicy = browser_policy
        self._close_code = _close_code_function(close_codes)
        self.check_timeout = check_timeout
        self._deadline = None if check_timeout is None else _CheckDeadline(check_timeout)
        if message_limits is not None and not isinstance(message_limits, MessageLimits):
            raise _deny.InvalidDenialError(
                f"message_limits must be a MessageLimits, got {type(message_limits).__name__}"
            )
        self.message_limits = message_limits

    async def __call__(self, scope: _deny.Scope, receive: _deny.Receive, send: _deny.Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        limits = self.message_limits
        tracker = _Tracker(send, scope, receive, None if limits is None else limits.meter())
        check = self.check
        if check is not None:
            verdict = await self._run_check(check, scope)
            if isinstance(verdict, tuple):
                await self._refuse(scope, tracker, *verdict)
                return
            if verdict is not None:
                await _serve_admitted(verdict, scope, self._serve(scope, tracker))
                return
        await self._serve(scope, tracker)

    async def _serve(self, scope: _deny.Scope, tracker: _Tracker) -> None:
        """Run the application on an admitted handshake and finish what it left undone."""
        try:
            await self.app(scope, tracker.receive, tracker.send)
        except Exception as exc:
            denied = denied_in(exc)
            if denied is None:
                if tracker.state is _CONNECTING:
                    # Fail closed before the server improvises (a 500 on some, a stray 101
                    # on others); the error still reaches the server's own error handling,
                    # which is also where it goes when fallback="raise" finds no extension.
                    with contextlib.suppress(_deny.DenialUnsupportedError):
                        await self._refuse(scope, tracker, self.error_denial, None)
                raise
            await self._convert(scope, tracker, denied, exc)
            return
        if tracker.state is _CONNECTING:
            _logger.debug(
                "WebSocket app returned without a handshake on %r; denying with %d",
                scope.get("path"),
                self.no_handshake_denial.status,
            )
            await self._refuse(scope, tracker, self.no_handshake_denial, None)
        elif tracker.state is _RESPONDING:
            await _quietly(tracker.send({"type": _BODY, "body": b"", "more_body": False}))

    async def _run_check(
        self, check: Check, scope: _deny.Scope
    ) -> tuple[_deny.Denial, str | None] | Admission | None:
        """`admit`, bounded by ``check_timeout`` when one is set."""
        deadline = self._deadline
        if deadline is None:
            return await admit(check, scope, self.error_denial)
        with deadline.cancel_scope():
            return await admit(check, scope, self.error_denial)
        # Only a check still running at the deadline gets here: it was cancelled.
        _logger.error(
            "WebSocket check %s still running after %gs on %r; denying with %d",
            check_name(check),
            deadline.seconds,
            scope.get("path"),
            deadline.denial.status,
        )
        return deadline.denial, None

    def _browser_visible(self, scope: _deny.Scope) -> bool:
        if self.browser_policy == "always":
            return True
        if self.browser_policy == "origin":
            return any(bytes(name).lower() == b"origin" for name, _ in scope.get("headers", ()))
        return False

    async def _refuse(
        self, scope: _deny.Scope, tracker: _Tracker, denial: _deny.Denial, reason: str | None
    ) -> None:
        """Deny a handshake that is still CONNECTING."""
        subprotocol = _echoed_subprotocol(scope) if self._browser_visible(scope) else False
        if subprotocol is not False:
            accept: dict[str, Any] = {"type": _ACCEPT, "subprotocol": subprotocol, "headers": []}
            close = self._close_message(denial.status, reason)  # made before anything is sent
            if await _quietly(tracker.send(accept)):
                await _quietly(tracker.send(close))
            return
        try:
            messages = denial.messages(scope, fallback=self.fallback)
        except _deny.DenialUnsupportedError:
            raise
        except _deny.InvalidDenialError:
            # A denial valid in itself but not for this scope (a 2xx over HTTP/2 or HTTP/3 would
            # open the tunnel, RFC 8441 section 5): fail closed with the error denial instead.
            if denial is self.error_denial:
                raise
            _logger.exception(
                "Denial %r cannot answer %r; denying with %d",
                denial,
                scope.get("path"),
                self.error_denial.status,
            )
            messages = self.error_denial.messages(scope, fallback=self.fallback)
        for message in messages:
            if not await _quietly(tracker.send(message)):
                return

    def _close_message(self, status: int, reason: str | None) -> dict[str, Any]:
        text = status_phrase(status) if reason is None else reason
        return {"type": _CLOSE, "code": self._close_code(status), "reason": close_reason(text)}

    async def _close(self, tracker: _Tracker, status: int, reason: str | None) -> None:
        await _quietly(tracker.send(self._close_message(status, reason)))

    async def _convert(
        self, scope: _deny.Scope, tracker: _Tracker, denied: Denied, raised: Exception
    ) -> None:
        state = tracker.state
        if state is HandshakeState.CONNECTING:
            await self._refuse(scope, tracker, denied.denial, denied.reason)
        elif state is HandshakeState.OPEN:
            await self._close(tracker, denied.status, denied.reason)
        elif state is HandshakeState.RESPONDING:
            raise raised
        else:
            _logger.debug(
                "Denied raised in state %s on %r; nothing to send", state.name, scope.get("path")
            )


# RFC 9110 section 5.6.2 tchar: a subprotocol name is a token (RFC 6455 section 4.1).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# An offered name that may carry a credential ("bearer.<token>", Kubernetes'
# "base64url.bearer.authorization.k8s.io.<token>", "access_token.<jwt>"): never echoed.
_CREDENTIAL = re.compile(r"bearer|token|auth|jwt|secret|session|passw|cred|key", re.IGNORECASE)
# Registered subprotocol names are short (IANA's registry: "graphql-transport-ws", 20); a long
# one is more likely a credential than a protocol.
_MAX_ECHOED_SUBPROTOCOL = 64


def _echoed_subprotocol(scope: _deny.Scope) -> str | Literal[False] | None:
    """The subprotocol a browser-visible refusal accepts with: None when none was offered, the
    first offered name that is a short token and carries no credential, else False (none can
    be echoed safely, so the refusal stays an HTTP response).

    A browser fails a connection whose accept omits the subprotocol it offered, and the close
    code would be lost; but whatever the accept names goes back to the page and into every log
    and proxy on the way, so a token offered as a subprotocol must not come back.
    """
    offered = scope.get("subprotocols") or ()
    if not offered:
        return None
    for name in offered:
        if (
            isinstance(name, str)
            and len(name) <= _MAX_ECHOED_SUBPROTOCOL
            and _TOKEN.fullmatch(name)
            and not _CREDENTIAL.search(name)
        ):
            return name
    return False


# What the application receives after a denial: the connection never opened, so no close
# frame travelled and no close code was received; RFC 6455 section 7.1.5 names that 1006
# (abnormal closure), the code a browser reports for a refused handshake too.
_DENIED_DISCONNECT: Mapping[str, Any] = {"type": "websocket.disconnect", "code": 1006, "reason": ""}


async def _disconnected(message: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` at once (a fresh copy each call), without asking the server."""
    return dict(message)


async def _serve_admitted(
    admission: Admission, scope: _deny.Scope, serving: Coroutine[Any, Any, None]
) -> None:
    """Serve a handshake a check admitted with effects: its scope entries first, its release
    once the connection has ended, however it ended (cancellation included)."""
    try:
        scope.update(admission.scope)  # type: ignore[attr-defined]
        await serving
    finally:
        serving.close()  # never started if the scope could not take the entries
        try:
            await admission.end()
        except Exception:
            _logger.exception("A check's release raised on %r", scope.get("path"))


async def _quietly(sending: Awaitable[None]) -> bool:
    """Await one send; False when the client has left (ASGI spec 2.4: ``send`` raised OSError)."""
    try:
        await sending
    except OSError:
        return False
    return True


class _CheckDeadline:
    """How long a check may run, and the 503 for one that runs longer.

    The cancel scope is anyio's, imported here and only when a guard sets ``check_timeout``:
    it cancels a check under asyncio and trio alike (the guard module itself imports no event
    loop). A sync check that blocks the event loop cannot be interrupted; the deadline bounds
    what a check awaits.
    """

    __slots__ = ("denial", "move_on_after", "seconds")

    def __init__(self, seconds: object) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise _deny.InvalidDenialError(
                f"check_timeout must be None or a number of seconds above 0, got {seconds!r}"
            )
        try:
            from anyio import move_on_after
        except ImportError as exc:
            raise ImportError(
                f"check_timeout needs the anyio package: pip install anyio ({exc})"
            ) from exc
        self.seconds = float(seconds)
        self.move_on_after = move_on_after
        # RFC 9110 section 15.6.4: 503 with Retry-After, in whole seconds, for a temporary
        # overload or an outage of something the server depends on.
        retry = str(max(1, math.ceil(self.seconds)))
        self.denial = _deny.Denial(503, [("retry-after", retry)])

    def cancel_scope(self) -> contextlib.AbstractContextManager[Any, bool]:
        scope: contextlib.AbstractContextManager[Any, bool] = self.move_on_after(self.seconds)
        return scope


def _option_denial(name: str, value: object, default: int) -> _deny.Denial:
    if value is None:
        return _deny.Denial(default)
    if not isinstance(value, _deny.Denial):
        raise _deny.InvalidDenialError(f"{name} must be a Denial, got {type(value).__name__}")
    return value


def _close_code_function(close_codes: object) -> Callable[[int], int]:
    if close_codes is None:
        mapping: Callable[[int], int] = default_close_code
    elif isinstance(close_codes, Mapping):
        table: dict[Any, int] = {}
        for status, code in close_codes.items():
            sendable = _sendable(code)
            if sendable is None:
                raise _deny.InvalidDenialError(
                    f"close_codes[{status!r}] is {code!r}, which cannot be sent in a close frame "
                    "(RFC 6455 section 7.4): use 1000-1003, 1007-1014 or 3000-4999"
                )
            table[status] = sendable

        def mapping(status: int) -> int:
            return table.get(status, default_close_code(status))

    elif callable(close_codes):
        mapping = close_codes  # called under the guard below: whatever it returns is checked
    else:
        raise _deny.InvalidDenialError(
            f"close_codes must be a mapping or a callable, got {type(close_codes).__name__}"
        )

    def close_code(status: int) -> int:
        try:
            code = mapping(status)
        except Exception:
            _logger.exception("close_codes raised for status %d; closing with 1008", status)
            return _POLICY_VIOLATION
        sendable = _sendable(code)
        if sendable is None:
            _logger.error(
                "close_codes gave %r for status %d, which cannot be sent (RFC 6455 section "
                "7.4); closing with 1008",
                code,
                status,
            )
            return _POLICY_VIOLATION
        return sendable

    return close_code

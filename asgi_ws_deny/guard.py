"""Deny from anywhere: a fail-closed guard middleware and the `Denied` exception.

Theory of operation
-------------------
`WebSocketGuard` wraps an ASGI application. ``http`` and ``lifespan`` scopes go straight to the
application with the same ``receive`` and ``send``: one comparison, nothing else. For a
``websocket`` scope the guard does three things, in order.

1. *Check.* When a ``check`` is configured it is called with a read-only `Handshake` before the
   application sees anything. ``None`` admits; a `Denial` (returned) or a `Denied` (raised)
   refuses, and the application is never called. Anything else fails closed: an exception, or a
   return value that is neither ``None`` nor a `Denial` (``False`` and ``True`` included), is
   logged and answered with ``error_denial`` (500 by default). The client never sees exception
   text. A handshake is admitted only when the check returned ``None``.

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
   `Denied` when nothing else is in the group. Cancellation (a ``BaseException`` that is not an
   ``Exception``) is never caught.

The guard never calls ``receive``: servers disagree about what it does after a denial (it
returns at once on one, blocks on another, never returns on a third), so a denial must not wait
for it. It never imports an event loop either; it only awaits the callables it is given, so it
runs under asyncio and trio alike.

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
client offered subprotocols the accept names the first one, because a browser fails a
connection whose accept omits the subprotocol it asked for, and the close would then be lost.
The application is never called for a check refusal, so it receives no message at all.
Measured in Chromium: a denial is ``error`` then ``close`` 1006 (the status shows only in the
developer console); under the policy, ``open`` then ``close`` 4404 "Not Found". daphne 4.2.3
sends the close code without its reason.
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import http
import inspect
import logging
import operator
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NoReturn
from urllib.parse import parse_qsl

from asgi_ws_deny import _deny

__all__ = (
    "MAX_CLOSE_REASON_BYTES",
    "BrowserPolicy",
    "Check",
    "CheckResult",
    "CloseCodes",
    "Denied",
    "Handshake",
    "HandshakeState",
    "HandshakeStateError",
    "MultiMap",
    "WebSocketGuard",
    "default_close_code",
    "run_check",
)

_logger = logging.getLogger("asgi_ws_deny")

#: RFC 6455 section 5.5: a control frame carries at most 125 bytes, two of them the close code.
MAX_CLOSE_REASON_BYTES = 123

#: When denials become an accept and a close: never, for requests with an ``Origin`` header
#: (browsers), or always.
BrowserPolicy = Literal["never", "origin", "always"]

#: What a check gives back: ``None`` admits, a `Denial` refuses.
CheckResult = _deny.Denial | None
#: A sync or async callable deciding on a `Handshake`; it may also raise `Denied`.
Check = Callable[["Handshake"], "CheckResult | Awaitable[CheckResult]"]
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

_EXCEPTION_GROUP: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)


def _exception_group() -> type[BaseException] | None:
    """The type of exception groups: built in from Python 3.11; on 3.10, that of the
    ``exceptiongroup`` backport, which trio and anyio load before they raise a group."""
    if _EXCEPTION_GROUP is not None:
        return _EXCEPTION_GROUP
    backport = sys.modules.get("exceptiongroup")
    group: type[BaseException] | None = getattr(backport, "BaseExceptionGroup", None)
    return group


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


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _truncate_reason(reason: str) -> str:
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return reason
    # The cut may fall inside a multi-byte character; "ignore" drops only that partial tail.
    return encoded[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


# --- Errors and the exception an application raises ----------------------------------------


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


class Denied(Exception):
    """Raise to deny the WebSocket handshake from anywhere under a `WebSocketGuard`.

    ``Denied(status, headers=(), body=b"", *, reason=None)`` validates its arguments into a
    `Denial` at once (so a bad status fails where it is raised, with `InvalidDenialError`);
    ``status`` may also be a ready `Denial`, given alone. ``reason`` is the text of the close
    frame when the denial travels as a close (after accept, or under a browser-visible policy);
    it defaults to the status phrase ("Not Found") and is cut to 123 UTF-8 bytes when sent.

    It is not a `DenyError`: those report misuse of this package, while `Denied` is an answer
    the application chose, so ``except DenyError`` does not swallow it.
    """

    def __init__(
        self,
        status: int | _deny.Denial = 403,
        headers: _deny.Headers = (),
        body: _deny.Body = b"",
        *,
        reason: str | None = None,
    ) -> None:
        denial = _deny._as_denial(status, headers, body)
        if reason is None:
            reason = _phrase(denial.status)
        elif not isinstance(reason, str):
            raise _deny.InvalidDenialError(f"reason must be str, got {type(reason).__name__}")
        try:
            reason.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _deny.InvalidDenialError(
                f"reason cannot be encoded as UTF-8: {exc.reason}"
            ) from None
        super().__init__(denial.status, reason)
        self._denial = denial
        self._reason = reason

    @property
    def denial(self) -> _deny.Denial:
        """The validated response."""
        return self._denial

    @property
    def status(self) -> int:
        """The HTTP status of the denial."""
        return self._denial.status

    @property
    def reason(self) -> str:
        """The close reason, uncut."""
        return self._reason

    def __str__(self) -> str:
        return f"{self._denial.status} {self._reason}".rstrip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._denial!r}, reason={self._reason!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_denied, (type(self), self._denial, self._reason))


def _restore_denied(cls: type[Denied], denial: _deny.Denial, reason: str) -> Denied:
    return cls(denial, reason=reason)


def _denied_in(exc: BaseException) -> Denied | None:
    """The `Denied` that ``exc`` is, or that alone fills an exception group, else None."""
    if isinstance(exc, Denied):
        return exc
    group = _exception_group()
    if group is not None and isinstance(exc, group):
        # A Denied raised inside a task group arrives wrapped; it still means "deny" when
        # nothing else failed beside it.
        matched, rest = exc.split(Denied)  # type: ignore[attr-defined]
        while matched is not None and rest is None and not isinstance(matched, Denied):
            matched = matched.exceptions[0]
        if isinstance(matched, Denied):
            return matched
    return None


# --- The read-only view of a handshake ------------------------------------------------------


class MultiMap(Mapping[str, str]):
    """A read-only mapping that keeps every value of a repeated key, in order.

    ``m[key]`` and ``m.get(key)`` give the first value, ``m.getall(key)`` all of them, and
    ``m.multi_items()`` every pair as received. With ``case_insensitive`` (headers) keys are
    compared and listed in lowercase.
    """

    __slots__ = ("_fold", "_index", "_items")

    _fold: Callable[[str], str] | None
    _items: tuple[tuple[str, str], ...]
    _index: dict[str, tuple[str, ...]]

    def __init__(self, items: Iterable[tuple[str, str]], *, case_insensitive: bool = False) -> None:
        fold = str.lower if case_insensitive else None
        pairs = tuple((fold(k) if fold else k, v) for k, v in items)
        index: dict[str, list[str]] = {}
        for key, value in pairs:
            index.setdefault(key, []).append(value)
        object.__setattr__(self, "_fold", fold)
        object.__setattr__(self, "_items", pairs)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})

    def _key(self, key: str) -> str:
        return self._fold(key) if self._fold is not None and isinstance(key, str) else key

    def __getitem__(self, key: str) -> str:
        return self._index[self._key(key)][0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._key(key) in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def getall(self, key: str) -> tuple[str, ...]:
        """Every value of ``key`` in order; empty when it is absent."""
        return self._index.get(self._key(key), ())

    def multi_items(self) -> tuple[tuple[str, str], ...]:
        """Every (key, value) pair in order, repeats included."""
        return self._items

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._items)!r})"


class Handshake:
    """A read-only view of a WebSocket handshake, given to a guard's check.

    Every attribute is derived from the ASGI scope on first use: ``path``, ``root_path``,
    ``query_string`` (raw bytes) and ``query`` (parsed, blank values kept), ``headers``
    (case-insensitive, repeats kept, decoded as latin-1), ``cookies`` (across every ``Cookie``
    header: the first value of each name, ``getall`` for every one), ``origin``, ``client``
    and ``server`` (``(host, port)`` or ``None``), ``subprotocols``, ``http_version``,
    ``scheme``, and ``scope`` itself as a read-only mapping.
    """

    __slots__ = ("_cache", "_scope")

    _scope: Mapping[str, Any]
    _cache: dict[str, Any]

    def __init__(self, scope: _deny.Scope) -> None:
        # Every admitted handshake pays for this, so it only keeps the scope: what a check asks
        # for is derived on first use and kept in `_cache`, made then too.
        _set_scope(self, scope)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def _memo(self) -> dict[str, Any]:
        try:
            return self._cache
        except AttributeError:
            cache: dict[str, Any] = {}
            _set_cache(self, cache)
            return cache

    @property
    def scope(self) -> Mapping[str, Any]:
        """The ASGI scope, read-only (its nested values are the server's own)."""
        memo = self._memo()
        cached = memo.get("scope")
        if cached is None:
            cached = memo["scope"] = MappingProxyType(self._scope)
        return cached

    @property
    def path(self) -> str:
        """The decoded request path, without the query string."""
        return str(self._scope.get("path", ""))

    @property
    def root_path(self) -> str:
        """Where the application is mounted."""
        return str(self._scope.get("root_path", "") or "")

    @property
    def query_string(self) -> bytes:
        """The raw query string."""
        return bytes(self._scope.get("query_string", b"") or b"")

    @property
    def query(self) -> MultiMap:
        """The parsed query string; ``?a=1&a=2`` gives ``query["a"] == "1"``, ``getall`` both."""
        memo = self._memo()
        cached = memo.get("query")
        if cached is None:
            pairs = parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)
            cached = memo["query"] = MultiMap(pairs)
        return cached

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The request headers as the server gave them."""
        return tuple((bytes(k), bytes(v)) for k, v in self._scope.get("headers", ()))

    @property
    def headers(self) -> MultiMap:
        """The request headers, case-insensitive, repeats kept in order."""
        memo = self._memo()
        cached = memo.get("headers")
        if cached is None:
            pairs = ((k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers)
            cached = memo["headers"] = MultiMap(pairs, case_insensitive=True)
        return cached

    @property
    def cookies(self) -> MultiMap:
        """Cookies by name (RFC 6265 section 5.4): ``cookies["a"]`` is the first of a repeated
        name, ``cookies.getall("a")`` every value in order (a sibling subdomain can add one)."""
        memo = self._memo()
        cached = memo.get("cookies")
        if cached is None:
            pairs = []
            for header in self.headers.getall("cookie"):
                for pair in header.split(";"):
                    name, sep, value = pair.partition("=")
                    name = name.strip()
                    if sep and name:
                        pairs.append((name, value.strip()))
            cached = memo["cookies"] = MultiMap(pairs)
        return cached

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header, which every browser sends; ``None`` when absent."""
        return self.headers.get("origin")

    @property
    def client(self) -> tuple[str, int] | None:
        """The remote ``(host, port)``, or ``None`` when the server does not know it."""
        return _address(self._scope.get("client"))

    @property
    def server(self) -> tuple[str, int | None] | None:
        """The listening ``(host, port)`` (``(path, None)`` for a unix socket), or ``None``."""
        return _address(self._scope.get("server"))

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered, in its order of preference."""
        return tuple(self._scope.get("subprotocols") or ())

    @property
    def http_version(self) -> str:
        """``"1.1"`` or ``"2"``."""
        return str(self._scope.get("http_version", "1.1"))

    @property
    def scheme(self) -> str:
        """``"ws"`` or ``"wss"``."""
        return str(self._scope.get("scheme", "ws") or "ws")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} client={self.client!r}>"


# The slots' own setters: `Handshake.__setattr__` refuses every assignment, and these are
# cheaper than object.__setattr__.
_set_scope = Handshake.__dict__["_scope"].__set__
_set_cache = Handshake.__dict__["_cache"].__set__


def _address(value: Any) -> tuple[Any, Any] | None:
    if value is None:
        return None
    host, port = value
    return (host, port)


# --- The send wrapper -----------------------------------------------------------------------

_HINTS: dict[tuple[HandshakeState, str | None], str] = {
    (HandshakeState.CONNECTING, _BODY): "a response body comes after websocket.http.response.start",
    (HandshakeState.CONNECTING, _SEND): "accept the connection first",
    (HandshakeState.RESPONDING, _START): "the denial response has already started",
    (HandshakeState.RESPONDING, _ACCEPT): "a denial response has started; it cannot be accepted",
    (HandshakeState.OPEN, _ACCEPT): "the connection is already accepted",
    (HandshakeState.OPEN, _START): "a denial response is only possible before accept",
    (HandshakeState.OPEN, _BODY): "a denial response is only possible before accept",
}
_AFTER_DENIAL = (
    "the handshake was denied, and no message follows a denial "
    "(asgiref extensions, WebSocket Denial Response)"
)
_AFTER_CLOSE = "the connection is closed (RFC 6455 section 5.5.1: nothing follows a close)"


class _Tracker:
    """Follows the handshake through the messages the application sends."""

    __slots__ = ("_scope", "_send", "moves")

    def __init__(self, send: _deny.Send, scope: _deny.Scope) -> None:
        self._send = send
        self._scope = scope  # asked about the extension only when a response starts
        self.moves = _CONNECTING  # the state, held as the table of its moves

    @property
    def state(self) -> HandshakeState:
        return _STATES[id(self.moves)]

    def send(self, message: Any) -> Awaitable[None]:
        # Every data message of a long-lived connection comes through here, so it is a plain
        # function that hands back the server's own awaitable: no coroutine of ours between
        # the application and the server, and a common move is one lookup. The state moves
        # when the application calls send, before it awaits, so two concurrent sends cannot
        # both pass one check (two accepts, an accept racing a denial); a refused message
        # raises from the call.
        try:
            self.moves = self.moves[message["type"]]
        except (KeyError, TypeError):  # not a common move, no "type", not a mapping
            self.moves = self._next(message)
        return self._send(message)

    def _next(self, message: Any) -> _Moves:
        kind = _kind(message)
        state = self.state
        if state is HandshakeState.CONNECTING and kind == _START:
            if not _deny.supports_denial_response(self._scope):
                raise HandshakeStateError(
                    state,
                    kind,
                    f"the server does not list {_deny.EXTENSION!r} in scope['extensions']; "
                    "deny with websocket.close, or with deny(), which falls back to it",
                )
            _check_start_status(message.get("status"), self._scope)
            return _RESPONDING
        if state is HandshakeState.RESPONDING and kind == _BODY:
            return _RESPONDING if message.get("more_body", False) else _DENIED
        if state is HandshakeState.DENIED:
            hint = _AFTER_DENIAL
        elif state is HandshakeState.CLOSED:
            hint = _AFTER_CLOSE
        elif kind not in (_ACCEPT, _SEND, _CLOSE, _START, _BODY):
            hint = "it is not a WebSocket send event of ASGI or its denial-response extension"
        else:
            hint = _HINTS.get((state, kind), "it is out of order")
        raise HandshakeStateError(state, kind, hint)


# Each state is the table of its moves: the message types whose move depends on the type alone,
# each mapped to the table of the state it leads to. The tracker holds the table, so a common
# move costs one lookup; a response start (the extension, its status), a response body
# (more_body) and every refusal are decided by `_Tracker._next`.
_Moves = dict[object, "_Moves"]
_CONNECTING: _Moves = {}
_OPEN: _Moves = {}
_RESPONDING: _Moves = {}
_DENIED: _Moves = {}
_CLOSED: _Moves = {}
_CONNECTING.update({_ACCEPT: _OPEN, _CLOSE: _DENIED})
_OPEN.update({_SEND: _OPEN, _CLOSE: _CLOSED})
_STATES: dict[int, HandshakeState] = {
    id(_CONNECTING): HandshakeState.CONNECTING,
    id(_OPEN): HandshakeState.OPEN,
    id(_RESPONDING): HandshakeState.RESPONDING,
    id(_DENIED): HandshakeState.DENIED,
    id(_CLOSED): HandshakeState.CLOSED,
}


def _kind(message: object) -> object:
    if isinstance(message, Mapping):
        return message.get("type")
    return None


def _check_start_status(status: object, scope: _deny.Scope) -> None:
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise _deny.InvalidDenialError(
            f"websocket.http.response.start status must be an int in 200..599, got {status!r}: "
            "a 1xx status is an interim response (101 would complete the upgrade)"
        )
    if status <= 299 and scope.get("http_version") == "2":
        raise _deny.InvalidDenialError(
            f"websocket.http.response.start status {status} would accept the WebSocket over "
            "HTTP/2, where a 2xx answer to the extended CONNECT opens the tunnel (RFC 8441 "
            "section 5)"
        )


# --- The middleware -------------------------------------------------------------------------


class WebSocketGuard:
    """ASGI middleware that denies WebSocket handshakes before, and from inside, an application.

    ``WebSocketGuard(app, check=None, *, fallback="close", error_denial=Denial(500),
    no_handshake_denial=Denial(403), browser_policy="never", close_codes=None)``

    - ``check(handshake)`` (sync or async) runs before ``app`` for every ``websocket`` scope:
      ``None`` admits, a `Denial` or a raised `Denied` refuses and ``app`` is never called,
      anything else (an exception, ``False``, ``True``, any other value) fails closed with
      ``error_denial`` and is logged on the ``"asgi_ws_deny"`` logger. A sync check runs on
      the event loop: keep it quick, or make it async. A list or tuple of checks runs them in
      order, the first refusal winning (`asgi_ws_deny.checks.AllOf`). Without a check the
      guard only converts.
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
    ) -> None:
        if not callable(app):
            raise _deny.InvalidDenialError(f"app must be an ASGI callable, got {app!r}")
        if isinstance(check, (list, tuple)):
            # checks.py builds on this module, so its AllOf is imported only when asked for.
            from asgi_ws_deny.checks import AllOf

            try:
                check = AllOf(*check)
            except _deny.DenyError as exc:  # checks' InvalidCheckError: an option of the guard's
                raise _deny.InvalidDenialError(f"check: {exc}") from None
        if check is not None and not callable(check):
            raise _deny.InvalidDenialError(
                f"check must be callable, a list of checks, or None, got {check!r}"
            )
        if fallback not in ("close", "raise"):
            raise _deny.InvalidDenialError(f"fallback must be 'close' or 'raise', got {fallback!r}")
        if browser_policy not in ("never", "origin", "always"):
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

    async def __call__(self, scope: _deny.Scope, receive: _deny.Receive, send: _deny.Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        tracker = _Tracker(send, scope)
        check = self.check
        if check is not None:
            # run_check, written out for the admitting case: a sync check that returns None
            # costs no coroutine. Anything else takes run_check's own path.
            refusal: _Refusal | None
            try:
                result: object = check(Handshake(scope))
            except Exception as exc:
                refusal = _check_raised(check, scope, self.error_denial, exc)
            else:
                refusal = (
                    None
                    if result is None
                    else await _check_returned(check, scope, self.error_denial, result)
                )
            if refusal is not None:
                await self._refuse(scope, tracker, *refusal)
                return
        try:
            await self.app(scope, receive, tracker.send)
        except Exception as exc:
            denied = _denied_in(exc)
            if denied is None:
                if tracker.moves is _CONNECTING:
                    # Fail closed before the server improvises (a 500 on some, a stray 101
                    # on others); the error still reaches the server's own error handling,
                    # which is also where it goes when fallback="raise" finds no extension.
                    with contextlib.suppress(_deny.DenialUnsupportedError):
                        await self._refuse(scope, tracker, self.error_denial, None)
                raise
            await self._convert(scope, tracker, denied, exc)
            return
        if tracker.moves is _CONNECTING:
            _logger.debug(
                "WebSocket app returned without a handshake on %r; denying with %d",
                scope.get("path"),
                self.no_handshake_denial.status,
            )
            await self._refuse(scope, tracker, self.no_handshake_denial, None)
        elif tracker.moves is _RESPONDING:
            await _quietly(tracker.send({"type": _BODY, "body": b"", "more_body": False}))

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
        if self._browser_visible(scope):
            offered = scope.get("subprotocols") or ()
            accept: dict[str, Any] = {
                "type": _ACCEPT,
                "subprotocol": next(iter(offered), None),
                "headers": [],
            }
            close = self._close_message(denial.status, reason)  # made before anything is sent
            if await _quietly(tracker.send(accept)):
                await _quietly(tracker.send(close))
            return
        try:
            messages = denial.messages(scope, fallback=self.fallback)
        except _deny.DenialUnsupportedError:
            raise
        except _deny.InvalidDenialError:
            # A denial valid in itself but not for this scope (a 2xx over HTTP/2 would open
            # the tunnel, RFC 8441 section 5): fail closed with the error denial instead.
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
        text = _phrase(status) if reason is None else reason
        return {"type": _CLOSE, "code": self._close_code(status), "reason": _truncate_reason(text)}

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


async def run_check(
    check: Check, scope: _deny.Scope, error_denial: _deny.Denial
) -> tuple[_deny.Denial, str | None] | None:
    """Run ``check`` on the handshake of ``scope`` as `WebSocketGuard` does, failing closed.

    Returns ``None`` only when the check returned ``None``; otherwise the denial to send and the
    reason to close with: the check's `Denial`, a raised `Denied`'s denial and reason, or
    ``error_denial`` (logged) for an exception or any other return value. For adapters that run
    a check outside the guard, such as a framework's dependency.
    """
    try:
        result: object = check(Handshake(scope))
    except Exception as exc:
        return _check_raised(check, scope, error_denial, exc)
    return None if result is None else await _check_returned(check, scope, error_denial, result)


_Refusal = tuple[_deny.Denial, str | None]


def _check_raised(
    check: Check, scope: _deny.Scope, error_denial: _deny.Denial, exc: Exception
) -> _Refusal:
    """A raised `Denied` refuses with its denial; any other exception fails closed, logged."""
    denied = _denied_in(exc)
    if denied is not None:
        return denied.denial, denied.reason
    _logger.exception(
        "WebSocket check %s raised on %r; denying with %d",
        _name(check),
        scope.get("path"),
        error_denial.status,
        exc_info=exc,
    )
    return error_denial, None


async def _check_returned(
    check: Check, scope: _deny.Scope, error_denial: _deny.Denial, result: object
) -> _Refusal | None:
    """Judge what a check returned other than ``None``: await it first when it is awaitable."""
    if inspect.isawaitable(result):
        try:
            result = await result
        except Exception as exc:
            return _check_raised(check, scope, error_denial, exc)
        if result is None:
            return None
    if isinstance(result, _deny.Denial):
        return result, None
    _logger.error(
        "WebSocket check %s returned a %s on %r; a check returns None to admit or a Denial "
        "to refuse; denying with %d",
        _name(check),
        type(result).__name__,
        scope.get("path"),
        error_denial.status,
    )
    return error_denial, None


def _name(check: object) -> str:
    """A check's name for the log: never its repr, which may hold a key or a token."""
    name = getattr(check, "__qualname__", None) or type(check).__qualname__
    return f"{getattr(check, '__module__', None) or type(check).__module__}.{name}"


async def _quietly(sending: Awaitable[None]) -> bool:
    """Await one send; False when the client has left (ASGI spec 2.4: ``send`` raised OSError)."""
    try:
        await sending
    except OSError:
        return False
    return True


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

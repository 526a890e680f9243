"""Starlette and FastAPI: deny from a `WebSocket`, with any `Response`, on every server.

Theory of operation
-------------------
Starlette can already answer a handshake with a response (``WebSocket.send_denial_response``),
but only where the server lists the denial-response extension: elsewhere it raises
``RuntimeError``. Its exception handling is less careful still: an ``HTTPException`` raised in a
websocket endpoint is rendered as a ``Response`` and sent as ``websocket.http.response.*``
whether or not the server offers the extension, and whether or not the endpoint had already
accepted. This module puts the core's choice in between:

- `deny` turns a status, a `Denial` or any Starlette ``Response`` (streaming and file responses
  included, their body collected first) into one validated `Denial` and sends it with `deny`'s
  fallback: the response where the extension is listed, ``websocket.close`` (403) elsewhere.
- `add_exception_handlers` registers handlers for ``HTTPException`` (Starlette's, and any
  subclass with a handler of its own, such as FastAPI's) and `Denied` that answer by the
  endpoint's handshake state (see below).
- `check_handshake` makes a FastAPI dependency of a guard check, so one route can run the same
  check as `WebSocketGuard` would for the whole application.

Starlette's ``WebSocket`` tracks two states, and both are kept true. The denial goes out
through ``websocket.send``, which moves ``application_state`` as it does for any message; once
it is out both states are set to ``DISCONNECTED``. Starlette then sends nothing more, a later
``send`` raises Starlette's own error, and a later ``receive()`` raises too instead of reaching
the server, where it would return at once on one, block on another and never return on a
third.

What the handlers do, by ``websocket.application_state`` when the exception arrives:

============  ==================================================================================
CONNECTING    deny: with the `Denied`'s denial, or with the ``Response`` the application's
              ``HTTPException`` handler makes for HTTP (FastAPI: ``{"detail": ...}`` JSON;
              Starlette: the detail as text), converted by `deny`
CONNECTED     close with ``4000 + status`` and the reason (the `Denied` reason, or the
              exception's detail) cut to 123 UTF-8 bytes, as `WebSocketGuard` does
RESPONSE      raise `HandshakeStateError` from the exception: half a response is out and
              cannot be taken back
DISCONNECTED  nothing: the handshake was already answered
============  ==================================================================================

The state is exact for function endpoints (Starlette's ``WebSocketRoute`` and FastAPI's
``@app.websocket``, dependencies included), where Starlette hands the handler the endpoint's own
``WebSocket``. A class-based ``WebSocketEndpoint`` and a middleware get a handler with a fresh
``WebSocket`` that always reads CONNECTING: raise there before accepting (in ``on_connect``), or
put `WebSocketGuard` around the application, which tracks the handshake itself.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

try:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import HTTPConnection
    from starlette.responses import PlainTextResponse, Response
    from starlette.types import ExceptionHandler, Message
    from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
except ImportError as error:
    raise ImportError(
        "asgi_ws_deny.contrib.starlette needs Starlette: pip install 'asgi-ws-deny[starlette]'"
    ) from error

from asgi_ws_deny import _deny
from asgi_ws_deny._deny import as_denial
from asgi_ws_deny.guard import HandshakeState, HandshakeStateError, default_close_code
from asgi_ws_deny.handshake import AllOf, Check, Denied, close_reason, run_check
from asgi_ws_deny.handshake import status_phrase as phrase

__all__ = (
    "add_exception_handlers",
    "check_handshake",
    "denial_from_response",
    "denied_handler",
    "deny",
    "http_exception_handler",
)

_logger = logging.getLogger("asgi_ws_deny")

_START = "websocket.http.response.start"
_BODY = "websocket.http.response.body"

# Starlette's states in the guard's terms, for the error a misplaced deny() raises.
_AS_GUARD_STATE = {
    WebSocketState.CONNECTED: HandshakeState.OPEN,
    WebSocketState.RESPONSE: HandshakeState.RESPONDING,
    WebSocketState.DISCONNECTED: HandshakeState.CLOSED,
}


def denial_from_response(response: Response) -> _deny.Denial:
    """The `Denial` with ``response``'s status, raw headers and body.

    For responses that hold their body (``Response``, ``JSONResponse``, ``PlainTextResponse``,
    ``HTMLResponse``, ``RedirectResponse``...). A streaming or file response has no body until
    it runs: pass it to `deny`, which collects it. Raises `InvalidDenialError` when the response
    cannot deny a handshake (a 1xx status, a ``connection`` or ``transfer-encoding`` header, a
    ``content-length`` that does not match the body).
    """
    body = getattr(response, "body", None)
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise _deny.InvalidDenialError(
            f"{type(response).__name__} has no body until it runs; pass it to "
            "asgi_ws_deny.contrib.starlette.deny(), which collects the body first"
        )
    return _deny.Denial(response.status_code, response.raw_headers, body)


async def _send_response(
    websocket: WebSocket, response: Response, fallback: _deny.Fallback
) -> tuple[_deny.Outcome, BackgroundTask | None]:
    """Run ``response`` against the core's `denial_send`: what it sends becomes the denial.

    Its background task is held back and handed to the caller: it runs after the denial is
    sent, as it would after an HTTP response, and not at all when the client had left.
    """

    async def receive() -> Message:
        raise _deny.InvalidDenialError(
            f"{type(response).__name__} called receive() while it was sent as a denial: "
            "nothing arrives before a handshake is answered"
        )

    background = response.background
    response.background = None
    send = _deny.denial_send(websocket.scope, websocket.send, fallback=fallback)
    try:
        await response(websocket.scope, receive, send)
    finally:
        response.background = background
    if send.outcome is None:
        raise _deny.InvalidDenialError(f"{type(response).__name__} sent no whole response")
    return send.outcome, background


async def deny(
    websocket: WebSocket,
    status: int | _deny.Denial | Response = 403,
    headers: _deny.Headers = (),
    body: _deny.Body = b"",
    *,
    fallback: _deny.Fallback = "close",
) -> _deny.Outcome:
    """Deny the handshake of a Starlette (or FastAPI) ``websocket`` and say which way it went.

    ``status`` is an HTTP status (with ``headers`` and ``body``, as for the core `deny`), a
    `Denial`, or any Starlette ``Response``, given alone: its status, raw headers and body
    become the denial, and its background task runs once the denial is sent (unless the
    client had left). Where the server lacks the denial-response extension, ``fallback="close"``
    sends ``websocket.close`` (the client sees 403) where Starlette's ``send_denial_response``
    would raise; ``fallback="raise"`` raises `DenialUnsupportedError` having sent nothing.

    Returns the core's outcome: ``"response"``, ``"close"`` or ``"disconnected"``. Afterwards
    both of the websocket's states are ``DISCONNECTED``: Starlette sends nothing more, and a
    later ``receive()`` raises at once instead of waiting on the server. Raises
    `HandshakeStateError` when the handshake was already answered (accepted, denied or closed)
    and `InvalidDenialError` for a status, header or body that cannot deny it, in both cases
    before anything is sent.
    """
    state = websocket.application_state
    if state is not WebSocketState.CONNECTING:
        raise HandshakeStateError(
            _AS_GUARD_STATE.get(state, HandshakeState.CLOSED),
            _START,
            f"the WebSocket's application_state is {state.name}: a handshake can be denied "
            "only before it is accepted, denied or closed",
        )
    background = None
    if isinstance(status, Response):
        if headers != () or body != b"":
            raise _deny.InvalidDenialError(
                "headers and body belong to the Response; set them on it instead"
            )
        outcome, background = await _send_response(websocket, status, fallback)
    else:
        denial = as_denial(status, headers, body)
        outcome = await _deny.deny(websocket.scope, websocket.send, denial, fallback=fallback)
    websocket.application_state = WebSocketState.DISCONNECTED
    websocket.client_state = WebSocketState.DISCONNECTED
    if background is not None and outcome != "disconnected":
        await background()
    return outcome


# --- Exception handlers --------------------------------------------------------------------


async def _answer(
    websocket: WebSocket,
    make_denial: Callable[[], Awaitable[_deny.Denial | Response]],
    status: int,
    reason: str,
    raised: Exception,
    fallback: _deny.Fallback,
) -> None:
    """Answer an exception raised in a websocket endpoint, by the handshake's state."""
    state = websocket.application_state
    if state is WebSocketState.CONNECTING:
        denial = await make_denial()
        if websocket.application_state is not WebSocketState.CONNECTING:
            # The application's own handler answered the handshake itself (closed it, say).
            _logger.debug(
                "%s was answered by the application's handler on %r; nothing more to send",
                type(raised).__name__,
                websocket.scope.get("path"),
            )
            return
        await deny(websocket, denial, fallback=fallback)
    elif state is WebSocketState.CONNECTED:
        # WebSocketDisconnect: the client left first, and there is nobody to tell.
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.close(default_close_code(status), close_reason(reason))
    elif state is WebSocketState.RESPONSE:
        # Not the exception itself: Starlette's outer exception layer would hand it to this
        # handler again, with a fresh WebSocket that reads CONNECTING, and a second response
        # would start.
        raise HandshakeStateError(
            HandshakeState.RESPONDING,
            _START,
            f"{type(raised).__name__} was raised while a denial response was under way; "
            "half of it is out and cannot be taken back",
        ) from raised
    else:
        _logger.debug(
            "%s raised after the handshake was answered on %r; nothing to send",
            type(raised).__name__,
            websocket.scope.get("path"),
        )


def _is_async(handler: object) -> bool:
    """Whether calling ``handler`` gives a coroutine (a partial's function, an async __call__)."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__call__
    )


async def _call(handler: Callable[..., Any], *args: Any) -> Any:
    if _is_async(handler):
        return await handler(*args)
    # Starlette runs a sync exception handler in its thread pool; so does this.
    return await run_in_threadpool(handler, *args)


def _starlette_http_response(exc: HTTPException) -> Response:
    """What Starlette answers an ``HTTPException`` with when no handler is registered."""
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def http_exception_handler(
    http_handler: Callable[..., Any] | None = None,
    *,
    fallback: _deny.Fallback = "close",
) -> Callable[[HTTPConnection, Exception], Awaitable[Response | None]]:
    """An ``HTTPException`` handler that answers websocket endpoints with a portable denial.

    ``http_handler`` is the application's handler for HTTP requests (FastAPI's default, or
    yours), or ``None`` for Starlette's plain-text default. HTTP requests get its response
    unchanged. In a websocket endpoint before accept, the ``Response`` it makes for the
    exception becomes the denial, sent by `deny` with ``fallback``; after accept the connection
    is closed with ``4000 + status``. A handler that returns ``None`` for a WebSocket denies with
    the exception's status and headers. `add_exception_handlers` registers it for you.
    """

    async def handle(conn: HTTPConnection, exc: Exception) -> Response | None:
        if not isinstance(exc, HTTPException):
            raise exc

        async def response() -> Response:
            if http_handler is None:
                return _starlette_http_response(exc)
            made = await _call(http_handler, conn, exc)
            if made is None:
                return Response(status_code=exc.status_code, headers=exc.headers)
            return cast(Response, made)

        if not isinstance(conn, WebSocket):
            return await response()
        reason = exc.detail if isinstance(exc.detail, str) else phrase(exc.status_code)
        await _answer(conn, response, exc.status_code, reason, exc, fallback)
        return None

    return handle


def _http_response(denial: _deny.Denial) -> Response:
    response = Response(denial.body, status_code=denial.status)
    # Every header as the denial has it, repeats included (two set-cookie stay two).
    response.raw_headers = list(denial.headers)
    return response


def denied_handler(
    *, fallback: _deny.Fallback = "close"
) -> Callable[[HTTPConnection, Exception], Awaitable[Response | None]]:
    """A `Denied` handler: the denial for a websocket endpoint, the same response for HTTP.

    In a websocket endpoint it answers by the handshake state as the module documentation's
    table says; an HTTP request that raises `Denied` gets its status, headers and body as an
    ordinary response. `add_exception_handlers` registers it for you.
    """

    async def handle(conn: HTTPConnection, exc: Exception) -> Response | None:
        if not isinstance(exc, Denied):
            raise exc
        if not isinstance(conn, WebSocket):
            return _http_response(exc.denial)

        async def denial() -> _deny.Denial:
            return exc.denial

        await _answer(conn, denial, exc.status, exc.reason, exc, fallback)
        return None

    return handle


def add_exception_handlers(app: Starlette, *, fallback: _deny.Fallback = "close") -> None:
    """Make ``HTTPException`` and `Denied` in a websocket endpoint a portable denial.

    Registers `http_exception_handler` (wrapping the ``HTTPException`` handler ``app`` already
    has: FastAPI's, or one of yours, so HTTP responses do not change) and `denied_handler`.
    A handler ``app`` has for a subclass of ``HTTPException`` (``fastapi.HTTPException`` is
    one) is wrapped too: Starlette picks the handler of the most specific class. Call it after
    registering your own handlers, and before the application serves: Starlette reads its
    handlers once, when it builds its middleware stack. A handler registered for a status code
    (``app.add_exception_handler(404, ...)``) still takes precedence for that status, as
    Starlette always gives it.
    """
    handlers: list[tuple[type[Exception], Callable[..., Any]]] = [
        (exception, http_exception_handler(previous, fallback=fallback))
        for exception, previous in list(app.exception_handlers.items())
        if isinstance(exception, type)
        and issubclass(exception, HTTPException)
        and exception is not HTTPException
    ]
    previous = app.exception_handlers.get(HTTPException)
    handlers += [
        (HTTPException, http_exception_handler(previous, fallback=fallback)),
        (Denied, denied_handler(fallback=fallback)),
    ]
    for exception, handler in handlers:
        # Starlette types its handlers as one of HTTP's or WebSocket's; this one serves both.
        app.add_exception_handler(exception, cast(ExceptionHandler, handler))


# --- A FastAPI dependency ------------------------------------------------------------------


def check_handshake(
    check: Check | Sequence[Check],
    *,
    fallback: _deny.Fallback = "close",
    error_denial: _deny.Denial | None = None,
) -> Callable[[WebSocket], Awaitable[None]]:
    """A FastAPI dependency that runs a guard ``check`` and denies before the endpoint runs.

    ``check`` is what `WebSocketGuard` takes: called with a read-only `Handshake`, sync or
    async, it returns ``None`` to admit or a `Denial` to refuse, or raises `Denied`. Anything
    else fails closed: an exception or another return value is logged and denied with
    ``error_denial`` (500 by default). Use it as
    ``@app.websocket("/ws", dependencies=[Depends(check_handshake(check))])``.

    On a refusal the dependency denies through `deny` itself, then raises `Denied` so that the
    endpoint never runs; with `add_exception_handlers` (or `WebSocketGuard`) that exception is
    quiet, since the handshake is already answered. Without either, the client still gets the
    denial and the server logs the exception.
    """
    if isinstance(check, (list, tuple)):
        # As WebSocketGuard takes them: in order (an origin check first), the first refusal wins.
        try:
            check = AllOf(*check)
        except _deny.DenyError as exc:
            raise _deny.InvalidDenialError(f"check: {exc}") from None
    if not callable(check):
        raise _deny.InvalidDenialError(f"check must be callable, got {check!r}")
    failure = error_denial if error_denial is not None else _deny.Denial(500)
    if not isinstance(failure, _deny.Denial):
        raise _deny.InvalidDenialError(
            f"error_denial must be a Denial, got {type(failure).__name__}"
        )

    async def dependency(websocket: WebSocket) -> None:
        refused = await run_check(check, websocket.scope, failure)
        if refused is None:
            return
        refusal = Denied(refused[0], reason=refused[1])
        if websocket.application_state is WebSocketState.CONNECTING:
            await deny(websocket, refusal.denial, fallback=fallback)
        raise refusal

    return dependency

"""Litestar: ``await deny(socket, ...)`` in a WebSocket handler before ``accept()``.

Theory of operation
-------------------
Litestar answers every exception raised in a WebSocket handler, its guards and its
dependencies with ``websocket.close`` (code ``4000 + 500``, or a ``WebSocketException``'s own);
before accept the client sees 403 on every server, never the status or a body, and nothing
raised there reaches a middleware outside. So a denial is sent, not raised:

- `deny` sends it from the handler through the socket's ASGI ``send``, with the core's choice
  (the response where the server lists the denial-response extension, ``websocket.close`` and
  403 elsewhere), then marks the socket disconnected: Litestar's own ``send`` and ``receive``
  then raise ``WebSocketDisconnect`` instead of reaching the server after the denial, where
  ``receive()`` returns at once on one server, blocks on another and never returns on a third.
  Return from the handler after it: an exception raised after the denial still reaches
  Litestar's exception handling, which sends ``websocket.close`` with the raw ASGI ``send``,
  after the denial, and the server reports that as an error.
- To refuse before the handler runs, put `WebSocketGuard` with a check in the route's (or the
  app's) ``middleware``: Litestar runs it outside its exception handling, so the check's
  `Denial` is sent as it is.
"""

from __future__ import annotations

try:
    from litestar.connection import WebSocket
except ImportError as error:
    raise ImportError(
        "asgi_ws_deny.contrib.litestar needs Litestar: pip install 'asgi-ws-deny[litestar]'"
    ) from error

from asgi_ws_deny import _deny
from asgi_ws_deny._deny import as_denial
from asgi_ws_deny.guard import HandshakeState, HandshakeStateError

__all__ = ("deny",)


async def deny(
    socket: WebSocket,  # type: ignore[type-arg]
    status: int | _deny.Denial = 403,
    headers: _deny.Headers = (),
    body: _deny.Body = b"",
    *,
    fallback: _deny.Fallback = "close",
) -> _deny.Outcome:
    """Deny the handshake of a Litestar ``socket`` and say which way it went.

    Takes what the core `deny` takes after ``scope`` and ``send`` and returns its outcome
    (``"response"``, ``"close"`` or ``"disconnected"``). Call it before ``accept()``, then
    return from the handler. Raises `HandshakeStateError` when the socket has already received
    data or disconnected, and `InvalidDenialError` for an input that cannot deny the handshake,
    in both cases before anything is sent.
    """
    state = socket.connection_state
    if state in ("receive", "disconnect"):
        raise HandshakeStateError(
            HandshakeState.OPEN if state == "receive" else HandshakeState.CLOSED,
            "websocket.http.response.start",
            f"the socket's connection_state is {state!r}: a handshake can be denied only "
            "before it is accepted",
        )
    denial = as_denial(status, headers, body)
    outcome = await _deny.deny(socket.scope, socket.send, denial, fallback=fallback)
    socket.connection_state = "disconnect"
    return outcome

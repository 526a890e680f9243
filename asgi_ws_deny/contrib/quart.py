"""Quart: ``raise Denied(...)`` (or return a `Denial`'s response) before ``accept()``.

Theory of operation
-------------------
Quart already answers a handshake with a response when a websocket view (or a
``before_websocket`` function) returns one before accepting, and it checks the extension
itself: where the server lacks it, it sends ``websocket.close`` and the client sees 403. What it
lacks is a way to send a `Denial`, and a way to refuse from code that cannot return a value.
This module adds both:

- `denial_response` makes a Quart ``Response`` with a `Denial`'s status, headers and body, with
  no header of Quart's own added (no default ``content-type``);
- `add_error_handler` registers `denied_handler` for `Denied`, so ``raise Denied(...)``
  anywhere in a websocket view, its ``before_websocket`` functions or what they call becomes
  that response. An HTTP request that raises `Denied` gets the same response.

Quart sends the raw ASGI messages itself (its ``websocket`` object does not expose ``send``),
and sends a denial's body as ``more_body`` chunks, which servers disagree about. `one_body`,
around Quart's ASGI app, gathers them and sends the response through the core `deny`: one start
and one body, the sequence every server handles. Quart has already accepted when a view raises
after ``accept()``; it then ignores the response and closes with 1000, so close with a code of
your own (``await websocket.close(4403, "reason")``) there instead.

Quart 0.23 (Python 3.13) keeps reading ``receive()`` until ``websocket.disconnect`` arrives,
after a denial too, and servers disagree about what ``receive()`` does then (it returns at once
on one, blocks on another, never returns on a third): a denied connection could hold its
application forever. `one_body` therefore answers a ``receive()`` that is still waiting when the
handshake is denied, and any later one, with ``websocket.disconnect`` (code 1006, as the client
saw no close frame); the server's own ``receive()`` is cancelled.

Quart runs on asyncio only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

try:
    from quart import Quart, Response
except ImportError as error:
    raise ImportError(
        "asgi_ws_deny.contrib.quart needs Quart: pip install 'asgi-ws-deny[quart]'"
    ) from error

from asgi_ws_deny import _deny
from asgi_ws_deny.handshake import Denied

_App = Callable[[Any, Any, Any], Awaitable[None]]

__all__ = ("add_error_handler", "denial_response", "denied_handler", "one_body")

_START = "websocket.http.response.start"
_BODY = "websocket.http.response.body"
_ACCEPT = "websocket.accept"
_CLOSE = "websocket.close"


def denial_response(denial: _deny.Denial) -> Response:
    """A Quart ``Response`` with exactly the status, headers and body of ``denial``.

    Return it from a websocket view before ``accept()`` to deny the handshake; from an HTTP
    view it is an ordinary response. Raises `InvalidDenialError` for a header value that is not
    UTF-8, which Quart would change when it sends it.
    """
    if not isinstance(denial, _deny.Denial):
        raise _deny.InvalidDenialError(f"expected a Denial, got {type(denial).__name__}")
    response = Response(denial.body, status=denial.status)
    # Only the denial's own headers: Quart would otherwise add a default content-type.
    response.headers.clear()
    for name, value in denial.headers:
        # Quart encodes header values as UTF-8 when it sends them: only a value that is UTF-8
        # comes out as the same bytes.
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _deny.InvalidDenialError(
                f"header {name.decode('latin-1')!r} value {value!r} is not UTF-8, and Quart "
                "sends header values as UTF-8: it would change on the way out"
            ) from None
        response.headers.add(name.decode("latin-1"), text)
    return response


async def denied_handler(error: Denied) -> Response:
    """Quart error handler: the `Denied`'s denial as a response (see `add_error_handler`)."""
    return denial_response(error.denial)


def add_error_handler(app: Quart) -> None:
    """Register `denied_handler`, so that raising `Denied` before ``accept()`` denies.

    The same as ``app.register_error_handler(Denied, denied_handler)``.
    """
    app.register_error_handler(Denied, denied_handler)


def one_body(app: _App) -> _App:
    """ASGI middleware: Quart's denial responses as one start and one body, as the core sends.

    Quart sends a denial's body as ``more_body`` chunks, which servers disagree about (granian
    2.8 raises on the first chunk and answers 403). Around Quart's ASGI app
    (``app.asgi_app = one_body(app.asgi_app)``) this gathers the chunks and sends the response
    through the core `deny`: a start with its ``content-length`` checked against the body, then
    one final body. Every other message passes through untouched. Once the handshake is denied,
    ``receive()`` gives the application ``websocket.disconnect`` (see the module documentation).
    """

    async def wrapped(scope: _deny.Scope, receive: _deny.Receive, send: _deny.Send) -> None:
        if scope.get("type") != "websocket":
            await app(scope, receive, send)
            return
        denying = _deny.denial_send(scope, send)
        accepted = False
        refused = asyncio.Event()

        async def gathering_send(message: Any) -> None:
            nonlocal accepted
            kind = message.get("type") if isinstance(message, Mapping) else None
            if kind in (_START, _BODY):
                try:
                    await denying(message)
                finally:
                    if denying.outcome is not None:
                        refused.set()
                return
            if kind == _ACCEPT:
                accepted = True
            elif kind == _CLOSE and not accepted:
                refused.set()  # a close before accept: the server answers 403
            await send(message)

        async def receiving() -> Any:
            if refused.is_set():
                return _DISCONNECTED
            if accepted:
                return await receive()
            # Undecided: the server's receive() races a refusal. After an accept it delivers
            # the first message as usual; after a denial it is cancelled.
            message = asyncio.ensure_future(receive())
            refusal = asyncio.ensure_future(refused.wait())
            try:
                await asyncio.wait((message, refusal), return_when=asyncio.FIRST_COMPLETED)
                return await message if message.done() else _DISCONNECTED
            finally:
                refusal.cancel()
                if not message.done():
                    message.cancel()

        await app(scope, receiving, gathering_send)

    return wrapped


# What the application hears after a denial: the client saw no close frame (RFC 6455 section
# 7.1.5: 1006).
_DISCONNECTED = {"type": "websocket.disconnect", "code": 1006, "reason": ""}

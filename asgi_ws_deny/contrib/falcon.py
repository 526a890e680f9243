"""Falcon (ASGI): ``raise Denied(...)`` in a WebSocket responder or middleware.

Theory of operation
-------------------
Falcon refuses a handshake by closing before ``accept()``: an ``HTTPError`` raised by a WebSocket
responder becomes ``websocket.close`` with code ``3000 + status``, and the client sees 403 on
every server, never the status or a body. Its ``WebSocket`` does not expose the ASGI ``send``,
and once a responder returns, Falcon closes a handshake that is still open, so a response cannot
be sent from inside a responder without racing Falcon.

The recipe is therefore the guard around the application. `guard` registers an error handler
that lets `Denied` raised while Falcon handles a WebSocket (in ``process_request_ws``,
``process_resource_ws`` or ``on_websocket``) leave the Falcon app untouched, and returns
`WebSocketGuard` around it, which denies with the `Denied`'s response where the server lists the
denial-response extension and with 403 elsewhere (before accept; after ``accept()`` it closes
with ``4000 + status``). A ``check`` given to `guard` runs before Falcon sees the connection at
all. An HTTP request that raises `Denied` is answered with its status, headers and body (Falcon
adds its default media type where the denial has no ``content-type``).

Falcon's own ``HTTPError`` keeps Falcon's behaviour (403, close code ``3000 + status``).
"""

from __future__ import annotations

from typing import Any

try:
    import falcon.asgi
except ImportError as error:
    raise ImportError(
        "asgi_ws_deny.contrib.falcon needs Falcon: pip install 'asgi-ws-deny[falcon]'"
    ) from error

from asgi_ws_deny import _deny
from asgi_ws_deny.guard import BrowserPolicy, CloseCodes, WebSocketGuard
from asgi_ws_deny.handshake import Check, Denied

__all__ = ("denied_handler", "guard")

_CONTENT_LENGTH = b"content-length"


async def denied_handler(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response | None,
    ex: Exception,
    params: dict[str, Any],
    ws: falcon.asgi.WebSocket | None = None,
) -> None:
    """Falcon error handler for `Denied`: out to the guard for a WebSocket, the response for HTTP.

    For a WebSocket it raises the exception again, which Falcon lets out of the application
    untouched, for `WebSocketGuard` to deny; `guard` registers it.
    """
    if not isinstance(ex, Denied) or ws is not None or resp is None:
        raise ex
    denial = ex.denial
    resp.status = denial.status
    for name, value in denial.headers:
        # Falcon computes content-length from the data itself.
        if name != _CONTENT_LENGTH:
            resp.append_header(name.decode("latin-1"), value.decode("latin-1"))
    resp.data = denial.body


def guard(
    app: falcon.asgi.App[Any, Any],
    check: Check | None = None,
    *,
    fallback: _deny.Fallback = "close",
    error_denial: _deny.Denial | None = None,
    no_handshake_denial: _deny.Denial | None = None,
    browser_policy: BrowserPolicy = "never",
    close_codes: CloseCodes | None = None,
) -> WebSocketGuard:
    """``WebSocketGuard(app, check, ...)``, with `Denied` let out of the Falcon ``app``.

    Registers `denied_handler` on ``app`` for `Denied` and returns the guard around ``app``:
    serve the guard. The options are `WebSocketGuard`'s.
    """
    app.add_error_handler(Denied, denied_handler)
    return WebSocketGuard(
        app,
        check,
        fallback=fallback,
        error_denial=error_denial,
        no_handshake_denial=no_handshake_denial,
        browser_policy=browser_policy,
        close_codes=close_codes,
    )

"""Quart: deny a WebSocket handshake with a real response before ``accept()``.

- ``/ws`` raises `Denied`, which the error handler of ``add_error_handler`` turns into the
  response;
- ``/returned`` returns ``denial_response(...)`` from the view.

``one_body`` around Quart's ASGI app sends each denial as one response start and one body.

A user named ``alice`` (``x-user`` header) is greeted; anyone else gets ``401`` with a
``www-authenticate`` header and a JSON body where the server offers the denial-response
extension (uvicorn, hypercorn), and ``403`` where it does not (daphne).

Run it with ``uvicorn examples.frameworks.quart_app:app``.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, websocket

from asgi_ws_deny import Denial, Denied
from asgi_ws_deny.contrib.quart import add_error_handler, denial_response, one_body

ALLOWED_USERS = frozenset({"alice"})
UNKNOWN_USER = Denial.json(
    401, {"error": "unknown user"}, {"www-authenticate": 'Bearer realm="chat"'}
)

quart_app = Quart(__name__)
add_error_handler(quart_app)
# Quart sends a denial's body in chunks; this sends it as one start and one body, which every
# server handles.
quart_app.asgi_app = one_body(quart_app.asgi_app)  # type: ignore[method-assign]


@quart_app.websocket("/ws")
async def chat() -> None:
    if websocket.headers.get("x-user") not in ALLOWED_USERS:
        raise Denied(UNKNOWN_USER)
    await websocket.accept()
    await websocket.send(f"hello {websocket.headers['x-user']}")


@quart_app.websocket("/returned")
async def chat_returning() -> Any:
    if websocket.headers.get("x-user") not in ALLOWED_USERS:
        return denial_response(UNKNOWN_USER)
    await websocket.accept()
    await websocket.send(f"hello {websocket.headers['x-user']}")
    return None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The Quart app, for servers that leave out the optional ``scope["scheme"]``.

    Quart reads ``scope["scheme"]``, which the ASGI spec makes optional (default ``"ws"``) and
    daphne does not send: without this, every WebSocket fails with ``KeyError`` there.
    """
    if "scheme" not in scope:
        scope = {**scope, "scheme": "ws" if scope["type"] == "websocket" else "http"}
    await quart_app(scope, receive, send)

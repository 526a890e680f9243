"""Litestar: deny a WebSocket handshake with a real response, from the handler or before it.

- ``/ws``: the handler calls ``deny(socket, ...)`` before ``accept()``;
- ``/checked``: `WebSocketGuard` in the route's middleware refuses before the handler runs.

A user named ``alice`` (``x-user`` header) is greeted; anyone else gets ``401`` with a
``www-authenticate`` header and a JSON body where the server offers the denial-response
extension (uvicorn, hypercorn), and ``403`` where it does not (daphne).

Run it with ``uvicorn examples.frameworks.litestar_app:app``.
"""

from __future__ import annotations

from litestar import Litestar, WebSocket, websocket
from litestar.middleware import DefineMiddleware

from asgi_ws_deny import Denial, Handshake, WebSocketGuard
from asgi_ws_deny.contrib.litestar import deny

ALLOWED_USERS = frozenset({"alice"})
UNKNOWN_USER = Denial.json(
    401, {"error": "unknown user"}, {"www-authenticate": 'Bearer realm="chat"'}
)


async def greet(socket: WebSocket) -> None:
    await socket.accept()
    await socket.send_text(f"hello {socket.headers['x-user']}")
    await socket.close()


@websocket("/ws")
async def chat(socket: WebSocket) -> None:
    if socket.headers.get("x-user") not in ALLOWED_USERS:
        await deny(socket, UNKNOWN_USER)
        return
    await greet(socket)


def unknown_user(handshake: Handshake) -> Denial | None:
    """The guard's check: ``None`` admits, a `Denial` refuses."""
    if handshake.headers.get("x-user") in ALLOWED_USERS:
        return None
    return UNKNOWN_USER


@websocket("/checked", middleware=[DefineMiddleware(WebSocketGuard, check=unknown_user)])
async def checked_chat(socket: WebSocket) -> None:
    await greet(socket)


app = Litestar([chat, checked_chat])

"""Starlette: deny a WebSocket handshake with a real response, three ways.

- ``/ws`` calls ``deny(websocket, response)`` with an ordinary ``JSONResponse``;
- ``/raise`` raises Starlette's ``HTTPException`` before ``accept()``;
- ``/denied`` raises `Denied` before ``accept()``.

A user named ``alice`` (``x-user`` header) is greeted on each; anyone else gets ``401`` with a
``www-authenticate`` header and a body where the server offers the denial-response extension
(uvicorn, hypercorn), and ``403`` where it does not (daphne). ``/late`` accepts, then raises
``HTTPException(403)``: the connection closes with code 4403.

Run it with ``uvicorn examples.frameworks.starlette_app:app``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from asgi_ws_deny import Denial, Denied
from asgi_ws_deny.contrib.starlette import add_exception_handlers, deny

ALLOWED_USERS = frozenset({"alice"})
CHALLENGE = {"www-authenticate": 'Bearer realm="chat"'}


def allowed(websocket: WebSocket) -> bool:
    return websocket.headers.get("x-user") in ALLOWED_USERS


async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.headers['x-user']}")
    await websocket.close()


async def with_deny(websocket: WebSocket) -> None:
    if not allowed(websocket):
        await deny(websocket, JSONResponse({"error": "unknown user"}, 401, headers=CHALLENGE))
        return
    await greet(websocket)


async def with_http_exception(websocket: WebSocket) -> None:
    if not allowed(websocket):
        raise HTTPException(401, "unknown user", headers=CHALLENGE)
    await greet(websocket)


async def with_denied(websocket: WebSocket) -> None:
    if not allowed(websocket):
        raise Denied(Denial.json(401, {"error": "unknown user"}, CHALLENGE))
    await greet(websocket)


async def late(websocket: WebSocket) -> None:
    await websocket.accept()
    raise HTTPException(403, "too late to deny")


app = Starlette(
    routes=[
        WebSocketRoute("/ws", with_deny),
        WebSocketRoute("/raise", with_http_exception),
        WebSocketRoute("/denied", with_denied),
        WebSocketRoute("/late", late),
    ]
)
add_exception_handlers(app)

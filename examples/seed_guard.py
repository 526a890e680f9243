"""The seed scenario, way (a): refuse before the handshake, with a guard around the app.

A FastAPI application whose ``/ws`` endpoint greets the user. `WebSocketGuard` runs
``is_user_allowed`` before FastAPI sees the connection; a refused client gets ``404`` with the
JSON body ``{"message": "User not allowed"}`` on servers with the denial-response extension
(uvicorn, hypercorn), and ``403`` on the others (daphne), where no body can be sent. The
endpoint is never called for a refused client, so it can ``accept()`` unconditionally.

Run it with ``uvicorn examples.seed_guard:app`` and connect with the header ``x-user: alice``
(admitted) or without it (refused).
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket

from asgi_ws_deny import Denial, Handshake, WebSocketGuard

#: Users this example lets in, by the ``x-user`` header they send.
ALLOWED_USERS = frozenset({"alice"})

NOT_ALLOWED = Denial.json(404, {"message": "User not allowed"})


async def is_user_allowed(handshake: Handshake) -> bool:
    """Whether the user named by the ``x-user`` header may connect."""
    return handshake.headers.get("x-user") in ALLOWED_USERS


async def check(handshake: Handshake) -> Denial | None:
    """The guard's check: ``None`` lets the handshake through, a `Denial` refuses it."""
    if not await is_user_allowed(handshake):
        return NOT_ALLOWED
    return None


app = FastAPI()


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.headers['x-user']}")
    await websocket.close()


# add_middleware puts the guard outside FastAPI's routing and exception handling, so it sees
# every WebSocket handshake first.
app.add_middleware(WebSocketGuard, check=check)

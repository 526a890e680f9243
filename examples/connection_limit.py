"""Concurrent-connection caps: one live session per user, and at most 1,000 connections in all.

A Starlette chat endpoint behind `WebSocketGuard` with `ConnectionLimit`: a user (named here by
the ``x-user`` header; by the session in a real application) who already has a connection open
is refused with 429 and ``retry-after``, and once 1,000 connections are open every newcomer is
refused with 503. A connection's lease is given back when it ends, however it ends.

Run it with ``uvicorn examples.connection_limit:app``. With several workers or hosts, set
``CONNECTION_LIMIT_STORAGE=redis://127.0.0.1:6379/0`` so that they count together; a killed
worker's connections are then free again within the ttl (10 s here).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from asgi_ws_deny import Handshake, WebSocketGuard
from asgi_ws_deny.checks import ConnectionLimit


def session_user(handshake: Handshake) -> str | None:
    """Whose connections a handshake counts among; anonymous ones are not capped per user."""
    return handshake.headers.get("x-user")


one_session_per_user = ConnectionLimit(
    1,
    key=session_user,
    max_total=1000,
    storage=os.environ.get("CONNECTION_LIMIT_STORAGE", "memory://"),
    ttl=10,
)


async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.headers['x-user']}")
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass  # the guard gives the lease back now


app = Starlette(routes=[WebSocketRoute("/ws", chat)])
app.add_middleware(WebSocketGuard, check=one_session_per_user)

"""The seed scenario, way (b): refuse from inside the endpoint by raising `Denied`.

The endpoint runs ``is_user_allowed`` itself, before ``accept()``, and raises `Denied` with a
404 and a JSON body. FastAPI lets the exception through its own handlers; `WebSocketGuard`,
added without a check, turns it into the denial: ``404`` with ``{"message": "User not
allowed"}`` on uvicorn and hypercorn, ``403`` on daphne. Without the guard the same ``raise``
(or a bare ``return``) ends in a server 500 and a logged traceback.

Run it with ``uvicorn examples.seed_denied:app``.
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket

from asgi_ws_deny import Denial, Denied, WebSocketGuard

#: Users this example lets in, by the ``x-user`` header they send.
ALLOWED_USERS = frozenset({"alice"})


async def is_user_allowed(websocket: WebSocket) -> bool:
    """Whether the user named by the ``x-user`` header may connect."""
    return websocket.headers.get("x-user") in ALLOWED_USERS


app = FastAPI()


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    if not await is_user_allowed(websocket):
        # Before accept(): the guard answers with this response instead of a handshake.
        raise Denied(Denial.json(404, {"message": "User not allowed"}))
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.headers['x-user']}")
    await websocket.close()


app.add_middleware(WebSocketGuard)

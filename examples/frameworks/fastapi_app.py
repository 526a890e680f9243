"""FastAPI: deny a WebSocket handshake with a real response, from a dependency.

- ``/ws`` runs the guard check ``unknown_user`` as a route dependency (``check_handshake``): a
  refused client never reaches the endpoint;
- ``/raise`` uses an ordinary FastAPI dependency that raises ``HTTPException``; the client gets
  the same ``{"detail": ...}`` JSON an HTTP route would answer with.

A user named ``alice`` (``x-user`` header) is greeted; anyone else gets ``401`` with a
``www-authenticate`` header and a JSON body where the server offers the denial-response
extension (uvicorn, hypercorn), and ``403`` where it does not (daphne).

Run it with ``uvicorn examples.frameworks.fastapi_app:app``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, WebSocket

from asgi_ws_deny import Denial, Handshake
from asgi_ws_deny.contrib.starlette import add_exception_handlers, check_handshake

ALLOWED_USERS = frozenset({"alice"})
CHALLENGE = {"www-authenticate": 'Bearer realm="chat"'}


def unknown_user(handshake: Handshake) -> Denial | None:
    """A guard check: ``None`` admits, a `Denial` refuses."""
    if handshake.headers.get("x-user") in ALLOWED_USERS:
        return None
    return Denial.json(401, {"error": "unknown user"}, CHALLENGE)


def current_user(websocket: WebSocket) -> str:
    """An ordinary FastAPI dependency: raising ``HTTPException`` refuses the handshake."""
    user = websocket.headers.get("x-user", "")
    if user not in ALLOWED_USERS:
        raise HTTPException(401, "unknown user", headers=CHALLENGE)
    return user


app = FastAPI()
add_exception_handlers(app)


@app.websocket("/ws", dependencies=[Depends(check_handshake(unknown_user))])
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.headers['x-user']}")
    await websocket.close()


@app.websocket("/raise")
async def chat_as(websocket: WebSocket, user: Annotated[str, Depends(current_user)]) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {user}")
    await websocket.close()

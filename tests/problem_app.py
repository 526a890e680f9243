"""The problem the package solves, as users write it: FastAPI alone, no asgi_ws_deny.

A websocket route whose dependency raises ``HTTPException(401)`` with a challenge header, as an
HTTP route's would. ``tests/test_problem.py`` runs it on real servers for the README's table.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, WebSocket

app = FastAPI()


def current_user(websocket: WebSocket) -> str:
    user = websocket.headers.get("x-user", "")
    if user != "alice":
        raise HTTPException(
            401, "unknown user", headers={"www-authenticate": 'Bearer realm="chat"'}
        )
    return user


@app.websocket("/ws")
async def chat(websocket: WebSocket, user: Annotated[str, Depends(current_user)]) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {user}")
    await websocket.close()

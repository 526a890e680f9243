"""Limits after admission: a Starlette chat echo whose clients may not flood it.

`WebSocketGuard` counts what each admitted connection receives, before the endpoint sees it:
a message over 4 KiB closes the connection with 1009 ("message too big"), more than 20
messages or 64 KiB in one second with 1008. The endpoint then receives
``websocket.disconnect`` with that code (Starlette raises ``WebSocketDisconnect``), as if the
client had left, and the client gets the close frame.

Run it with ``uvicorn examples.message_limits:app`` and send from a WebSocket client.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from asgi_ws_deny import MessageLimits, WebSocketGuard

LIMITS = MessageLimits(max_size=4096, max_messages=20, max_bytes=64 * 1024, interval=1.0)


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect as disconnect:
        # 1009 or 1008 when the guard closed the connection; the client's own code otherwise.
        print(f"echo ended with {disconnect.code}", flush=True)


app = Starlette(routes=[WebSocketRoute("/ws", echo)])
app.add_middleware(WebSocketGuard, message_limits=LIMITS)

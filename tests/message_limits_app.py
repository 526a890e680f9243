"""An echo endpoint behind a guard with message limits, for the servers the limit tests start.

``/echo`` accepts and echoes every message until the client leaves. The guard allows a message
of at most 16 bytes and 5 messages per minute, so a client passes one or the other on purpose.
"""

from __future__ import annotations

from typing import Any

from asgi_ws_deny import MessageLimits, WebSocketGuard


async def echo(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            print(f"disconnect {message.get('code')}", flush=True)
            return
        await send({**message, "type": "websocket.send"})


guarded = WebSocketGuard(
    echo, message_limits=MessageLimits(max_size=16, max_messages=5, interval=60)
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await guarded(scope, receive, send)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

"""The application the guard's receive test runs on real servers.

``/deny?id=<n>`` denies (with the extension's 403, or the fallback close where the server lacks
it) through the guard, then loops on ``receive()`` until a ``websocket.disconnect``, as many
applications do, and prints ``ended <n> <code>`` to the server's log when it gets one.
``/bare?id=<n>`` does the same without the guard: the control.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from asgi_ws_deny import WebSocketGuard, deny


async def denies_then_receives(scope: Any, receive: Any, send: Any) -> None:
    ident = parse_qs(scope["query_string"].decode())["id"][0]
    await receive()
    await deny(scope, send, 403)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            print(f"ended {ident} {message.get('code')}", flush=True)
            return


guarded = WebSocketGuard(denies_then_receives)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket" and scope["path"] == "/deny":
        await guarded(scope, receive, send)
    elif scope["type"] == "websocket":
        await denies_then_receives(scope, receive, send)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

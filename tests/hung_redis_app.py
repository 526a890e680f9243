"""The application of the hung-Redis test, run under a real uvicorn.

WebSocket handshakes pass a `RateLimitCheck` on the Redis named by ``CHECKS_STORAGE`` (a
server that accepts connections and never answers); any HTTP request is answered 200 at once,
the unrelated request whose latency the test measures.
"""

from __future__ import annotations

import os
from typing import Any

from asgi_ws_deny import WebSocketGuard
from asgi_ws_deny.checks import RateLimitCheck


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


guarded = WebSocketGuard(
    endpoint,
    RateLimitCheck(
        "100/minute",
        storage=os.environ["CHECKS_STORAGE"],
        timeout=float(os.environ["CHECKS_TIMEOUT"]),
        cooldown=60,
    ),
    check_timeout=30,
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await guarded(scope, receive, send)

"""The application the rate-limit worker test runs under uvicorn ``--workers 2``.

A `RateLimitCheck` configured from the environment (``CHECKS_LIMIT``, ``CHECKS_STORAGE``,
``CHECKS_NAMESPACE``) guards an endpoint that accepts and closes. An outer layer stamps the
worker's pid on every answer, admitted (the accept's headers) or refused (the denial's
headers), so the client can tell which worker served each handshake.
"""

from __future__ import annotations

import os
from typing import Any

from asgi_ws_deny import WebSocketGuard
from asgi_ws_deny.checks import RateLimitCheck

PID_HEADER = b"x-worker-pid"


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


guarded = WebSocketGuard(
    endpoint,
    RateLimitCheck(
        os.environ["CHECKS_LIMIT"],
        storage=os.environ["CHECKS_STORAGE"],
        namespace=os.environ["CHECKS_NAMESPACE"],
    ),
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    stamp = (PID_HEADER, str(os.getpid()).encode("ascii"))

    async def stamped(message: Any) -> None:
        if message["type"] in ("websocket.accept", "websocket.http.response.start"):
            message = {**message, "headers": [*message.get("headers", ()), stamp]}
        await send(message)

    await guarded(scope, receive, stamped)

"""The application of the forwarded-header test: a `RateLimitCheck` of one handshake per hour,
keyed on the client address as the server reports it (`client_host`)."""

from __future__ import annotations

from typing import Any

from asgi_ws_deny import WebSocketGuard
from asgi_ws_deny.checks import RateLimitCheck


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


app = WebSocketGuard(endpoint, RateLimitCheck("1/hour"))

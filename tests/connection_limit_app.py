"""The application the connection-cap tests run under uvicorn ``--workers 2`` on one Redis.

``/two?user=<name>`` admits at most 2 connections per user, ``/one?user=<name>`` at most 1
(`ConnectionLimit` on the Redis named by ``CAPS_STORAGE``, namespace ``CAPS_NAMESPACE``, lease
ttl ``CAPS_TTL`` seconds). An admitted connection is accepted, greeted, and held until the
client closes it. Every answer carries the worker's pid, admitted or refused.
"""

from __future__ import annotations

import os
from typing import Any

from asgi_ws_deny import WebSocketGuard
from asgi_ws_deny.checks import ConnectionLimit
from asgi_ws_deny.handshake import Handshake

PID_HEADER = b"x-worker-pid"


def user(handshake: Handshake) -> str | None:
    return handshake.query.get("user")


async def held(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": "admitted"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def cap(limit: int, name: str) -> WebSocketGuard:
    check = ConnectionLimit(
        limit,
        key=user,
        storage=os.environ["CAPS_STORAGE"],
        ttl=float(os.environ["CAPS_TTL"]),
        namespace=f"{os.environ['CAPS_NAMESPACE']}-{name}",
    )
    return WebSocketGuard(held, check)


ROUTES = {"/two": cap(2, "two"), "/one": cap(1, "one")}


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

    await ROUTES[scope["path"]](scope, receive, stamped)

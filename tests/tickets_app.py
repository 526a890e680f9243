"""The application the ticket tests run, under uvicorn ``--workers 2`` on one Redis.

`TicketCheck` with `Tickets` on the store named by ``TICKETS_STORAGE`` (namespace
``TICKETS_NAMESPACE``) guards an endpoint that accepts the ``chat`` subprotocol, sends the
subject it was given through the scope, and closes. An outer layer stamps the worker's pid on
every answer, admitted (the accept's headers) or refused (the denial's).
"""

from __future__ import annotations

import os
from typing import Any

from asgi_ws_deny import WebSocketGuard
from asgi_ws_deny.tickets import SUBJECT_KEY, TicketCheck, Tickets

PID_HEADER = b"x-worker-pid"


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": "chat", "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": f"hello {scope[SUBJECT_KEY]}"})
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


tickets = Tickets(os.environ["TICKETS_STORAGE"], namespace=os.environ["TICKETS_NAMESPACE"])
guarded = WebSocketGuard(endpoint, TicketCheck(tickets))


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

"""`WebSocketGuard` under load (``bench.guard_app:app``): half the handshakes refused.

Each client names itself with ``?id=<n>`` and asks with ``&allow=1`` or ``&allow=0``. The
check admits ``allow=1`` and refuses the rest with a 403 whose JSON body names the id it
refused. The application behind the guard prints ``app <id>`` to the server's log when it is
called, accepts, sends ``admitted <id>`` (the id of the scope it was given) and waits for the
client to close, so a client can tell whether what answered it was about its own handshake.

The client closes first: a server-initiated close starts the server's close-handshake timer,
and daphne (autobahn) aborts connections whose client has not answered within it, which under
a burst of a thousand connections loses answers the clients had not read yet.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from asgi_ws_deny import Denial, WebSocketGuard
from asgi_ws_deny.guard import Handshake


def check(handshake: Handshake) -> Denial | None:
    if handshake.query.get("allow") == "1":
        return None
    return Denial.json(403, {"denied": handshake.query.get("id")})


async def admitted(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    client = parse_qs(scope["query_string"].decode())["id"][0]
    print(f"app {client}", flush=True)
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": f"admitted {client}"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


app = WebSocketGuard(admitted, check)

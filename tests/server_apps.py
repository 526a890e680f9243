"""Raw ASGI applications that real servers run in the integration tests (``server_apps:app``).

The path picks the denial; the outcome `deny` returned is printed to the server's log, where the
tests read it.
"""

from __future__ import annotations

from typing import Any

from asgi_ws_deny import Denial, deny

HEADERS = [("www-authenticate", 'Bearer realm="api"'), ("set-cookie", "a=1"), ("set-cookie", "b=2")]
BODY = b'{"error":"unauthorized"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    path = scope["path"]
    if path == "/deny":
        outcome = await deny(scope, send, 401, HEADERS, BODY)
    elif path == "/denial":
        await Denial.json(429, {"error": "slow down"}, [("retry-after", "30")])(
            scope, receive, send
        )
        outcome = "app"
    elif path == "/strict":
        try:
            outcome = await deny(scope, send, 401, fallback="raise")
        except RuntimeError:
            outcome = "unsupported"
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
    else:
        outcome = "unknown path"
        await send({"type": "websocket.close", "code": 1008, "reason": ""})
    print(f"outcome {path} {outcome}", flush=True)

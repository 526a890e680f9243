"""The application real servers run for ``tests/test_clients.py`` (``tests.client_apps:app``).

Over HTTP it serves an empty page, for a browser's script. ``/deny`` denies every handshake
with `DENIAL`; ``/browser-policy`` refuses it with the same denial through `WebSocketGuard` with
``browser_policy="always"``: accept, then close with 4401.
"""

from __future__ import annotations

from typing import Any

from asgi_ws_deny import Denial, Handshake, WebSocketGuard, deny

DENIAL = Denial.json(401, {"error": "token"}, [("www-authenticate", 'Bearer realm="chat"')])


async def denying(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        # An empty page, so that a browser's script runs in this origin (127.0.0.1).
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<!doctype html><title>clients</title>"})
        return
    await deny(scope, send, DENIAL)


def refuse(handshake: Handshake) -> Denial:
    return DENIAL


_browser_policy = WebSocketGuard(denying, check=refuse, browser_policy="always")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket" and scope["path"] == "/browser-policy":
        await _browser_policy(scope, receive, send)
    else:
        await denying(scope, receive, send)

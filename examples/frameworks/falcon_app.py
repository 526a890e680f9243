"""Falcon (ASGI): deny a WebSocket handshake with a real response by raising `Denied`.

- ``/ws``: the resource's ``on_websocket`` raises `Denied` before ``accept()``;
- ``/checked``: the guard's check refuses before Falcon sees the connection.

``guard(falcon_app, check)`` lets `Denied` out of Falcon and wraps the app in `WebSocketGuard`;
``app`` is what the server runs. A user named ``alice`` (``x-user`` header) is greeted; anyone
else gets ``401`` with a ``www-authenticate`` header and a JSON body where the server offers the
denial-response extension (uvicorn, hypercorn), and ``403`` where it does not (daphne).

Run it with ``uvicorn examples.frameworks.falcon_app:app``.
"""

from __future__ import annotations

import falcon.asgi

from asgi_ws_deny import Denial, Denied, Handshake
from asgi_ws_deny.contrib.falcon import guard

ALLOWED_USERS = frozenset({"alice"})
UNKNOWN_USER = Denial.json(
    401, {"error": "unknown user"}, {"www-authenticate": 'Bearer realm="chat"'}
)


class Chat:
    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        user = req.get_header("x-user")
        if user not in ALLOWED_USERS:
            raise Denied(UNKNOWN_USER)
        await ws.accept()
        await ws.send_text(f"hello {user}")


def unknown_user(handshake: Handshake) -> Denial | None:
    """The guard's check: refuses unknown users on ``/checked``, admits everything else."""
    if handshake.path == "/checked" and handshake.headers.get("x-user") not in ALLOWED_USERS:
        return UNKNOWN_USER
    return None


falcon_app = falcon.asgi.App()
falcon_app.add_route("/ws", Chat())
falcon_app.add_route("/checked", Chat())
app = guard(falcon_app, unknown_user)

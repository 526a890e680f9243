"""The application of the admission cases (``conformance/cases/admission.py``): what the guard
keeps after the handshake, through the public API of asgi_ws_deny only, as a user's code would.

Routes (``?t=<token>`` names the case's handshake in the events, as in ``conformance.apps``):

- ``/deny-then-receive``: under `WebSocketGuard`, denies with ``deny(scope, send, 403)``, then
  loops on ``receive()`` until a ``websocket.disconnect``, recording what it got and when;
- ``/issue``: accepts, sends a fresh one-time ticket for ``alice`` (`Tickets`, in memory: the
  variants run one worker) and closes;
- ``/ticket-chat``: `TicketCheck` on those tickets; admitted, accepts ``chat`` and sends
  ``hello <subject>``, then closes with 1000;
- ``/capped?user=<name>``: `ConnectionLimit` of 1 per user; admitted, accepts, sends
  ``admitted`` and holds the connection until the client leaves, recording the disconnect;
- ``/limited``: `MessageLimits(max_size=16)`; admitted, echoes every message, recording the
  disconnect the guard gives it; ``/limited-4009``: the same closing with 4009.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from asgi_ws_deny import MessageLimits, WebSocketGuard, deny
from asgi_ws_deny.checks import ConnectionLimit
from asgi_ws_deny.handshake import Handshake
from asgi_ws_deny.tickets import SUBJECT_KEY, TicketCheck, Tickets
from conformance.apps import Case

__all__ = ("app",)

Message = dict[str, Any]
App = Callable[[Mapping[str, Any], Any, Any], Awaitable[None]]

tickets = Tickets()


def _user(handshake: Handshake) -> str | None:
    return handshake.query.get("user")


async def deny_then_receive(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
    case = Case(scope, receive, send)
    await receive()
    outcome = await deny(scope, send, 403)
    case.record("denied", outcome=outcome)
    started = time.monotonic()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            case.record(
                "receive",
                message=message["type"],
                code=message.get("code"),
                elapsed=round(time.monotonic() - started, 3),
            )
            return


async def issue(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": tickets.issue("alice")})
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


async def chat(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": "chat", "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": f"hello {scope[SUBJECT_KEY]}"})
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


async def held(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
    case = Case(scope, receive, send)
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": "admitted"})
    while (message := await receive())["type"] != "websocket.disconnect":
        pass
    case.record("disconnect", code=message.get("code"))


async def echo(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
    case = Case(scope, receive, send)
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    while (message := await receive())["type"] == "websocket.receive":
        await send({**message, "type": "websocket.send"})
    case.record("disconnect", code=message.get("code"), reason=message.get("reason"))


async def close(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
    """The readiness and survival checks' path: a close before accept, which is a 403."""
    await receive()
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


ROUTES: dict[str, App] = {
    "/close": close,
    "/deny-then-receive": WebSocketGuard(deny_then_receive),
    "/issue": issue,
    "/ticket-chat": WebSocketGuard(chat, TicketCheck(tickets)),
    "/capped": WebSocketGuard(held, ConnectionLimit(1, key=_user)),
    "/limited": WebSocketGuard(echo, message_limits=MessageLimits(max_size=16)),
    "/limited-4009": WebSocketGuard(
        echo, message_limits=MessageLimits(max_size=16, size_code=4009)
    ),
}


async def app(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    route = ROUTES.get(scope.get("path", "")) if scope["type"] == "websocket" else None
    if route is None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await route(scope, receive, send)

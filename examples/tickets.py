"""One-time tickets for browsers: a Starlette app whose page gets a ticket, then connects.

``POST /ticket`` is the application's authenticated HTTP side (a session cookie in a real
application; here the header ``authorization: Bearer demo-token`` stands for user ``alice``).
It issues a ticket bound to the user and to the page's origin. The page then opens
``new WebSocket("/ws", ["chat", "ticket." + ticket])``; `TicketCheck` spends the ticket at the
handshake and the endpoint finds the user in ``websocket.scope[SUBJECT_KEY]``. A ticket works
once, for 30 seconds, from its own origin only; anything else is refused with 401.

Run it with ``uvicorn examples.tickets:app``. With several workers, give `Tickets` a Redis URI
(``Tickets("redis://127.0.0.1:6379/0")``) so that every worker redeems what any one issued.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgi_ws_deny import WebSocketGuard
from asgi_ws_deny.tickets import SUBJECT_KEY, TicketCheck, Tickets

#: The users of this example, by the bearer token their HTTP requests carry.
SESSIONS = {"demo-token": "alice"}

tickets = Tickets("memory://", ttl=30)


async def issue_ticket(request: Request) -> JSONResponse:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = SESSIONS.get(token) if scheme.lower() == "bearer" else None
    if user is None:
        return JSONResponse({"error": "not signed in"}, status_code=401)
    ticket = tickets.issue(user, origin=request.headers.get("origin"))
    return JSONResponse({"ticket": ticket}, headers={"cache-control": "no-store"})


async def chat(websocket: WebSocket) -> None:
    # The browser offered ["chat", "ticket.<ticket>"]: accept the real subprotocol.
    await websocket.accept(subprotocol="chat")
    await websocket.send_text(f"hello {websocket.scope[SUBJECT_KEY]}")
    await websocket.close()


app = Starlette(
    routes=[Route("/ticket", issue_ticket, methods=["POST"]), WebSocketRoute("/ws", chat)]
)
app.add_middleware(WebSocketGuard, check=TicketCheck(tickets))

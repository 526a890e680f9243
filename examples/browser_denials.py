"""What a browser's script sees of a refused WebSocket: an HTTP denial, and the browser policy.

Run it with ``uvicorn examples.browser_denials:app`` and open http://127.0.0.1:8000/: the page
opens each WebSocket below with ``new WebSocket(...)`` and prints the events its script gets.

- ``/ws/http-denial``: the guard refuses with ``404`` and a JSON body. The browser receives
  that response, but its script is told nothing of it: an ``error`` event, then ``close`` with
  code 1006 and no reason. (The developer console shows the status; the page cannot.)
- ``/ws/browser-visible``: the same check under ``browser_policy="origin"``. A browser always
  sends ``Origin``, so the guard accepts and closes at once with code 4404 and reason
  "Not Found", which the script does see. Offer a subprotocol and the accept names it, since a
  browser fails an accept that omits the subprotocol it asked for.
- ``/ws/accept-ignoring-subprotocol``: why that matters: an app that accepts without naming
  the offered subprotocol and then closes with 4403 reaches the script as 1006 as well.

Add ``?user=alice`` to be admitted: the endpoint greets and closes with 1000.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgi_ws_deny import Denial, Handshake, WebSocketGuard

PAGE = b"""<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>WebSocket denials as a browser sees them</title>
<h1>WebSocket denials as a browser sees them</h1>
<pre id="log"></pre>
<script>
// Open one WebSocket and resolve with every event its script observes, in order.
function probe(path, protocols) {
  return new Promise((resolve) => {
    const events = [];
    const url = "ws://" + location.host + path;
    const ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
    ws.onopen = () => events.push({type: "open", protocol: ws.protocol});
    ws.onerror = () => events.push({type: "error"});
    ws.onmessage = (event) => events.push({type: "message", data: event.data});
    ws.onclose = (event) => {
      events.push({type: "close", code: event.code, reason: event.reason,
                   wasClean: event.wasClean});
      resolve(events);
    };
  });
}

const demos = [
  ["/ws/http-denial"],
  ["/ws/browser-visible"],
  ["/ws/browser-visible", ["graphql-transport-ws"]],
  ["/ws/accept-ignoring-subprotocol", ["graphql-transport-ws"]],
  ["/ws/browser-visible?user=alice"],
];
// Every demo's events, also kept in window.results (and window.done) for scripts that drive
// this page, such as the project's browser test.
window.results = [];
window.done = false;
(async () => {
  const log = document.getElementById("log");
  for (const [path, protocols] of demos) {
    const events = await probe(path, protocols);
    window.results.push({path: path, protocols: protocols || [], events: events});
    log.textContent += path + " " + JSON.stringify(protocols || []) + "\\n  "
      + JSON.stringify(events) + "\\n";
  }
  window.done = true;
})();
</script>
</html>
"""

NOT_FOUND = Denial.json(404, {"message": "User not allowed"})


def check(handshake: Handshake) -> Denial | None:
    """Admit ``?user=alice``, refuse everyone else with 404."""
    return None if handshake.query.get("user") == "alice" else NOT_FOUND


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": next(iter(offered), None)})
    await send({"type": "websocket.send", "text": "hello alice"})
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


async def accept_ignoring_subprotocol(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None})
    await send({"type": "websocket.close", "code": 4403, "reason": "Forbidden"})


ROUTES: dict[str, Callable[..., Awaitable[None]]] = {
    "/ws/http-denial": WebSocketGuard(hello, check),
    "/ws/browser-visible": WebSocketGuard(hello, check, browser_policy="origin"),
    "/ws/accept-ignoring-subprotocol": accept_ignoring_subprotocol,
}


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        route = ROUTES.get(scope["path"])
        if route is None:
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
        else:
            await route(scope, receive, send)
    elif scope["path"] == "/":
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": PAGE})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

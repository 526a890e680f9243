"""An application that denies at a moment the test chooses (``bench.fault_app:app``).

The fault tests reset a client's connection at three points of a denial. To put the reset at a
known point, the application stops there and waits: it connects to a control socket the test
listens on (``?control=<port>``), reports where it is, and waits until the test, having reset
the client, writes ``go``. It then reports the outcome `deny` returned, or the exception that
escaped it. Paths:

``/before``   stops before `deny` is called: nothing has been sent;
``/between``  stops after the server has taken ``websocket.http.response.start`` and before the
              body is sent (where the server lacks the extension there is no start, and this
              behaves as ``/before``);
``/during``   stops nowhere: denies with a body of ``?size=`` bytes (8 MiB by default) that the
              client stops reading, and resets while the server is still writing it. A
              `Denial` refuses a body over ``MAX_BODY_BYTES`` (64 KiB), so this path writes the
              same two messages `deny` would by hand, and reports its outcome the same way;
``/deny``     an ordinary denial, to show the server still serves after a fault.

Waiting uses anyio, which runs on whichever event loop the server has (asyncio or trio).
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import parse_qs

import anyio

from asgi_ws_deny import Outcome, deny, supports_denial_response

HEADERS = (("www-authenticate", 'Bearer realm="api"'),)
BODY = b'{"error":"unauthorized"}'
DEFAULT_SIZE = 8 * 1024 * 1024


class _Control:
    """The line-based control connection to the test."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)

    def say(self, line: str) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(line.encode() + b"\n")
        self.sock.setblocking(False)

    async def wait_go(self) -> None:
        data = b""
        while b"go\n" not in data:
            await anyio.wait_readable(self.sock)
            chunk = self.sock.recv(64)
            if not chunk:
                raise ConnectionError("the test closed the control connection")
            data += chunk

    def close(self) -> None:
        self.sock.close()


async def deny_large(scope: dict[str, Any], send: Any, size: int) -> Outcome:
    """What `deny` sends and returns, for a body larger than a `Denial` may hold."""
    if not supports_denial_response(scope):
        return await deny(scope, send, 401, HEADERS, BODY)  # the close: no body travels
    headers = [(name.encode(), value.encode()) for name, value in HEADERS]
    start = {
        "type": "websocket.http.response.start",
        "status": 401,
        "headers": [*headers, (b"content-length", str(size).encode())],
    }
    try:
        await send(start)
        await send({"type": "websocket.http.response.body", "body": b"x" * size})
    except OSError:
        return "disconnected"
    return "response"


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
    query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    if path == "/deny" or "control" not in query:
        await deny(scope, send, 401, HEADERS, BODY)
        return
    control = _Control(int(query["control"]))
    try:
        control.say(f"entered {path}")
        deny_send = send
        if path == "/before":
            await control.wait_go()
        elif path == "/between":

            async def gated_send(message: dict[str, Any]) -> None:
                await send(message)
                if message["type"] == "websocket.http.response.start":
                    control.say("started")
                    await control.wait_go()

            deny_send = gated_send
        try:
            if path == "/during":
                outcome = await deny_large(scope, send, int(query.get("size", DEFAULT_SIZE)))
            else:
                outcome = await deny(scope, deny_send, 401, HEADERS, BODY)
        except BaseException as exc:
            control.say(f"raised {type(exc).__name__}: {exc}")
            raise
        control.say(f"outcome {outcome}")
    finally:
        control.close()

"""asgi_ws_deny.contrib.falcon in memory: Falcon's ASGI conductor and TestClient, the harness.

Falcon's ASGI app runs on asyncio only (under trio it fails with "no running event loop").
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import falcon.testing
import pytest

from asgi_ws_deny import Denial, Denied, WebSocketGuard
from asgi_ws_deny.contrib.falcon import guard
from asgi_ws_deny.testing import handshake
from examples.frameworks import falcon_app

UNKNOWN_USER_JSON = b'{"error":"unknown user"}'
PATHS = ["/ws", "/checked"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_conductor_sees_a_403() -> None:
    # Falcon's simulated client offers no denial-response extension: the guard closes before
    # accept, which the simulator reports as close code 3403 (its "HTTP 403"). Only /ws: the
    # simulator refuses any message sent before the app has received websocket.connect, which
    # servers accept and the guard's check (on /checked) does by design.
    async with falcon.testing.ASGIConductor(falcon_app.app) as conductor:
        with pytest.raises(falcon.WebSocketDisconnected) as closed:
            async with conductor.simulate_ws("/ws"):
                pass  # pragma: no cover - the denial is raised on connect
        assert closed.value.code == 3403
        async with conductor.simulate_ws("/ws", headers={"x-user": "alice"}) as ws:
            assert await ws.receive_text() == "hello alice"


@pytest.mark.anyio
@pytest.mark.parametrize("target", PATHS)
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_example_in_the_harness(target: str, extension: bool) -> None:
    result = await handshake(falcon_app.app, target, extension=extension)
    if extension:
        assert (result.status, result.body) == (401, UNKNOWN_USER_JSON)
        assert result.header("www-authenticate") == b'Bearer realm="chat"'
    else:
        assert (result.status, result.body) == (403, b"")
    admitted = await handshake(falcon_app.app, target, headers={"x-user": "alice"})
    assert (admitted.accepted, admitted.data) == (True, ("hello alice",))


class Scripted:
    def __init__(self, where: str) -> None:
        self.where = where

    async def process_request_ws(self, req: falcon.asgi.Request, ws: Any) -> None:
        if self.where == "middleware":
            raise Denied(Denial.text(403, "middleware says no"))

    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        if self.where == "after-accept":
            await ws.accept()
            raise Denied(401, reason="log in again")
        if self.where == "http-error":
            raise falcon.HTTPUnauthorized()

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raise Denied(Denial(402, [("set-cookie", "a=1"), ("set-cookie", "b=2")], b"pay"))


def scripted(where: str) -> WebSocketGuard:
    resource = Scripted(where)
    app = falcon.asgi.App(middleware=[resource])
    app.add_route("/", resource)
    return guard(app)


@pytest.mark.anyio
async def test_denied_in_websocket_middleware() -> None:
    result = await handshake(scripted("middleware"), "/")
    assert (result.status, result.body) == (403, b"middleware says no")


@pytest.mark.anyio
async def test_denied_after_accept_closes_with_4000_plus_status() -> None:
    result = await handshake(scripted("after-accept"), "/")
    assert (result.accepted, result.close_code, result.close_reason) == (
        True,
        4401,
        "log in again",
    )


@pytest.mark.anyio
async def test_falcons_http_error_keeps_falcons_close() -> None:
    result = await handshake(scripted("http-error"), "/")
    assert (result.status, result.messages) == (
        403,
        ({"type": "websocket.close", "code": 3401, "reason": "Unauthorized"},),
    )


def test_denied_in_an_http_responder_is_the_same_response() -> None:
    response = falcon.testing.TestClient(scripted("none")).simulate_get("/")
    assert (response.status_code, response.content) == (402, b"pay")
    assert response.headers.get("content-length") == "3"
    assert {name: cookie.value for name, cookie in response.cookies.items()} == {"a": "1", "b": "2"}


def test_guard_passes_the_guard_options() -> None:
    app = falcon.asgi.App()
    guarded = guard(app, fallback="raise", browser_policy="origin")
    assert (guarded.app, guarded.fallback, guarded.browser_policy) == (app, "raise", "origin")

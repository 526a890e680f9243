"""asgi_ws_deny.contrib.litestar in memory: Litestar's TestClient and the handshake harness.

Litestar runs on anyio, so every test runs under asyncio and trio.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, WebSocket, websocket
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect
from litestar.handlers import BaseRouteHandler
from litestar.testing import TestClient

from asgi_ws_deny import Denial, DenialUnsupportedError, HandshakeStateError, InvalidDenialError
from asgi_ws_deny.contrib.litestar import deny
from asgi_ws_deny.testing import handshake
from examples.frameworks import litestar_app

BACKENDS = ["asyncio", "trio"]
UNKNOWN_USER_JSON = b'{"error":"unknown user"}'
PATHS = ["/ws", "/checked"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target", PATHS)
def test_the_test_client_sees_a_close(backend: str, target: str) -> None:
    # Litestar's test client offers no denial-response extension: the denial falls back to
    # websocket.close before accept, which it raises as a disconnect with that close's code.
    with TestClient(litestar_app.app, backend=backend) as client:
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(target):
            pass  # pragma: no cover - the denial is raised on connect
        assert closed.value.code == 1008
        with client.websocket_connect(target, headers={"x-user": "alice"}) as ws:
            assert ws.receive_text() == "hello alice"


@pytest.mark.anyio
@pytest.mark.parametrize("target", PATHS)
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_example_in_the_harness(target: str, extension: bool) -> None:
    result = await handshake(litestar_app.app, target, extension=extension)
    if extension:
        assert (result.status, result.body) == (401, UNKNOWN_USER_JSON)
        assert result.header("www-authenticate") == b'Bearer realm="chat"'
    else:
        assert (result.status, result.body) == (403, b"")
    admitted = await handshake(litestar_app.app, target, headers={"x-user": "alice"})
    assert (admitted.accepted, admitted.data) == (True, ("hello alice",))


def app_running(script: Any) -> tuple[Litestar, list[Any]]:
    log: list[Any] = []

    @websocket("/")
    async def handler(socket: WebSocket) -> None:
        await script(socket, log)

    return Litestar([handler]), log


@pytest.mark.anyio
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_deny_returns_the_outcome_and_the_socket_refuses_more(extension: bool) -> None:
    async def script(socket: WebSocket, log: list[Any]) -> None:
        log.append(await deny(socket, 429, {"retry-after": "5"}, b"slow"))
        log.append(socket.connection_state)
        for misuse in (socket.receive_text, lambda: socket.send_text("late")):
            with pytest.raises(WebSocketDisconnect):
                await misuse()

    app, log = app_running(script)
    result = await handshake(app, "/", extension=extension)
    if extension:
        assert (result.status, result.body, result.header("retry-after")) == (429, b"slow", b"5")
    else:
        assert (result.status, result.body) == (403, b"")
    assert log == ["response" if extension else "close", "disconnect"]


@pytest.mark.anyio
async def test_deny_after_data_was_received_raises() -> None:
    async def script(socket: WebSocket, log: list[Any]) -> None:
        await socket.accept()
        log.append(await socket.receive_text())
        with pytest.raises(HandshakeStateError) as error:
            await deny(socket, 401)
        log.append(error.value.state.name)
        await socket.close()

    app, log = app_running(script)
    result = await handshake(app, "/", messages=["hi"])
    assert (result.accepted, log) == (True, ["hi", "OPEN"])


@pytest.mark.anyio
async def test_invalid_input_and_fallback_raise_send_nothing() -> None:
    async def script(socket: WebSocket, log: list[Any]) -> None:
        with pytest.raises(InvalidDenialError):
            await deny(socket, 101)
        with pytest.raises(InvalidDenialError):
            await deny(socket, Denial(403), [("a", "b")])
        with pytest.raises(DenialUnsupportedError):
            await deny(socket, 401, fallback="raise")
        log.append(socket.connection_state)
        log.append(await deny(socket, Denial(401)))

    app, log = app_running(script)
    result = await handshake(app, "/", extension=False)
    assert (result.status, log) == (403, ["init", "close"])
    assert [message["type"] for message in result.messages] == ["websocket.close"]


def not_authorized(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    raise NotAuthorizedException("who are you?")


@pytest.mark.anyio
async def test_without_the_contrib_a_litestar_guard_refuses_with_403_only() -> None:
    """What Litestar does alone: every exception before accept is a close, so a 403."""

    @websocket("/", guards=[not_authorized])
    async def handler(socket: WebSocket) -> None:
        await socket.accept()  # pragma: no cover - the guard refuses first

    result = await handshake(Litestar([handler]), "/")
    assert (result.status, result.body) == (403, b"")
    assert result.messages == ({"type": "websocket.close", "code": 4500, "reason": "who are you?"},)

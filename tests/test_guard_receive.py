"""The guard's ``receive``: the server's own while the connection lives, a disconnect at once
after a denial (issue: no application stays running on a denied connection).

In process first (what the application receives, and that the server is not asked), then on
real servers whose ``receive()`` blocks after a denial until the client closes: the guarded
application ends while the client still holds the connection open.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from asgi_ws_deny import Denial, WebSocketGuard, deny
from tests.helpers import Recorder, websocket_scope

DISCONNECT_1006 = {"type": "websocket.disconnect", "code": 1006, "reason": ""}
CONNECT = {"type": "websocket.connect"}


class ServerReceive:
    """A server's ``receive``: hands out ``messages`` in order, then fails the test if asked
    again (the guard must not wait on the server after a denial)."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.messages = list(messages)
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if not self.messages:
            raise AssertionError("the server's receive() was called after the denial")
        return self.messages.pop(0)


Deny = Callable[[Any, Any], Awaitable[None]]


async def deny_response(scope: Any, send: Any) -> None:
    await deny(scope, send, 403)


async def deny_close(scope: Any, send: Any) -> None:
    await send({"type": "websocket.close", "code": 1008, "reason": ""})


async def deny_in_two_bodies(scope: Any, send: Any) -> None:
    await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"b", "more_body": False})


DENIALS = [
    pytest.param(deny_response, True, id="response"),
    pytest.param(deny_response, False, id="fallback-close"),
    pytest.param(deny_close, True, id="close-before-accept"),
    pytest.param(deny_in_two_bodies, True, id="response-in-two-bodies"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("denies", "extension"), DENIALS)
async def test_after_its_denial_the_app_receives_a_disconnect_at_once(
    denies: Deny, extension: bool
) -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await receive())
        await denies(scope, send)
        for _ in range(3):  # every later call, not only the first
            message = await receive()
            received.append(message)
            message["code"] = 4000  # the application's copy: the next call is unaffected

    server = ServerReceive(CONNECT)
    await WebSocketGuard(app)(websocket_scope(extension=extension), server, Recorder())
    assert received == [CONNECT, *[{**DISCONNECT_1006, "code": 4000}] * 3]
    assert server.calls == 1


@pytest.mark.anyio
async def test_after_a_denial_in_a_background_task_the_app_is_not_left_waiting() -> None:
    """A reader task the application starts after its denial is not left waiting either."""
    import anyio

    got: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await deny(scope, send, Denial(404))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: _collect(receive, got))

    await WebSocketGuard(app)(websocket_scope(), ServerReceive(CONNECT), Recorder())
    assert got == [DISCONNECT_1006]


async def _collect(receive: Any, into: list[dict[str, Any]]) -> None:
    into.append(await receive())


@pytest.mark.anyio
async def test_while_the_connection_lives_receive_is_the_servers_own_call() -> None:
    """No coroutine of the guard's sits between the application and the server."""
    handed: list[object] = []
    seen: list[object] = []

    async def message() -> dict[str, Any]:
        return {"type": "websocket.receive", "bytes": None, "text": "hi"}

    def receive() -> Any:
        awaitable = message()
        handed.append(awaitable)
        return awaitable

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for state_move in (
            None,
            {"type": "websocket.accept", "subprotocol": None, "headers": []},
            {"type": "websocket.close", "code": 1000, "reason": ""},
        ):
            if state_move is not None:
                await send(state_move)
            awaitable = receive()
            seen.append(awaitable)
            await awaitable

    await WebSocketGuard(app)(websocket_scope(), receive, Recorder())
    # CONNECTING, OPEN and CLOSED by the application: the server's own awaitable each time.
    assert len(seen) == 3
    assert seen == handed


@pytest.mark.anyio
async def test_while_a_denial_response_is_unfinished_receive_is_the_servers() -> None:
    server = ServerReceive(CONNECT, {"type": "websocket.disconnect", "code": 1005})
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        received.append(await receive())

    await WebSocketGuard(app)(websocket_scope(), server, Recorder())
    assert received == [{"type": "websocket.disconnect", "code": 1005}]
    assert server.calls == 2


# --- On real servers ------------------------------------------------------------------------

#: Servers whose receive() after a denial waits for the client to close (the support matrix,
#: case 4.1): an application that loops on receive() stays running there without the guard.
BLOCKING = ["hypercorn-asyncio", "hypercorn-trio"]
TESTS = Path(__file__).parent


def wait_for(server: Any, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        if time.monotonic() > deadline or not server.alive():
            return False
        time.sleep(0.01)
    return True


@pytest.mark.servers
@pytest.mark.parametrize("variant", BLOCKING)
def test_on_a_server_the_denied_app_ends_while_the_client_stays(variant: str) -> None:
    from conformance.client import WireConnection
    from conformance.servers import run_server

    with run_server(variant, "guard_receive_app:app", app_dir=TESTS) as server:
        # The control first: without the guard the app is still waiting once the client has
        # read the denial; it ends only when the client closes.
        with WireConnection(server.host, server.port, timeout=5.0) as bare:
            assert bare.handshake("/bare?id=1").status == 403
            guarded = WireConnection(server.host, server.port, timeout=5.0)
            with guarded:
                assert guarded.handshake("/deny?id=2").status == 403
                # The guarded app ends with both clients still connected...
                assert wait_for(server, "ended 2 1006", 5.0), server.log()
            # ...and before the unguarded one, which started first and still waits.
            assert "ended 1" not in server.log()
        assert wait_for(server, "ended 1", 5.0), server.log()

"""asgi_ws_deny.contrib.quart in memory: Quart's test client, and the raw ASGI messages.

Quart runs on asyncio only. Its websocket handling calls ``receive()`` in a task of its own while
the view runs, and so during and after a denial; the strict harness of asgi_ws_deny.testing
refuses that, so the raw-message tests here drive the app with a ``receive`` that, after
``websocket.connect``, waits like a server whose ``receive()`` blocks after a denial.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from quart import Quart, websocket
from quart.testing import WebsocketResponseError
from quart.testing.connections import WebsocketDisconnectError

from asgi_ws_deny import Denial, Denied, InvalidDenialError
from asgi_ws_deny.contrib.quart import add_error_handler, denial_response, one_body
from asgi_ws_deny.testing import handshake
from examples.frameworks import quart_app
from tests.helpers import Recorder, websocket_scope

UNKNOWN_USER_JSON = b'{"error":"unknown user"}'
PATHS = ["/ws", "/returned"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("target", PATHS)
async def test_the_test_client_sees_the_denial(target: str) -> None:
    client = quart_app.quart_app.test_client()
    with pytest.raises(WebsocketResponseError) as denied:
        async with client.websocket(target) as ws:
            await ws.receive()
    response = denied.value.response
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="chat"'
    assert response.headers["content-type"] == "application/json"
    assert await response.get_data() == UNKNOWN_USER_JSON


@pytest.mark.anyio
@pytest.mark.parametrize("target", PATHS)
async def test_the_test_client_admits_alice(target: str) -> None:
    client = quart_app.quart_app.test_client()
    async with client.websocket(target, headers={"x-user": "alice"}) as ws:
        assert await ws.receive() == "hello alice"


async def drive(app: Any, *, extension: bool = True) -> list[Any]:
    """Run one handshake of ``app``; the messages it sent."""
    recorder = Recorder()
    connects = [{"type": "websocket.connect"}]
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if connects:
            return connects.pop()
        await never.wait()  # a server that blocks in receive() after a denial
        raise AssertionError("unreachable")  # pragma: no cover

    scope = websocket_scope(extension=extension, path="/ws", raw_path=b"/ws")
    await app(scope, receive, recorder)
    return recorder.messages


START = {
    "type": "websocket.http.response.start",
    "status": 401,
    "headers": [
        (b"www-authenticate", b'Bearer realm="chat"'),
        (b"content-type", b"application/json"),
        (b"content-length", b"24"),
    ],
}


@pytest.mark.anyio
async def test_quart_alone_sends_the_body_in_chunks() -> None:
    app = Quart(__name__)

    @app.websocket("/ws")
    async def view() -> Any:
        return denial_response(quart_app.UNKNOWN_USER)

    assert await drive(app) == [
        START,
        {"type": "websocket.http.response.body", "body": UNKNOWN_USER_JSON, "more_body": True},
        {"type": "websocket.http.response.body", "body": b"", "more_body": False},
    ]


@pytest.mark.anyio
async def test_one_body_sends_one_start_and_one_body() -> None:
    assert await drive(quart_app.app) == [
        START,
        {"type": "websocket.http.response.body", "body": UNKNOWN_USER_JSON, "more_body": False},
    ]


@pytest.mark.anyio
async def test_one_body_checks_the_content_length() -> None:
    app = Quart(__name__)
    app.asgi_app = one_body(app.asgi_app)  # type: ignore[method-assign]

    @app.websocket("/ws")
    async def view() -> Any:
        return b"four", 403, {"content-length": "5"}

    with pytest.raises(InvalidDenialError, match="content-length"):
        await drive(app)


@pytest.mark.anyio
async def test_one_body_passes_everything_else_through() -> None:
    admitted: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        admitted.append(scope["type"])
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
            await send({"type": "websocket.close", "code": 1000, "reason": ""})

    recorder = Recorder()
    await one_body(app)({"type": "lifespan"}, _never, recorder)
    result = await handshake(one_body(app), "/")
    assert (admitted, recorder.messages, result.accepted) == (["lifespan", "websocket"], [], True)


async def _never() -> dict[str, Any]:
    raise AssertionError("not called")  # pragma: no cover


class BlockingServer:
    """A server whose ``receive()`` gives ``websocket.connect``, then blocks until ``release``,
    as some servers do after a denial; it records whether a blocked call was cancelled."""

    def __init__(self, *, extension: bool = True) -> None:
        self.scope = websocket_scope(extension=extension, path="/ws", raw_path=b"/ws")
        self.send = Recorder()
        self.connected = False
        self.blocked = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = 0

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        self.blocked.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return {"type": "websocket.receive", "bytes": None, "text": "hi"}


def reading_like_quart_0_23(
    server: BlockingServer, heard: list[Any], *answer: dict[str, Any]
) -> Any:
    """An app that reads ``receive()`` in a task of its own until ``websocket.disconnect``, as
    Quart 0.23 does, and answers with ``answer`` while that task waits; ``heard`` gets what
    the reader received."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def reader() -> None:
            while True:
                event = await receive()
                heard.append(event)
                if event["type"] == "websocket.disconnect":
                    return

        task = asyncio.ensure_future(reader())
        await server.blocked.wait()  # the reader waits in the server's receive()
        for message in answer:
            await send(message)
        await task

    return app


DENIAL_IN_CHUNKS = (
    {"type": "websocket.http.response.start", "status": 403, "headers": []},
    {"type": "websocket.http.response.body", "body": b"no", "more_body": True},
    {"type": "websocket.http.response.body", "body": b"", "more_body": False},
)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("extension", "answer"),
    [
        pytest.param(True, DENIAL_IN_CHUNKS, id="response"),
        pytest.param(False, ({"type": "websocket.close", "code": 1000},), id="close-before-accept"),
    ],
)
async def test_after_a_denial_the_app_hears_a_disconnect(
    extension: bool, answer: tuple[dict[str, Any], ...]
) -> None:
    server = BlockingServer(extension=extension)
    heard: list[Any] = []
    app = reading_like_quart_0_23(server, heard, *answer)
    with anyio.fail_after(5):  # a guard against a hang, not a wait: the app returns at once
        await one_body(app)(server.scope, server.receive, server.send)
    assert heard == [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1006, "reason": ""},
    ]
    assert server.cancelled == 1
    assert server.send.messages[-1]["type"] in ("websocket.http.response.body", "websocket.close")


@pytest.mark.anyio
async def test_after_an_accept_a_waiting_receive_gets_the_message() -> None:
    server = BlockingServer()
    accept = {"type": "websocket.accept", "subprotocol": None, "headers": []}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert await receive() == {"type": "websocket.connect"}
        waiting = asyncio.ensure_future(receive())
        await server.blocked.wait()  # it waits in the server's receive() before the accept
        await send(accept)
        server.release.set()
        assert await waiting == {"type": "websocket.receive", "bytes": None, "text": "hi"}
        await send({"type": "websocket.close", "code": 1000, "reason": ""})

    with anyio.fail_after(5):
        await one_body(app)(server.scope, server.receive, server.send)
    assert server.cancelled == 0
    assert [m["type"] for m in server.send.messages] == ["websocket.accept", "websocket.close"]


@pytest.mark.anyio
async def test_quart_closes_where_the_extension_is_missing() -> None:
    assert await drive(quart_app.app, extension=False) == [
        {"type": "websocket.close", "code": 1000}
    ]


def app_raising(where: str) -> Quart:
    app = Quart(__name__)
    add_error_handler(app)
    no = Denied(Denial(403, [("set-cookie", "a=1"), ("set-cookie", "b=2")], b"no"))

    @app.before_websocket
    async def before() -> None:
        if where == "before":
            raise no

    @app.websocket("/ws")
    async def view() -> None:
        if where == "after-accept":
            await websocket.accept()
        raise no

    @app.get("/http")
    async def http_view() -> None:
        raise no

    return app


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["before", "view"])
async def test_denied_raised_before_accept(where: str) -> None:
    client = app_raising(where).test_client()
    with pytest.raises(WebsocketResponseError) as denied:
        async with client.websocket("/ws") as ws:
            await ws.receive()
    response = denied.value.response
    assert (response.status_code, await response.get_data()) == (403, b"no")
    assert response.headers.getlist("set-cookie") == ["a=1", "b=2"]
    # Exactly the denial's headers on the wire (Quart's test client adds a content-type to the
    # response it rebuilds; the server never sees one).
    start = (await drive(app_raising(where)))[0]
    assert start["headers"] == [
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"content-length", b"2"),
    ]


@pytest.mark.anyio
async def test_denied_after_accept_is_quarts_close_1000() -> None:
    client = app_raising("after-accept").test_client()
    with pytest.raises(WebsocketDisconnectError) as closed:
        async with client.websocket("/ws") as ws:
            await ws.receive()
    assert closed.value.args == (1000,)


@pytest.mark.anyio
async def test_denied_in_an_http_view_is_the_same_response() -> None:
    response = await app_raising("view").test_client().get("/http")
    assert (response.status_code, await response.get_data()) == (403, b"no")
    assert response.headers.getlist("set-cookie") == ["a=1", "b=2"]


@pytest.mark.anyio
async def test_denial_response_keeps_header_bytes_or_refuses() -> None:
    """Quart sends header values as UTF-8: a UTF-8 value goes out as given, another is refused
    rather than changed."""
    denial = Denial(401, [("x-note", "café".encode())], b"no")
    app = Quart(__name__)

    @app.websocket("/ws")
    async def view() -> Any:
        return denial_response(denial)

    start = (await drive(one_body(app)))[0]
    assert start["headers"] == [(b"x-note", b"caf\xc3\xa9"), (b"content-length", b"2")]
    with pytest.raises(InvalidDenialError, match="not UTF-8"):
        denial_response(Denial(401, [("x-note", b"caf\xe9")]))


def test_denial_response_takes_only_a_denial() -> None:
    with pytest.raises(InvalidDenialError):
        denial_response(403)  # type: ignore[arg-type]
    response = denial_response(Denial(204))
    assert (response.status_code, list(response.headers.items())) == (204, [])

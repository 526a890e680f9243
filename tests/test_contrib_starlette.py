"""asgi_ws_deny.contrib.starlette in memory: Starlette's TestClient and the handshake harness.

Every async test runs under asyncio and trio (Starlette runs on anyio); the TestClient tests run
on both of its backends.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi import HTTPException as FastAPIHTTPException
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.endpoints import WebSocketEndpoint
from starlette.exceptions import HTTPException, WebSocketException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket, WebSocketState

from asgi_ws_deny import (
    Denial,
    DenialUnsupportedError,
    Denied,
    Handshake,
    HandshakeStateError,
    InvalidDenialError,
)
from asgi_ws_deny.contrib import starlette as contrib
from asgi_ws_deny.testing import HandshakeResult, ProtocolViolation, handshake
from examples.frameworks import fastapi_app, starlette_app
from tests.helpers import Recorder, websocket_scope

BACKENDS = ["asyncio", "trio"]
CHALLENGE = (b"www-authenticate", b'Bearer realm="chat"')
UNKNOWN_USER_JSON = b'{"error":"unknown user"}'

EndpointFunction = Callable[[WebSocket], Awaitable[None]]


def app_with(endpoint: EndpointFunction, *, handlers: bool = True) -> Starlette:
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    if handlers:
        contrib.add_exception_handlers(app)
    return app


async def hello(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


# --- deny() with every kind of denial ----------------------------------------------------------


async def numbers() -> AsyncIterator[bytes]:
    yield b"1,"
    yield b"2"


def streaming() -> Response:
    return StreamingResponse(numbers(), 429, {"retry-after": "5"}, media_type="text/csv")


def cookies() -> Response:
    response = Response(b"no", 403)
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


# (what deny() is given, the status, the headers and the body the client sees)
KINDS: dict[str, tuple[Callable[[], Any], int, list[tuple[bytes, bytes]], bytes]] = {
    "int": (lambda: 401, 401, [(b"content-length", b"0")], b""),
    "denial": (
        lambda: Denial.json(401, {"error": "unknown user"}, dict([CHALLENGE])),
        401,
        [CHALLENGE, (b"content-type", b"application/json"), (b"content-length", b"24")],
        UNKNOWN_USER_JSON,
    ),
    "json-response": (
        lambda: JSONResponse(
            {"error": "unknown user"}, 401, {"www-authenticate": 'Bearer realm="chat"'}
        ),
        401,
        [CHALLENGE, (b"content-length", b"24"), (b"content-type", b"application/json")],
        UNKNOWN_USER_JSON,
    ),
    "plain-text": (
        lambda: PlainTextResponse("go away", 403),
        403,
        [(b"content-length", b"7"), (b"content-type", b"text/plain; charset=utf-8")],
        b"go away",
    ),
    "no-content": (lambda: Response(status_code=204), 204, [], b""),
    "redirect": (
        lambda: RedirectResponse("/login", 307),
        307,
        [(b"content-length", b"0"), (b"location", b"/login")],
        b"",
    ),
    "streaming": (
        streaming,
        429,
        [
            (b"retry-after", b"5"),
            (b"content-type", b"text/csv; charset=utf-8"),
            (b"content-length", b"3"),
        ],
        b"1,2",
    ),
    "repeated-set-cookie": (
        cookies,
        403,
        [
            (b"content-length", b"2"),
            (b"set-cookie", b"a=1; Path=/; SameSite=lax"),
            (b"set-cookie", b"b=2; Path=/; SameSite=lax"),
        ],
        b"no",
    ),
}


def denying_app(make: Callable[[], Any], outcomes: list[str]) -> Starlette:
    async def endpoint(websocket: WebSocket) -> None:
        outcomes.append(await contrib.deny(websocket, make()))

    return app_with(endpoint)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
async def test_deny_sends_each_kind_of_denial(kind: tuple[Any, ...]) -> None:
    make, status, headers, body = kind
    outcomes: list[str] = []
    result = await handshake(denying_app(make, outcomes), "/ws")
    assert (result.status, list(result.headers), result.body) == (status, headers, body)
    assert outcomes == ["response"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
async def test_deny_falls_back_to_403_without_the_extension(kind: tuple[Any, ...]) -> None:
    outcomes: list[str] = []
    result = await handshake(denying_app(kind[0], outcomes), "/ws", extension=False)
    assert (result.status, result.body) == (403, b"")
    assert [message["type"] for message in result.messages] == ["websocket.close"]
    assert outcomes == ["close"]


@pytest.mark.anyio
async def test_deny_a_file_response(tmp_path: Path) -> None:
    page = tmp_path / "denied.html"
    page.write_bytes(b"<p>denied</p>")
    outcomes: list[str] = []
    app = denying_app(lambda: FileResponse(page, 403, media_type="text/html"), outcomes)
    result = await handshake(app, "/ws")
    assert (result.status, result.body) == (403, b"<p>denied</p>")
    assert result.header("content-type") == b"text/html; charset=utf-8"
    assert result.header("content-length") == b"13"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_test_client_sees_the_denial(backend: str) -> None:
    app = denying_app(KINDS["json-response"][0], [])
    with (
        TestClient(app, backend=backend) as client,
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/ws"),
    ):
        pass  # pragma: no cover - the denial is raised on connect
    assert denied.value.status_code == 401
    assert denied.value.headers["www-authenticate"] == 'Bearer realm="chat"'
    assert denied.value.json() == {"error": "unknown user"}


# --- Starlette's state after deny() ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_after_deny_starlette_sends_and_receives_nothing(extension: bool) -> None:
    states: list[tuple[WebSocketState, WebSocketState]] = []
    errors: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await contrib.deny(websocket, 401)
        states.append((websocket.application_state, websocket.client_state))
        # Both raise in Starlette itself: the harness fails any receive() after a denial and
        # any message after it, so neither reached the "server".
        for misuse in (websocket.receive, lambda: websocket.send_text("late")):
            with pytest.raises(RuntimeError) as error:
                await misuse()
            errors.append(str(error.value))

    result = await handshake(app_with(endpoint), "/ws", extension=extension)
    assert result.status == (401 if extension else 403)
    assert states == [(WebSocketState.DISCONNECTED, WebSocketState.DISCONNECTED)]
    assert len(errors) == 2
    assert len(result.messages) == (2 if extension else 1)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "make", [lambda: Response(b"x", 403, background=None), streaming], ids=["body", "streaming"]
)
async def test_a_background_task_runs_after_the_denial(make: Callable[[], Response]) -> None:
    sent_before_background: list[int] = []
    recorder = Recorder()

    async def background() -> None:
        sent_before_background.append(len(recorder.messages))

    response = make()
    response.background = BackgroundTask(background)
    websocket = WebSocket(websocket_scope(), _no_receive, recorder)
    assert await contrib.deny(websocket, response) == "response"
    assert sent_before_background == [2]
    assert response.background is not None  # held back during the collection, then restored


@pytest.mark.anyio
async def test_no_background_task_when_the_client_has_left() -> None:
    ran: list[bool] = []

    async def background() -> None:
        ran.append(True)  # pragma: no cover - must not run

    websocket = WebSocket(websocket_scope(), _no_receive, Recorder(fail_at=0))
    response = Response(b"x", 403, background=BackgroundTask(background))
    assert await contrib.deny(websocket, response) == "disconnected"
    assert ran == []
    assert websocket.application_state is WebSocketState.DISCONNECTED


async def _no_receive() -> dict[str, Any]:
    raise AssertionError("deny() must never call receive()")  # pragma: no cover


# --- deny() refuses before sending -----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("first", "state"),
    [
        ({"type": "websocket.accept"}, "OPEN"),
        ({"type": "websocket.close", "code": 1000, "reason": ""}, "CLOSED"),
        ({"type": "websocket.http.response.start", "status": 403, "headers": []}, "RESPONDING"),
    ],
    ids=["accepted", "closed", "responding"],
)
async def test_deny_after_the_handshake_was_answered(first: dict[str, Any], state: str) -> None:
    recorder = Recorder()
    websocket = WebSocket(websocket_scope(), _no_receive, recorder)
    await websocket.send(first)
    with pytest.raises(HandshakeStateError) as error:
        await contrib.deny(websocket, 401)
    assert error.value.state.name == state
    assert recorder.messages == [first]


@pytest.mark.anyio
async def test_fallback_raise_sends_nothing_and_keeps_the_state() -> None:
    recorder = Recorder()
    websocket = WebSocket(websocket_scope(extension=False), _no_receive, recorder)
    with pytest.raises(DenialUnsupportedError):
        await contrib.deny(websocket, 401, fallback="raise")
    assert recorder.messages == []
    assert websocket.application_state is WebSocketState.CONNECTING
    assert await contrib.deny(websocket, 401) == "close"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (Response(status_code=101), (), b""),
        (Response(b"x", 403, headers={"connection": "close"}), (), b""),
        (Response(b"x", 403, headers={"content-length": "5"}), (), b""),
        (Response(b"x", 403), [("x-a", "1")], b""),
        (Denial(403), (), b"body"),
        (403, [("transfer-encoding", "chunked")], b""),
    ],
    ids=["101", "connection", "content-length", "response-and-headers", "denial-and-body", "te"],
)
async def test_invalid_denials_raise_before_anything_is_sent(
    status: Any, headers: Any, body: Any
) -> None:
    recorder = Recorder()
    websocket = WebSocket(websocket_scope(), _no_receive, recorder)
    with pytest.raises(InvalidDenialError):
        await contrib.deny(websocket, status, headers, body)
    assert recorder.messages == []
    assert websocket.application_state is WebSocketState.CONNECTING


def test_denial_from_response() -> None:
    denial = contrib.denial_from_response(JSONResponse({"a": 1}, 409))
    assert denial == Denial(
        409, [("content-length", "7"), ("content-type", "application/json")], b'{"a":1}'
    )
    with pytest.raises(InvalidDenialError, match=r"pass it to .*deny\(\)"):
        contrib.denial_from_response(streaming())


# --- The exception handlers, through the example application -------------------------------

#: Path of the Starlette example: (content-type, body) of its denial.
STARLETTE_PATHS = {
    "/ws": (b"application/json", UNKNOWN_USER_JSON),
    "/raise": (b"text/plain; charset=utf-8", b"unknown user"),
    "/denied": (b"application/json", UNKNOWN_USER_JSON),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", STARLETTE_PATHS, ids=STARLETTE_PATHS.keys())
def test_starlette_example_through_the_test_client(backend: str, path: str) -> None:
    content_type, body = STARLETTE_PATHS[path]
    with TestClient(starlette_app.app, backend=backend) as client:
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(path):
            pass  # pragma: no cover - the denial is raised on connect
        with client.websocket_connect(path, headers={"x-user": "alice"}) as websocket:
            assert websocket.receive_text() == "hello alice"
    response = denied.value
    assert (response.status_code, response.content) == (401, body)
    assert response.headers["content-type"] == content_type.decode()
    assert response.headers["www-authenticate"] == 'Bearer realm="chat"'


@pytest.mark.anyio
@pytest.mark.parametrize("path", STARLETTE_PATHS, ids=STARLETTE_PATHS.keys())
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_starlette_example_in_the_harness(path: str, extension: bool) -> None:
    result = await handshake(starlette_app.app, path, extension=extension)
    if extension:
        assert (result.status, result.body) == (401, STARLETTE_PATHS[path][1])
        assert result.header("www-authenticate") == CHALLENGE[1]
    else:
        assert (result.status, result.body) == (403, b"")
    admitted = await handshake(starlette_app.app, path, headers={"x-user": "alice"})
    assert (admitted.accepted, admitted.data) == (True, ("hello alice",))


@pytest.mark.anyio
async def test_an_exception_after_accept_closes_with_4000_plus_status() -> None:
    result = await handshake(starlette_app.app, "/late")
    assert (result.accepted, result.close_code, result.close_reason) == (
        True,
        4403,
        "too late to deny",
    )


@pytest.mark.anyio
async def test_denied_after_accept_closes_with_its_reason_cut_to_123_bytes() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise Denied(429, reason="é" * 100)

    result = await handshake(app_with(endpoint), "/ws")
    assert (result.accepted, result.close_code) == (True, 4429)
    assert result.close_reason == "é" * 61  # 122 bytes: the 62nd "é" would straddle byte 123


@pytest.mark.anyio
async def test_an_exception_in_the_middle_of_a_response_is_raised_as_a_state_error() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.send(
            {"type": "websocket.http.response.start", "status": 403, "headers": []}
        )
        raise HTTPException(401)

    with pytest.raises(HandshakeStateError) as error:
        await handshake(app_with(endpoint), "/ws")
    assert isinstance(error.value.__cause__, HTTPException)
    assert error.value.state.name == "RESPONDING"


@pytest.mark.anyio
async def test_an_exception_after_a_denial_sends_nothing_more() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await contrib.deny(websocket, 404)
        raise HTTPException(401)

    result = await handshake(app_with(endpoint), "/ws")
    assert result.status == 404
    assert [message["type"] for message in result.messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]


@pytest.mark.anyio
async def test_an_application_handler_makes_the_websocket_response_too() -> None:
    async def teapot(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(f"teapot says {exc.detail}", 418)

    def sync_teapot(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("sync teapot", 418)

    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(401, "no")

    for handler, body in ((teapot, b"teapot says no"), (sync_teapot, b"sync teapot")):
        app = Starlette(
            routes=[WebSocketRoute("/ws", endpoint)],
            exception_handlers={HTTPException: handler},
        )
        contrib.add_exception_handlers(app)
        result = await handshake(app, "/ws")
        assert (result.status, result.body) == (418, body)


@pytest.mark.anyio
async def test_a_handler_for_fastapis_http_exception_is_wrapped_too() -> None:
    """FastAPI's HTTPException subclasses Starlette's, and Starlette picks the handler of the
    most specific class: one registered for it must answer websockets portably too."""
    app = FastAPI()

    @app.exception_handler(FastAPIHTTPException)
    async def teapot(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("teapot", 418)

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        if "x-accept-first" in websocket.headers:
            await websocket.accept()
        raise FastAPIHTTPException(401, "no")

    contrib.add_exception_handlers(app)
    result = await handshake(app, "/ws")
    assert (result.status, result.body) == (418, b"teapot")
    assert (await handshake(app, "/ws", extension=False)).status == 403
    after_accept = await handshake(app, "/ws", headers={"x-accept-first": "1"})
    assert (after_accept.accepted, after_accept.close_code) == (True, 4401)


@pytest.mark.anyio
async def test_a_handler_that_answered_the_websocket_itself_is_left_alone() -> None:
    async def closing(conn: Any, exc: Exception) -> None:
        if isinstance(conn, WebSocket):
            await conn.close(4001)

    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(401, "no")

    app = Starlette(
        routes=[WebSocketRoute("/ws", endpoint)], exception_handlers={HTTPException: closing}
    )
    contrib.add_exception_handlers(app)
    contrib.add_exception_handlers(app)  # twice: the second wraps the first
    result = await handshake(app, "/ws")
    assert result.status == 403
    assert [m["type"] for m in result.messages] == ["websocket.close"]


class Endpoint(WebSocketEndpoint):
    async def on_connect(self, websocket: WebSocket) -> None:
        if "x-user" not in websocket.headers:
            raise Denied(Denial.text(401, "who?"))
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()


@pytest.mark.anyio
async def test_a_class_endpoint_denies_from_on_connect() -> None:
    app = Starlette(routes=[WebSocketRoute("/ws", Endpoint)])
    contrib.add_exception_handlers(app)
    result = await handshake(app, "/ws")
    assert (result.status, result.body) == (401, b"who?")
    assert (await handshake(app, "/ws", headers={"x-user": "a"})).data == ("hello",)


@pytest.mark.anyio
async def test_websocket_exception_keeps_starlettes_close() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise WebSocketException(1008, "policy")

    result = await handshake(app_with(endpoint), "/ws")
    assert (result.status, [m["type"] for m in result.messages]) == (403, ["websocket.close"])


@pytest.mark.anyio
async def test_without_the_handlers_starlette_sends_what_the_server_cannot() -> None:
    """The problem the handlers solve: Starlette's own path ignores the extension."""

    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(401)

    with pytest.raises(ProtocolViolation, match="extension"):
        await handshake(app_with(endpoint, handlers=False), "/ws", extension=False)


# --- HTTP stays HTTP -------------------------------------------------------------------------


async def http_raises(request: Request) -> Response:
    if request.query_params.get("denied"):
        raise Denied(Denial(402, [("set-cookie", "a=1"), ("set-cookie", "b=2")], b"pay"))
    raise HTTPException(401, "unknown user", headers={"www-authenticate": "Bearer"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_http_requests_get_the_usual_responses(backend: str) -> None:
    starlette = Starlette(routes=[Route("/", http_raises)])
    fastapi = FastAPI()
    fastapi.add_api_route("/", http_raises)
    for app in (starlette, fastapi):
        contrib.add_exception_handlers(app)
    with TestClient(starlette, backend=backend) as client:
        response = client.get("/")
        assert (response.status_code, response.text) == (401, "unknown user")
        assert response.headers["www-authenticate"] == "Bearer"
        denied = client.get("/?denied=1")
        assert (denied.status_code, denied.content) == (402, b"pay")
        assert denied.headers.get_list("set-cookie") == ["a=1", "b=2"]
    with TestClient(fastapi, backend=backend) as client:
        response = client.get("/")
        assert (response.status_code, response.json()) == (401, {"detail": "unknown user"})


# --- FastAPI: the example, and check_handshake ----------------------------------------------

FASTAPI_PATHS = {
    "/ws": UNKNOWN_USER_JSON,
    "/raise": b'{"detail":"unknown user"}',
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", FASTAPI_PATHS, ids=FASTAPI_PATHS.keys())
def test_fastapi_example_through_the_test_client(backend: str, path: str) -> None:
    with TestClient(fastapi_app.app, backend=backend) as client:
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(path):
            pass  # pragma: no cover - the denial is raised on connect
        with client.websocket_connect(path, headers={"x-user": "alice"}) as websocket:
            assert websocket.receive_text() == "hello alice"
    response = denied.value
    assert (response.status_code, response.content) == (401, FASTAPI_PATHS[path])
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == 'Bearer realm="chat"'


@pytest.mark.anyio
@pytest.mark.parametrize("path", FASTAPI_PATHS, ids=FASTAPI_PATHS.keys())
async def test_fastapi_example_without_the_extension(path: str) -> None:
    result = await handshake(fastapi_app.app, path, extension=False)
    assert (result.status, result.body) == (403, b"")


def fastapi_with(check: Any, *, handlers: bool = True) -> tuple[FastAPI, list[str]]:
    reached: list[str] = []
    app = FastAPI()
    if handlers:
        contrib.add_exception_handlers(app)

    @app.websocket("/ws", dependencies=[Depends(contrib.check_handshake(check))])
    async def endpoint(websocket: WebSocket) -> None:
        reached.append("endpoint")
        await hello(websocket)

    return app, reached


def refuse_sync(handshake: Handshake) -> Denial | None:
    return Denial.text(403, "no") if "x-user" not in handshake.headers else None


async def refuse_async(handshake: Handshake) -> Denial | None:
    return refuse_sync(handshake)


def refuse_raising(handshake: Handshake) -> None:
    if "x-user" not in handshake.headers:
        raise Denied(Denial.text(403, "no"))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "check", [refuse_sync, refuse_async, refuse_raising], ids=["sync", "async", "raises"]
)
async def test_check_handshake_denies_before_the_endpoint(check: Any) -> None:
    app, reached = fastapi_with(check)
    result = await handshake(app, "/ws")
    assert (result.status, result.body, reached) == (403, b"no", [])
    admitted = await handshake(app, "/ws", headers={"x-user": "alice"})
    assert (admitted.data, reached) == (("hello",), ["endpoint"])


def check_raising(handshake: Handshake) -> None:
    raise KeyError("secret-detail")


def check_returning_true(handshake: Handshake) -> bool:
    return True


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("check", "logged"),
    [(check_raising, "raised"), (check_returning_true, "returned a bool")],
    ids=["raises", "returns-true"],
)
async def test_check_handshake_fails_closed(
    check: Any, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, reached = fastapi_with(check)
    with caplog.at_level(logging.ERROR, logger="asgi_ws_deny"):
        result = await handshake(app, "/ws", headers={"x-user": "alice"})
    assert (result.status, result.body, reached) == (500, b"", [])
    assert logged in caplog.text
    assert b"secret" not in result.body


@pytest.mark.anyio
async def test_check_handshake_takes_a_list_of_checks_as_the_guard_does() -> None:
    app, reached = fastapi_with([lambda handshake: None, refuse_sync])
    result = await handshake(app, "/ws")
    assert (result.status, result.body, reached) == (403, b"no", [])


def test_check_handshake_refuses_a_bad_list_as_the_guard_does() -> None:
    with pytest.raises(InvalidDenialError, match="at least one check"):
        contrib.check_handshake([])


@pytest.mark.anyio
async def test_check_handshake_without_handlers_still_denies() -> None:
    """The client gets the denial; the Denied that stopped the endpoint reaches the server."""
    app, reached = fastapi_with(refuse_sync, handlers=False)
    recorder = Recorder()

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    with pytest.raises(Denied):
        await app(websocket_scope(path="/ws", raw_path=b"/ws"), receive, recorder)
    assert [m["type"] for m in recorder.messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert recorder.messages[0]["status"] == 403
    assert reached == []


def test_check_handshake_refuses_bad_options() -> None:
    with pytest.raises(InvalidDenialError):
        contrib.check_handshake("not callable")  # type: ignore[arg-type]
    with pytest.raises(InvalidDenialError):
        contrib.check_handshake(refuse_sync, error_denial=500)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_fastapi_dependency_raising_http_exception_denies() -> None:
    def needs_token(websocket: WebSocket) -> None:
        if "authorization" not in websocket.headers:
            raise FastAPIHTTPException(401, "token", headers={"www-authenticate": "Bearer"})

    app = FastAPI()
    contrib.add_exception_handlers(app)

    @app.websocket("/ws", dependencies=[Depends(needs_token)])
    async def endpoint(websocket: WebSocket) -> None:
        await hello(websocket)  # pragma: no cover - never reached without a token

    result: HandshakeResult = await handshake(app, "/ws")
    assert (result.status, result.json()) == (401, {"detail": "token"})
    assert result.header("www-authenticate") == b"Bearer"


SECRET = "key-5f1e9a"


class KeyedCheck:
    """A check holding a secret, as a token validator with a signing key would."""

    def __init__(self, result: object) -> None:
        self.result = result

    def __repr__(self) -> str:
        return f"KeyedCheck(key={SECRET!r})"

    def __call__(self, handshake: Handshake) -> object:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.anyio
@pytest.mark.parametrize(
    "result",
    [pytest.param(SECRET, id="returns-the-secret"), pytest.param(KeyError("x"), id="raises")],
)
async def test_the_log_names_a_failing_check_without_its_repr_or_its_result(
    result: object, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = fastapi_with(KeyedCheck(result))
    with caplog.at_level(logging.DEBUG, logger="asgi_ws_deny"):
        assert (await handshake(app, "/ws")).status == 500
    messages = [record.getMessage() for record in caplog.records]
    assert any("KeyedCheck" in message for message in messages)
    assert all(SECRET not in message for message in messages)

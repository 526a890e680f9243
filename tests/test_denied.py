"""Denied: the exception, and how the guard converts it (and the app's other endings)."""

from __future__ import annotations

import contextlib
import logging
import pickle
from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket

from asgi_ws_deny import (
    MAX_CLOSE_REASON_BYTES,
    Denial,
    Denied,
    DenyError,
    InvalidDenialError,
    WebSocketGuard,
)
from asgi_ws_deny.testing import handshake
from tests.helpers import Recorder, exception_group, forbidden_receive, websocket_scope

pytestmark = pytest.mark.anyio

ACCEPT: dict[str, Any] = {"type": "websocket.accept", "subprotocol": None, "headers": []}
CLOSE = {"type": "websocket.close", "code": 1000, "reason": ""}
START = {"type": "websocket.http.response.start", "status": 418, "headers": []}
PART = {"type": "websocket.http.response.body", "body": b"part", "more_body": True}
FINAL = {"type": "websocket.http.response.body", "body": b"", "more_body": False}


# --- The exception --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "status", "headers", "body", "reason"),
    [
        pytest.param((), {}, 403, ((b"content-length", b"0"),), b"", "Forbidden", id="default"),
        pytest.param(
            (404, [("X-Why", "gone")], b"{}"),
            {},
            404,
            ((b"x-why", b"gone"), (b"content-length", b"2")),
            b"{}",
            "Not Found",
            id="positional",
        ),
        pytest.param(
            (Denial.text(401, "log in"),),
            {"reason": "token expired"},
            401,
            ((b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"6")),
            b"log in",
            "token expired",
            id="a-denial",
        ),
        pytest.param((599,), {}, 599, ((b"content-length", b"0"),), b"", "", id="no-phrase"),
        pytest.param(
            (429,), {"reason": ""}, 429, ((b"content-length", b"0"),), b"", "", id="empty"
        ),
    ],
)
def test_denied_carries_a_validated_denial(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    status: int,
    headers: tuple[tuple[bytes, bytes], ...],
    body: bytes,
    reason: str,
) -> None:
    denied = Denied(*args, **kwargs)
    assert (denied.status, denied.denial.status) == (status, status)
    assert (denied.denial.headers, denied.denial.body) == (headers, body)
    assert denied.reason == reason


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        pytest.param((101,), {}, "1xx", id="status-101"),
        pytest.param((700,), {}, "200..599", id="status-700"),
        pytest.param((404, (), "text"), {}, "got str", id="str-body"),
        pytest.param((404, [("upgrade", "x")]), {}, "cannot be set", id="forbidden-header"),
        pytest.param(
            (Denial(404), [("a", "b")]), {}, "belong to the Denial", id="denial-and-headers"
        ),
        pytest.param((Denial(404), (), b"x"), {}, "belong to the Denial", id="denial-and-body"),
        pytest.param((404,), {"reason": b"bytes"}, "reason must be str", id="bytes-reason"),
        pytest.param((404,), {"reason": "\ud800"}, "UTF-8", id="lone-surrogate"),
    ],
)
def test_denied_refuses_what_cannot_be_sent(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidDenialError, match=message.replace(".", r"\.")):
        Denied(*args, **kwargs)


def test_denied_is_an_answer_not_a_package_error() -> None:
    # `except DenyError` (this package's misuse errors) must not swallow a deliberate denial.
    assert not isinstance(Denied(), DenyError)
    assert isinstance(Denied(), Exception)


def test_denied_reads_well_and_survives_pickling() -> None:
    denied = Denied(Denial.json(404, {"message": "User not allowed"}), reason="no such user")
    assert str(denied) == "404 no such user"
    assert str(Denied(599)) == "599"
    assert repr(denied).startswith("Denied(Denial(404, ")
    copy = pickle.loads(pickle.dumps(denied))
    assert type(copy) is Denied
    assert (copy.denial, copy.reason) == (denied.denial, denied.reason)


# --- Conversion by the guard ----------------------------------------------------------------


def app_that(*steps: Any) -> Any:
    """An app that sends each message step in order, and raises each exception step."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for step in steps:
            if callable(step):  # an exception built late: groups need Python 3.11
                step = step()
            if isinstance(step, BaseException):
                raise step
            await send(step)

    return app


NOT_FOUND = Denial.json(404, {"message": "User not allowed"})

# (app steps, accepted, status with the extension, body, close code, close reason)
CONVERSIONS = [
    pytest.param(
        [Denied(NOT_FOUND)], False, 404, NOT_FOUND.body, None, None, id="denied-before-accept"
    ),
    pytest.param(
        [Denied(401, reason="log in")], False, 401, b"", None, None, id="reason-not-in-response"
    ),
    pytest.param(
        [ACCEPT, Denied(NOT_FOUND)], True, 101, b"", 4404, "Not Found", id="denied-after-accept"
    ),
    pytest.param(
        [ACCEPT, Denied(403, reason="banned")], True, 101, b"", 4403, "banned", id="own-reason"
    ),
    pytest.param([ACCEPT, CLOSE, Denied(403)], True, 101, b"", 1000, "", id="denied-after-close"),
    pytest.param([], False, 403, b"", None, None, id="return-without-handshake"),
    pytest.param([START, PART], False, 418, b"part", None, None, id="return-mid-response"),
    pytest.param([ACCEPT], True, 101, b"", None, None, id="return-after-accept"),
    pytest.param(
        [lambda: exception_group(Denied(429))],
        False,
        429,
        b"",
        None,
        None,
        id="denied-in-a-group",
    ),
    pytest.param(
        [lambda: exception_group(exception_group(Denied(429)), Denied(401))],
        False,
        429,
        b"",
        None,
        None,
        id="denied-in-nested-groups",
    ),
]


@pytest.mark.parametrize(("steps", "accepted", "status", "body", "code", "reason"), CONVERSIONS)
async def test_the_guard_converts_what_the_app_leaves(
    steps: list[Any],
    accepted: bool,
    status: int,
    body: bytes,
    code: int | None,
    reason: str | None,
) -> None:
    result = await handshake(WebSocketGuard(app_that(*steps)))
    assert (result.accepted, result.status, result.body) == (accepted, status, body)
    assert (result.close_code, result.close_reason) == (code, reason)


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([Denied(NOT_FOUND)], id="denied"),
        pytest.param([], id="no-handshake"),
    ],
)
async def test_without_the_extension_a_denial_is_the_fallback_close(steps: list[Any]) -> None:
    result = await handshake(WebSocketGuard(app_that(*steps)), extension=False)
    assert result.status == 403
    assert result.messages == ({"type": "websocket.close", "code": 1008, "reason": ""},)


async def test_a_denial_after_a_close_before_accept_adds_nothing() -> None:
    result = await handshake(WebSocketGuard(app_that(CLOSE, Denied(404))))
    assert result.messages == (CLOSE,)
    assert result.status == 403


async def test_denied_mid_response_propagates() -> None:
    # Half a response is out; no coherent answer is left, so the error goes to the server.
    denied = Denied(404)
    with pytest.raises(Denied) as raised:
        await WebSocketGuard(app_that(START, PART, denied))(websocket_scope(), _connect, Recorder())
    assert raised.value is denied


async def _connect() -> dict[str, Any]:
    return {"type": "websocket.connect"}


async def test_the_no_handshake_denial_is_configurable() -> None:
    guard = WebSocketGuard(app_that(), no_handshake_denial=Denial.text(401, "who are you?"))
    result = await handshake(guard)
    assert (result.status, result.body) == (401, b"who are you?")


async def test_a_return_without_handshake_is_logged_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="asgi_ws_deny"):
        await handshake(WebSocketGuard(app_that()), "/quiet")
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    assert "/quiet" in record.getMessage()


async def test_close_codes_apply_after_accept() -> None:
    guard = WebSocketGuard(app_that(ACCEPT, Denied(403)), close_codes={403: 1008})
    assert (await handshake(guard)).close_code == 1008


async def test_the_browser_policy_applies_to_denied_before_accept() -> None:
    guard = WebSocketGuard(app_that(Denied(404, reason="no room")), browser_policy="always")
    result = await handshake(guard, subprotocols=["chat"])
    assert (result.accepted, result.subprotocol) == (True, "chat")
    assert (result.close_code, result.close_reason) == (4404, "no room")


# --- The reason travels in a close frame: 123 UTF-8 bytes at most ---------------------------


@pytest.mark.parametrize(
    ("reason", "sent"),
    [
        pytest.param("a" * 123, "a" * 123, id="exactly-123"),
        pytest.param("a" * 124, "a" * 123, id="ascii-cut"),
        pytest.param("\u00e9" * 62, "\u00e9" * 61, id="two-byte-cut-inside"),
        pytest.param("a" + "\u00e9" * 61, "a" + "\u00e9" * 61, id="two-byte-fits"),
        pytest.param("\u20ac" * 42, "\u20ac" * 41, id="three-byte"),
        pytest.param("ab" + "\U0001f6ab" * 31, "ab" + "\U0001f6ab" * 30, id="four-byte"),
    ],
)
async def test_the_reason_is_cut_at_a_character_boundary(reason: str, sent: str) -> None:
    result = await handshake(WebSocketGuard(app_that(ACCEPT, Denied(403, reason=reason))))
    assert result.close_reason == sent
    assert len(sent.encode()) <= MAX_CLOSE_REASON_BYTES
    # Nothing more could have been kept: the next character would not fit.
    assert len(reason[: len(sent) + 1].encode()) > MAX_CLOSE_REASON_BYTES or sent == reason


# --- Other errors of the app ----------------------------------------------------------------


async def test_an_error_before_accept_denies_500_then_reaches_the_server() -> None:
    error = RuntimeError("secret detail")
    server = Recorder()
    with pytest.raises(RuntimeError) as raised:
        await WebSocketGuard(app_that(error))(websocket_scope(), _connect, server)
    assert raised.value is error
    assert server.messages == [
        {
            "type": "websocket.http.response.start",
            "status": 500,
            "headers": [(b"content-length", b"0")],
        },
        {"type": "websocket.http.response.body", "body": b"", "more_body": False},
    ]


async def test_a_group_with_other_errors_is_an_error() -> None:
    group = exception_group(Denied(404), ValueError("boom"))
    server = Recorder()
    with pytest.raises(type(group)):
        await WebSocketGuard(app_that(group))(websocket_scope(), _connect, server)
    assert server.messages[0]["status"] == 500


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([ACCEPT, LookupError("after accept")], id="after-accept"),
        pytest.param([START, PART, LookupError("mid-response")], id="mid-response"),
        pytest.param([CLOSE, LookupError("after close")], id="after-close"),
    ],
)
async def test_a_later_error_reaches_the_server_untouched(steps: list[Any]) -> None:
    server = Recorder()
    with pytest.raises(LookupError):
        await WebSocketGuard(app_that(*steps))(websocket_scope(), _connect, server)
    assert server.messages == steps[:-1]


async def test_an_error_before_accept_without_the_extension_and_fallback_raise() -> None:
    # The guard cannot deny; the app's own error is what reaches the server.
    error = RuntimeError("boom")
    server = Recorder()
    guard = WebSocketGuard(app_that(error), fallback="raise")
    with pytest.raises(RuntimeError) as raised:
        await guard(websocket_scope(extension=False), _connect, server)
    assert raised.value is error
    assert server.messages == []


async def test_cancellation_is_never_caught() -> None:
    class Cancelled(BaseException):
        pass

    server = Recorder()
    with pytest.raises(Cancelled):
        await WebSocketGuard(app_that(Cancelled()))(websocket_scope(), _connect, server)
    assert server.messages == []


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([Denied(404)], id="denied"),
        pytest.param([], id="no-handshake"),
        pytest.param([ACCEPT, Denied(404)], id="denied-after-accept"),
        pytest.param([ValueError()], id="error"),
    ],
)
async def test_the_guard_never_receives_after_a_denial(steps: list[Any]) -> None:
    # The app consumes websocket.connect itself; the guard's own messages never call receive.
    calls: list[str] = []

    async def receive() -> dict[str, Any]:
        if calls:
            raise AssertionError("receive() called after the handshake")
        calls.append("connect")
        return {"type": "websocket.connect"}

    with contextlib.suppress(ValueError):
        await WebSocketGuard(app_that(*steps))(websocket_scope(), receive, Recorder())
    assert calls == ["connect"]


async def test_a_client_that_left_after_accept_ends_the_conversion_quietly() -> None:
    server = Recorder(fail_at=2)
    await WebSocketGuard(app_that(ACCEPT, Denied(403)))(websocket_scope(), _connect, server)
    assert server.messages == [ACCEPT]
    assert server.calls == 2


async def test_no_handshake_send_forbidden_receive() -> None:
    server = Recorder()
    await WebSocketGuard(app_that_without_receive())(websocket_scope(), forbidden_receive, server)
    assert [m["type"] for m in server.messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert server.messages[0]["status"] == 403


def app_that_without_receive() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    return app


# --- From inside a framework ----------------------------------------------------------------


def fastapi_app(**guard_options: Any) -> Any:
    async def current_user(websocket: WebSocket) -> str:
        user = websocket.headers.get("x-user")
        if user != "alice":
            raise Denied(Denial.json(401, {"message": "log in"}), reason="log in")
        return user

    app = FastAPI()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket, user: str = Depends(current_user)) -> None:
        await websocket.accept()
        await websocket.send_text(f"hello {user}")
        await websocket.close()

    app.add_middleware(WebSocketGuard, **guard_options)
    return app


async def test_a_fastapi_dependency_can_raise_denied() -> None:
    result = await handshake(fastapi_app(), "/ws")
    assert (result.status, result.json()) == (401, {"message": "log in"})
    admitted = await handshake(fastapi_app(), "/ws", headers={"x-user": "alice"})
    assert admitted.data == ("hello alice",)


async def test_a_fastapi_dependency_denial_under_the_browser_policy() -> None:
    result = await handshake(fastapi_app(browser_policy="origin"), "/ws", headers={"origin": "x"})
    assert (result.accepted, result.close_code, result.close_reason) == (True, 4401, "log in")

"""The guard's send wrapper: it follows the handshake and refuses out-of-order messages."""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_ws_deny import (
    HandshakeState,
    HandshakeStateError,
    InvalidDenialError,
    WebSocketGuard,
)
from asgi_ws_deny.testing import ProtocolViolation, handshake
from tests.helpers import Recorder, forbidden_receive, websocket_scope

pytestmark = pytest.mark.anyio

ACCEPT: dict[str, Any] = {"type": "websocket.accept", "subprotocol": None, "headers": []}
DATA = {"type": "websocket.send", "bytes": None, "text": "hi"}
CLOSE = {"type": "websocket.close", "code": 1000, "reason": ""}
START = {"type": "websocket.http.response.start", "status": 404, "headers": []}
PART = {"type": "websocket.http.response.body", "body": b"a", "more_body": True}
FINAL = {"type": "websocket.http.response.body", "body": b"b", "more_body": False}
UNKNOWN = {"type": "websocket.foo"}
_ACCEPT = "websocket.accept"


def sending(messages: Sequence[Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    return app


# (messages the app sends, the state and type the error names, what reaches the server)
REFUSED = [
    pytest.param([PART], "CONNECTING", "websocket.http.response.body", id="body-before-start"),
    pytest.param([FINAL], "CONNECTING", "websocket.http.response.body", id="final-before-start"),
    pytest.param([DATA], "CONNECTING", "websocket.send", id="send-before-accept"),
    pytest.param([UNKNOWN], "CONNECTING", "websocket.foo", id="unknown-type"),
    pytest.param([{"text": "x"}], "CONNECTING", None, id="no-type"),
    pytest.param([None], "CONNECTING", None, id="not-a-mapping"),
    pytest.param([["websocket.accept"]], "CONNECTING", None, id="a-list"),
    pytest.param([ACCEPT, "websocket.close"], "OPEN", None, id="a-string"),
    pytest.param([{"type": [_ACCEPT]}], "CONNECTING", [_ACCEPT], id="unhashable-type"),
    pytest.param([START, START], "RESPONDING", "websocket.http.response.start", id="start-twice"),
    pytest.param([START, ACCEPT], "RESPONDING", "websocket.accept", id="accept-mid-response"),
    pytest.param([START, CLOSE], "RESPONDING", "websocket.close", id="close-mid-response"),
    pytest.param([START, PART, DATA], "RESPONDING", "websocket.send", id="send-mid-response"),
    pytest.param([START, FINAL, ACCEPT], "DENIED", "websocket.accept", id="accept-after-denial"),
    pytest.param([START, FINAL, FINAL], "DENIED", "websocket.http.response.body", id="body-after"),
    pytest.param([CLOSE, ACCEPT], "DENIED", "websocket.accept", id="accept-after-close-denial"),
    pytest.param([CLOSE, START], "DENIED", "websocket.http.response.start", id="start-after-close"),
    pytest.param([ACCEPT, ACCEPT], "OPEN", "websocket.accept", id="accept-twice"),
    pytest.param([ACCEPT, START], "OPEN", "websocket.http.response.start", id="start-after-accept"),
    pytest.param([ACCEPT, FINAL], "OPEN", "websocket.http.response.body", id="body-after-accept"),
    pytest.param([ACCEPT, CLOSE, DATA], "CLOSED", "websocket.send", id="send-after-close"),
    pytest.param([ACCEPT, CLOSE, CLOSE], "CLOSED", "websocket.close", id="close-twice"),
]


@pytest.mark.parametrize(("messages", "state", "kind"), REFUSED)
async def test_out_of_order_messages_never_reach_the_server(
    messages: list[Any], state: str, kind: str | None
) -> None:
    errors: list[HandshakeStateError] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            try:
                await send(message)
            except HandshakeStateError as exc:
                errors.append(exc)
                return

    server = Recorder()
    await WebSocketGuard(app)(websocket_scope(), forbidden_receive, server)
    (error,) = errors
    assert error.state is HandshakeState[state]
    assert error.message_type == kind
    assert f"in state {state}" in str(error)
    assert repr(kind) in str(error)
    # Everything before the refused message went through unchanged; the refused one did not
    # (the guard may add its own answer after the app returns, never that message).
    refused = len(messages) - 1
    assert server.messages[:refused] == messages[:refused]
    assert all(sent is not messages[refused] for sent in server.messages[refused:])


@pytest.mark.parametrize(("messages", "state", "kind"), REFUSED)
async def test_the_server_only_ever_sees_a_valid_sequence(
    messages: list[Any], state: str, kind: str | None
) -> None:
    # The app lets the error escape; whatever the guard does then, the spec-strict harness
    # (standing in for the server) finds nothing to object to: it would raise
    # ProtocolViolation instead of letting the app's own error through.
    with pytest.raises(HandshakeStateError) as raised:
        await handshake(WebSocketGuard(sending(messages)))
    assert raised.value.state is HandshakeState[state]


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([ACCEPT, DATA, DATA, CLOSE], id="accept-send-close"),
        pytest.param([ACCEPT], id="accept-only"),
        pytest.param([CLOSE], id="close-before-accept"),
        pytest.param([MappingProxyType(ACCEPT), CLOSE], id="a-mapping-not-a-dict"),
        pytest.param([START, FINAL], id="response"),
        pytest.param([START, PART, PART, FINAL], id="chunked-response"),
        pytest.param([START, {"type": "websocket.http.response.body"}], id="body-defaults"),
    ],
)
async def test_valid_sequences_pass_unchanged(messages: list[Any]) -> None:
    server = Recorder()
    await WebSocketGuard(sending(messages))(websocket_scope(), forbidden_receive, server)
    assert server.messages == messages
    assert all(sent is given for sent, given in zip(server.messages, messages, strict=True))


async def test_a_response_start_needs_the_extension() -> None:
    server = Recorder()
    with pytest.raises(HandshakeStateError, match=r"does not list 'websocket\.http\.response'"):
        await WebSocketGuard(sending([START]))(
            websocket_scope(extension=False), forbidden_receive, server
        )
    # The app let the error escape before any handshake: the guard failed closed.
    assert server.messages == [{"type": "websocket.close", "code": 1008, "reason": ""}]


@pytest.mark.parametrize(
    "status",
    [101, 100, 199, 600, 0, "404", 404.0, True, None],
    ids=repr,
)
async def test_a_response_start_needs_a_final_status(status: object) -> None:
    server = Recorder()
    start = {**START, "status": status}
    with pytest.raises(InvalidDenialError, match=r"200\.\.599|must be an int"):
        await WebSocketGuard(sending([start]))(websocket_scope(), forbidden_receive, server)
    # Refused before the server saw it; the guard then denied with 500 itself.
    assert [m.get("status") for m in server.messages] == [500, None]


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("status", [200, 204, 299])
async def test_a_2xx_response_start_over_http2_or_http3_is_refused(
    status: int, version: str
) -> None:
    """Over HTTP/2 and HTTP/3 a 2xx answer opens the tunnel (RFC 8441 section 5, RFC 9220
    section 3): it would admit."""
    server = Recorder()
    start = {**START, "status": status}
    with pytest.raises(InvalidDenialError, match="RFC 9220"):
        await WebSocketGuard(sending([start]))(
            websocket_scope(http_version=version), forbidden_receive, server
        )
    assert [m.get("status") for m in server.messages] == [500, None]
    # Over HTTP/1.1 the same start is a denial, passed on.
    server = Recorder()
    await WebSocketGuard(sending([start, FINAL]))(websocket_scope(), forbidden_receive, server)
    assert [m.get("status") for m in server.messages] == [status, None]


async def test_an_app_that_swallows_the_error_is_still_answered() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        with contextlib.suppress(HandshakeStateError):
            await send(DATA)

    result = await handshake(WebSocketGuard(app))
    assert (result.accepted, result.status) == (False, 403)


async def test_the_state_moves_before_the_server_is_awaited() -> None:
    # Two concurrent accepts cannot both pass: the first moves the state before it awaits.
    app_send: Any = None
    delivered: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal app_send
        app_send = send
        await send(ACCEPT)

    async def server_send(message: Any) -> None:
        # While the first accept is with the server, another task of the app sends a second.
        with pytest.raises(HandshakeStateError, match="in state OPEN"):
            await app_send(ACCEPT)
        delivered.append(message)

    await WebSocketGuard(app)(websocket_scope(), forbidden_receive, server_send)
    assert delivered == [ACCEPT]


async def test_the_app_awaits_the_servers_own_send() -> None:
    # No coroutine of the guard's between the app and the server on any message: what the
    # app's send returns is the server's own coroutine.
    returned: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in (ACCEPT, DATA, CLOSE):
            pending = send(message)
            returned.append(pending.cr_code)
            await pending

    async def server_send(message: Any) -> None:
        return None

    await WebSocketGuard(app)(websocket_scope(), forbidden_receive, server_send)
    assert returned == [server_send.__code__] * 3


# Any sequence an app may try, through the guard: the server sees a valid one or nothing.
ALPHABET = st.sampled_from([ACCEPT, DATA, CLOSE, START, PART, FINAL, UNKNOWN])


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(ALPHABET, max_size=6),
    stop_at_first_error=st.booleans(),
    extension=st.booleans(),
)
async def test_through_the_guard_every_sequence_is_valid(
    messages: list[Any], stop_at_first_error: bool, extension: bool
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            try:
                await send(message)
            except (HandshakeStateError, InvalidDenialError):
                if stop_at_first_error:
                    return

    try:
        result = await handshake(WebSocketGuard(app), extension=extension)
    except ProtocolViolation as violation:  # pragma: no cover - the failure being tested for
        pytest.fail(f"the guard let an invalid sequence through: {violation}")
    # When the app never answered the handshake the guard did, with its 403.
    if not any(m in messages for m in (ACCEPT, CLOSE, START)):
        assert result.status == 403


def test_the_error_survives_pickling() -> None:
    error = HandshakeStateError(HandshakeState.OPEN, "websocket.accept", "already accepted")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.state, copy.message_type, copy.detail, str(copy)) == (
        error.state,
        error.message_type,
        error.detail,
        str(error),
    )

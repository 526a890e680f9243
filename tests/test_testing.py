"""asgi_ws_deny.testing: the in-memory, spec-strict handshake harness."""

from __future__ import annotations

import ast
import contextlib
import pickle
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest

import asgi_ws_deny.testing
from asgi_ws_deny.testing import HandshakeResult, ProtocolViolation, handshake

pytestmark = pytest.mark.anyio

ACCEPT: dict[str, Any] = {"type": "websocket.accept"}
CLOSE = {"type": "websocket.close", "code": 1000, "reason": ""}
START = {"type": "websocket.http.response.start", "status": 404, "headers": []}
FINAL = {"type": "websocket.http.response.body", "body": b"", "more_body": False}


def app_sending(*messages: Any, receive_first: bool = True) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if receive_first:
            assert (await receive()) == {"type": "websocket.connect"}
        for message in messages:
            await send(message)

    return app


# --- What the client sees -------------------------------------------------------------------

VALID = [
    pytest.param(
        app_sending(
            ACCEPT,
            {"type": "websocket.send", "text": "t"},
            {"type": "websocket.send", "bytes": b"b", "text": None},
            {"type": "websocket.close", "code": 4001, "reason": "bye"},
        ),
        {"accepted": True, "status": 101, "data": ("t", b"b"), "close_code": 4001},
        id="accept-send-close",
    ),
    pytest.param(
        app_sending({"type": "websocket.accept", "headers": [(b"x-a", b"1")]}, CLOSE),
        {"headers": ((b"x-a", b"1"),), "close_code": 1000, "close_reason": ""},
        id="accept-headers",
    ),
    pytest.param(
        app_sending(ACCEPT, {"type": "websocket.close"}),
        {"close_code": 1000, "close_reason": ""},
        id="close-defaults",
    ),
    pytest.param(
        app_sending(ACCEPT),
        {"accepted": True, "close_code": None, "close_reason": None},
        id="accept-only",
    ),
    pytest.param(
        app_sending({"type": "websocket.close", "code": 1008}),
        {"accepted": False, "status": 403, "body": b"", "close_code": None},
        id="close-before-accept-is-403",
    ),
    pytest.param(
        app_sending(
            {"type": "websocket.http.response.start", "status": 451, "headers": [(b"a", b"b")]},
            {"type": "websocket.http.response.body", "body": b"one ", "more_body": True},
            {"type": "websocket.http.response.body", "body": b"two"},
        ),
        {"accepted": False, "status": 451, "headers": ((b"a", b"b"),), "body": b"one two"},
        id="denial-response",
    ),
    pytest.param(
        app_sending({"type": "websocket.http.response.start", "status": 404}, FINAL),
        {"status": 404, "headers": ()},
        id="start-without-headers",
    ),
]


@pytest.mark.parametrize(("app", "expected"), VALID)
async def test_the_result_is_what_the_client_saw(app: Any, expected: dict[str, Any]) -> None:
    result = await handshake(app)
    for name, value in expected.items():
        assert getattr(result, name) == value, name
    assert result.denied is not result.accepted


async def test_the_raw_messages_are_kept_in_order() -> None:
    messages = [ACCEPT, {"type": "websocket.send", "text": "x"}, CLOSE]
    result = await handshake(app_sending(*messages))
    assert list(result.messages) == messages


async def test_result_helpers() -> None:
    app = app_sending(
        {
            "type": "websocket.http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"application/json")],
        },
        {"type": "websocket.http.response.body", "body": b'{"a": 1}'},
    )
    result = await handshake(app)
    assert result.json() == {"a": 1}
    assert result.header("Content-Type") == b"application/json"
    assert result.header(b"missing") is None
    assert isinstance(result, HandshakeResult)


async def test_a_subprotocol_the_client_offered_can_be_accepted() -> None:
    app = app_sending({"type": "websocket.accept", "subprotocol": "b"})
    assert (await handshake(app, subprotocols=["a", "b"])).subprotocol == "b"


async def test_client_messages_arrive_then_the_client_disconnects() -> None:
    received: list[dict[str, Any]] = []

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return
            await send(
                {"type": "websocket.send", "text": message["text"], "bytes": message["bytes"]}
            )

    result = await handshake(echo, messages=["one", b"two"])
    assert received == [
        {"type": "websocket.receive", "bytes": None, "text": "one"},
        {"type": "websocket.receive", "bytes": b"two", "text": None},
        {"type": "websocket.disconnect", "code": 1000, "reason": ""},
    ]
    assert result.data == ("one", b"two")


async def test_after_its_own_close_the_app_hears_the_code_echoed() -> None:
    heard: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await send({"type": "websocket.close", "code": 4403})
        heard.append(await receive())

    await handshake(app)
    assert heard == [{"type": "websocket.disconnect", "code": 4403, "reason": ""}]


async def test_send_after_the_disconnect_raises_oserror() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        assert (await receive())["type"] == "websocket.disconnect"
        with pytest.raises(OSError, match="disconnected"):
            await send({"type": "websocket.send", "text": "late"})

    assert (await handshake(app)).accepted


# --- The scope ------------------------------------------------------------------------------


async def test_the_scope_is_a_websocket_upgrade() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send(CLOSE)

    await handshake(
        app,
        "/a%20b?x=1&y=%2F",
        headers=[("Host", "example.test"), (b"X-Token", b"t")],
        subprotocols=["chat", "v2"],
        client=None,
    )
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
        "/a b",
        b"/a%20b",
        b"x=1&y=%2F",
    )
    assert scope["headers"] == [
        (b"connection", b"Upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-protocol", b"chat, v2"),
        (b"host", b"example.test"),
        (b"x-token", b"t"),
    ]
    assert scope["subprotocols"] == ["chat", "v2"]
    assert scope["client"] is None
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["asgi"]["spec_version"] == "2.4"


@pytest.mark.parametrize(
    ("kwargs", "key", "value"),
    [
        pytest.param({"extension": False}, "extensions", {}, id="no-extension"),
        pytest.param({"http_version": "2"}, "http_version", "2", id="http2"),
        pytest.param({}, "client", ("127.0.0.1", 50000), id="client"),
        pytest.param({}, "path", "/", id="default-path"),
    ],
)
async def test_scope_options(kwargs: dict[str, Any], key: str, value: object) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send(CLOSE)

    await handshake(app, **kwargs)
    assert scopes[0][key] == value


# --- Violations -----------------------------------------------------------------------------


def receiving_twice() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await receive()

    return app


def receiving_after(*messages: Any) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for message in messages:
            await send(message)
        await receive()

    return app


def receiving_after_disconnect() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await receive()
        await receive()

    return app


BAD_START = {"type": "websocket.http.response.start"}

VIOLATIONS = [
    pytest.param(app_sending(FINAL), "'Response Body - send event'", "before", id="body-first"),
    pytest.param(app_sending(START, START), "'Response Start", "second", id="two-starts"),
    pytest.param(
        app_sending({**BAD_START, "status": 101}), "RFC 9110", "switch protocols", id="status-101"
    ),
    pytest.param(app_sending({**BAD_START, "status": 199}), "RFC 9110", "199", id="status-199"),
    pytest.param(app_sending({**BAD_START, "status": 600}), "RFC 9110", "600", id="status-600"),
    pytest.param(app_sending({**BAD_START, "status": "404"}), "Start", "int", id="status-str"),
    pytest.param(app_sending({**BAD_START, "status": True}), "Start", "int", id="status-bool"),
    pytest.param(
        app_sending({**BAD_START, "status": 404, "headers": [("a", "b")]}),
        "Start",
        "byte strings",
        id="str-headers",
    ),
    pytest.param(
        app_sending({**BAD_START, "status": 404, "headers": [(b"A", b"b")]}),
        "Start",
        "lowercased",
        id="uppercase-header",
    ),
    pytest.param(
        app_sending({**BAD_START, "status": 404, "headers": {b"a": b"b"}}),
        "Start",
        "iterable of",
        id="headers-dict",
    ),
    pytest.param(
        app_sending({**BAD_START, "status": 404, "headers": [(b"a",)]}),
        "Start",
        "pair",
        id="header-not-a-pair",
    ),
    pytest.param(
        app_sending(START, {"type": "websocket.http.response.body", "body": "text"}),
        "Body",
        "byte string",
        id="str-body",
    ),
    pytest.param(
        app_sending(START, {"type": "websocket.http.response.body", "more_body": 1}),
        "Body",
        "bool",
        id="more-body-int",
    ),
    pytest.param(app_sending(START, FINAL, FINAL), "Denial Response", "after", id="after-final"),
    pytest.param(app_sending(START, FINAL, ACCEPT), "Denial Response", "after", id="accept-after"),
    pytest.param(app_sending(START, ACCEPT), "Denial Response", "under way", id="accept-mid"),
    pytest.param(app_sending(CLOSE, ACCEPT), "'Close - send event'", "after", id="after-close-403"),
    pytest.param(app_sending(ACCEPT, CLOSE, CLOSE), "RFC 6455 section 5.5.1", "", id="after-close"),
    pytest.param(app_sending(), "'Connect - receive event'", "returned", id="no-handshake"),
    pytest.param(
        app_sending(receive_first=False),
        "'Connect - receive event'",
        "returned",
        id="no-handshake-no-receive",
    ),
    pytest.param(
        app_sending(START, {"type": "websocket.http.response.body", "more_body": True}),
        "Body",
        "middle",
        id="return-mid-response",
    ),
    pytest.param(
        app_sending({"type": "websocket.send", "text": "x"}), "Connect", "before", id="send-first"
    ),
    pytest.param(app_sending(ACCEPT, ACCEPT), "Accept", "twice", id="accept-twice"),
    pytest.param(app_sending(ACCEPT, START), "Denial Response", "after accept", id="start-late"),
    pytest.param(
        app_sending({"type": "websocket.accept", "subprotocol": "x"}),
        "RFC 6455 section 4.2.2",
        "not offered",
        id="unoffered-subprotocol",
    ),
    pytest.param(
        app_sending({"type": "websocket.accept", "subprotocol": 1}),
        "Accept",
        "str or None",
        id="subprotocol-int",
    ),
    pytest.param(
        app_sending({"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"x")]}),
        "Accept",
        "sec-websocket-protocol",
        id="subprotocol-header",
    ),
    pytest.param(
        app_sending(ACCEPT, {"type": "websocket.close", "code": 1006}),
        "RFC 6455 section 7.4",
        "1006",
        id="close-1006",
    ),
    pytest.param(
        app_sending(ACCEPT, {"type": "websocket.close", "code": 2000}),
        "RFC 6455 section 7.4",
        "2000",
        id="close-2000",
    ),
    pytest.param(
        app_sending(ACCEPT, {"type": "websocket.close", "code": 4000, "reason": "\u00e9" * 62}),
        "RFC 6455 section 5.5",
        "124 UTF-8 bytes",
        id="long-reason",
    ),
    pytest.param(
        app_sending({"type": "websocket.close", "code": "1000"}), "Close", "int", id="code-str"
    ),
    pytest.param(
        app_sending({"type": "websocket.close", "reason": 1}), "Close", "str", id="reason-int"
    ),
    pytest.param(
        app_sending(ACCEPT, {"type": "websocket.send", "text": "a", "bytes": b"b"}),
        "'Send - send event'",
        "exactly one",
        id="text-and-bytes",
    ),
    pytest.param(
        app_sending(ACCEPT, {"type": "websocket.send"}), "Send", "exactly one", id="no-data"
    ),
    pytest.param(
        app_sending(ACCEPT, {"type": "websocket.send", "text": b"x"}),
        "Send",
        "text must be a str",
        id="text-bytes",
    ),
    pytest.param(
        app_sending(ACCEPT, {"type": "websocket.send", "bytes": "x"}),
        "Send",
        "bytes must be",
        id="bytes-str",
    ),
    pytest.param(app_sending({"type": "http.response.start"}), "Applications", "not a", id="http"),
    pytest.param(app_sending(["websocket.accept"]), "Applications", "dict", id="not-a-dict"),
    pytest.param(app_sending({"type": None}), "Applications", "dict", id="type-none"),
    pytest.param(
        app_sending(ACCEPT, {**CLOSE, "reason": "\ud800"}), "RFC 6455", "UTF-8", id="surrogate"
    ),
    pytest.param(
        app_sending({**BAD_START, "status": 204, "headers": [(b"content-length", b"0")]}),
        "section 8.6",
        "204",
        id="204-content-length",
    ),
    *(
        pytest.param(
            app_sending({**START, "status": status}, {**FINAL, "body": b"x"}),
            "15.3.5",
            f"a {status} response cannot carry a body",
            id=f"{status}-body",
        )
        for status in (204, 205, 304)
    ),
    pytest.param(
        app_sending({**START, "headers": [(b"content-length", b"5")]}, {**FINAL, "body": b"abc"}),
        "section 8.6",
        "is 3 bytes",
        id="body-shorter-than-content-length",
    ),
    pytest.param(
        app_sending(
            {**START, "headers": [(b"content-length", b"2")]},
            {**FINAL, "body": b"abc", "more_body": True},
        ),
        "section 8.6",
        "3 bytes so far",
        id="body-longer-than-content-length",
    ),
    pytest.param(
        app_sending({**START, "headers": [(b"content-length", b"1"), (b"content-length", b"2")]}),
        "section 8.6",
        "one length",
        id="two-content-lengths",
    ),
    pytest.param(
        app_sending({**START, "headers": [(b"content-length", b"-1")]}),
        "section 8.6",
        "one length",
        id="negative-content-length",
    ),
    pytest.param(receiving_twice(), "'Connect - receive event'", "wait forever", id="receive-2"),
    pytest.param(
        receiving_after(START, FINAL), "Denial Response", "after a denial", id="receive-denied"
    ),
    pytest.param(receiving_after(CLOSE), "Denial Response", "after a denial", id="receive-403"),
    pytest.param(
        receiving_after(START), "Denial Response", "state responding", id="receive-mid-response"
    ),
    pytest.param(
        receiving_after_disconnect(),
        "'Disconnect - receive event'",
        "after websocket.disconnect",
        id="receive-after-disconnect",
    ),
]


@pytest.mark.parametrize(("app", "rule", "detail"), VIOLATIONS)
async def test_violations_name_their_rule(app: Any, rule: str, detail: str) -> None:
    with pytest.raises(ProtocolViolation) as raised:
        await handshake(app)
    assert rule in raised.value.rule
    assert detail in raised.value.detail
    assert str(raised.value) == f"{raised.value.detail} [{raised.value.rule}]"
    assert isinstance(raised.value, AssertionError)


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("status", [200, 204, 299])
async def test_a_2xx_over_http2_or_http3_would_open_the_tunnel(
    status: int, version: Literal["2", "3"]
) -> None:
    app = app_sending({**START, "status": status}, FINAL)
    with pytest.raises(ProtocolViolation, match=f"status {status} over HTTP/2 or HTTP/3") as raised:
        await handshake(app, http_version=version)
    assert "RFC 8441" in raised.value.rule
    assert "RFC 9220" in raised.value.rule
    assert (await handshake(app)).status == status  # over HTTP/1.1 it is a denial


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([(b"content-length", b"3")], [b"abc"]),
        ([(b"content-length", b"03")], [b"a", b"bc"]),
        ([(b"content-length", b"3, 3")], [b"abc"]),
        ([], [b"any", b"length"]),
    ],
)
async def test_a_body_as_long_as_its_content_length_passes(
    headers: list[tuple[bytes, bytes]], body: list[bytes]
) -> None:
    chunks = [{**FINAL, "body": chunk, "more_body": True} for chunk in body]
    chunks[-1]["more_body"] = False
    result = await handshake(app_sending({**START, "headers": headers}, *chunks))
    assert result.body == b"".join(body)


async def test_a_304_may_describe_its_representation() -> None:
    start = {**START, "status": 304, "headers": [(b"content-length", b"120")]}
    assert (await handshake(app_sending(start, FINAL))).status == 304


async def test_a_response_needs_the_extension() -> None:
    with pytest.raises(ProtocolViolation, match="does not list") as raised:
        await handshake(app_sending(START, FINAL), extension=False)
    assert "Denial Response" in raised.value.rule
    assert raised.value.messages == (START,)


async def test_a_swallowed_violation_is_raised_when_the_app_returns() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        with contextlib.suppress(ProtocolViolation):
            await send({"type": "websocket.send", "text": "too early"})
        await send(ACCEPT)

    with pytest.raises(ProtocolViolation, match="before the handshake was accepted"):
        await handshake(app)


async def test_a_violation_wins_over_the_error_it_caused() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send(FINAL)
        except ProtocolViolation as violation:
            raise RuntimeError("wrapped") from violation

    with pytest.raises(ProtocolViolation) as raised:
        await handshake(app)
    assert isinstance(raised.value.__cause__, RuntimeError)


async def test_the_app_errors_propagate_unchanged() -> None:
    error = LookupError("the app's own")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise error

    with pytest.raises(LookupError) as raised:
        await handshake(app)
    assert raised.value is error


async def test_a_hanging_app_times_out_with_its_state() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await anyio.sleep_forever()

    with pytest.raises(TimeoutError, match=r"state: open; sent: \[\{'type': 'websocket.accept'"):
        await handshake(app, timeout=0.05)


def test_the_harness_does_not_import_the_core() -> None:
    # It judges any ASGI app; it must not lean on the code it is used to test.
    source = Path(asgi_ws_deny.testing.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not any(name.startswith("asgi_ws_deny") for name in imported), imported
    assert "anyio" in imported
    assert "asyncio" not in imported


def test_a_violation_survives_pickling() -> None:
    violation = ProtocolViolation("a rule", "what happened", [{"type": "websocket.accept"}])
    copy = pickle.loads(pickle.dumps(violation))
    assert (copy.rule, copy.detail, copy.messages, str(copy)) == (
        violation.rule,
        violation.detail,
        violation.messages,
        str(violation),
    )

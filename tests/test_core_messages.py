"""The exact messages a denial sends, for every kind of scope and every form of input."""

from __future__ import annotations

from http import HTTPStatus
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import Recorder, drive, websocket_scope

CLOSE = [{"type": "websocket.close", "code": 1008, "reason": ""}]


def scope_without(kind: str) -> dict[str, Any]:
    scope = websocket_scope()
    if kind == "empty":
        scope["extensions"] = {}
    elif kind == "none":
        scope["extensions"] = None
    elif kind == "missing":
        del scope["extensions"]
    elif kind == "other-extension":
        scope["extensions"] = {"websocket.http.response.other": {}, "http.response.push": {}}
    return scope


WITHOUT = ["empty", "none", "missing", "other-extension"]


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        pytest.param({"websocket.http.response": {}}, True, id="advertised"),
        pytest.param(
            {"websocket.http.response": {}, "http.response.pathsend": {}}, True, id="among-others"
        ),
        pytest.param({}, False, id="empty"),
        pytest.param(None, False, id="none"),
        pytest.param({"http.response.push": {}}, False, id="other-only"),
        pytest.param(["websocket.http.response"], False, id="not-a-mapping"),
    ],
)
def test_supports_denial_response(core: ModuleType, extensions: Any, expected: bool) -> None:
    assert (
        core.supports_denial_response({"type": "websocket", "extensions": extensions}) is expected
    )


def test_supports_denial_response_without_the_key(core: ModuleType) -> None:
    assert core.supports_denial_response({"type": "websocket"}) is False


CASES = [
    pytest.param(
        {},
        403,
        [(b"content-length", b"0")],
        b"",
        id="defaults",
    ),
    pytest.param(
        {
            "status": 401,
            "headers": [("WWW-Authenticate", 'Bearer realm="api"')],
            "body": b'{"error":"unauthorized"}',
        },
        401,
        [(b"www-authenticate", b'Bearer realm="api"'), (b"content-length", b"24")],
        b'{"error":"unauthorized"}',
        id="str-header-lowercased",
    ),
    pytest.param(
        {
            "status": 429,
            "headers": [(b"Retry-After", b"30"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        },
        429,
        [
            (b"retry-after", b"30"),
            (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
            (b"content-length", b"0"),
        ],
        b"",
        id="repeated-names-kept-in-order",
    ),
    pytest.param(
        {"status": 404, "headers": {"x-reason": "gone"}, "body": bytearray(b"nope")},
        404,
        [(b"x-reason", b"gone"), (b"content-length", b"4")],
        b"nope",
        id="mapping-headers-bytearray-body",
    ),
    pytest.param(
        {"status": HTTPStatus.SERVICE_UNAVAILABLE, "body": memoryview(b"later")},
        503,
        [(b"content-length", b"5")],
        b"later",
        id="httpstatus-memoryview",
    ),
    pytest.param(
        {"status": 400, "headers": [("content-length", "2"), ("x-a", "caf\xe9")], "body": b"no"},
        400,
        [(b"content-length", b"2"), (b"x-a", b"caf\xe9")],
        b"no",
        id="matching-content-length-kept-latin1-value",
    ),
    pytest.param(
        {"status": 204, "headers": [("x-a", "1")]},
        204,
        [(b"x-a", b"1")],
        b"",
        id="204-has-no-content-length",
    ),
    pytest.param(
        {"status": 304},
        304,
        [],
        b"",
        id="304-has-no-content-length",
    ),
    pytest.param(
        {"status": 302, "headers": [("location", "/login")]},
        302,
        [(b"location", b"/login"), (b"content-length", b"0")],
        b"",
        id="redirect",
    ),
    pytest.param(
        {"status": 599, "headers": [("x-empty", "")]},
        599,
        [(b"x-empty", b""), (b"content-length", b"0")],
        b"",
        id="highest-status-empty-value",
    ),
]


@pytest.mark.parametrize(("kwargs", "status", "headers", "body"), CASES)
def test_with_the_extension_a_start_and_one_final_body(
    core: ModuleType,
    kwargs: dict[str, Any],
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    messages = core.denial_messages(websocket_scope(), **kwargs)
    assert messages == [
        {"type": "websocket.http.response.start", "status": status, "headers": headers},
        {"type": "websocket.http.response.body", "body": body, "more_body": False},
    ]
    start, final = messages
    assert type(start["status"]) is int  # type: ignore[typeddict-item]
    assert type(final["body"]) is bytes  # type: ignore[typeddict-item]


@pytest.mark.parametrize(("kwargs", "status", "headers", "body"), CASES)
@pytest.mark.parametrize("kind", WITHOUT)
def test_without_the_extension_one_close(
    core: ModuleType, kind: str, kwargs: dict[str, Any], status: int, headers: object, body: object
) -> None:
    assert core.denial_messages(scope_without(kind), **kwargs) == CLOSE


@pytest.mark.parametrize("kind", WITHOUT)
def test_without_the_extension_fallback_raise(core: ModuleType, kind: str) -> None:
    with pytest.raises(core.DenialUnsupportedError, match=r"websocket\.http\.response.*403"):
        core.denial_messages(scope_without(kind), 401, fallback="raise")


def test_fallback_raise_with_the_extension_sends_the_response(core: ModuleType) -> None:
    messages = core.denial_messages(websocket_scope(), 401, fallback="raise")
    assert [m["type"] for m in messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]


def test_a_denial_given_as_status(core: ModuleType) -> None:
    denial = core.Denial.json(401, {"error": "unauthorized"}, [("www-authenticate", "Bearer")])
    assert core.denial_messages(websocket_scope(), denial) == [
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [
                (b"www-authenticate", b"Bearer"),
                (b"content-type", b"application/json"),
                (b"content-length", b"24"),
            ],
        },
        {
            "type": "websocket.http.response.body",
            "body": b'{"error":"unauthorized"}',
            "more_body": False,
        },
    ]
    assert core.denial_messages(scope_without("none"), denial) == CLOSE


def test_each_call_gets_its_own_header_list(core: ModuleType) -> None:
    """A middleware that edits one message's headers must not change the next denial."""
    denial = core.Denial(401)
    first = denial.messages(websocket_scope())[0]
    first["headers"].append((b"x-added", b"1"))  # type: ignore[typeddict-item, union-attr]
    second = denial.messages(websocket_scope())[0]
    assert second["headers"] == [(b"content-length", b"0")]  # type: ignore[typeddict-item]


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("status", [200, 204, 299])
def test_a_2xx_over_http2_or_http3_is_refused(core: ModuleType, status: int, version: str) -> None:
    """A 2xx answer to an extended CONNECT (RFC 8441 over HTTP/2, RFC 9220 over HTTP/3) opens
    the tunnel instead of denying."""

    with pytest.raises(core.InvalidDenialError, match=f"HTTP/{version}, .*RFC 9220"):
        core.denial_messages(websocket_scope(http_version=version), status)


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("status", [200, 204, 299])
def test_a_2xx_over_a_tunnel_without_the_extension_falls_back(
    core: ModuleType, status: int, version: str
) -> None:
    """The fallback sends only websocket.close, which the server answers with 403: no tunnel."""
    scope = websocket_scope(extension=False, http_version=version)
    assert core.denial_messages(scope, status) == [
        {"type": "websocket.close", "code": 1008, "reason": ""}
    ]
    send = Recorder()
    assert drive(core.deny(scope, send, status)) == "close"
    assert send.messages == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    with pytest.raises(core.DenialUnsupportedError):
        core.denial_messages(scope, status, fallback="raise")


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("status", [300, 403, 500])
def test_other_statuses_over_http2_and_http3(core: ModuleType, status: int, version: str) -> None:
    messages = core.denial_messages(websocket_scope(http_version=version), status)
    assert messages[0] == {
        "type": "websocket.http.response.start",
        "status": status,
        "headers": [(b"content-length", b"0")],
    }


@pytest.mark.parametrize("status", [200, 299])
def test_a_2xx_over_http1(core: ModuleType, status: int) -> None:
    messages = core.denial_messages(websocket_scope(http_version="1.1"), status)
    assert messages[0]["status"] == status  # type: ignore[typeddict-item]


def test_headers_up_to_every_limit_are_sent(core: ModuleType) -> None:
    """The limits refuse only what clients cannot read: each boundary itself is accepted."""
    name = "x" * core.MAX_HEADER_NAME_BYTES
    longest = [("x-a", "v" * (core.MAX_HEADER_LINE_BYTES - len("x-a: ")))]
    most = [(f"x-{number}", "v") for number in range(core.MAX_HEADERS)]
    for headers in ([(name, "v")], longest, most):
        messages = core.denial_messages(websocket_scope(), 401, headers)
        assert messages[0]["headers"][: len(headers)] == [
            (n.encode(), v.encode()) for n, v in headers
        ]

"""Every bad input raises a clear error before anything is sent."""

from __future__ import annotations

from http import HTTPStatus
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import LyingBytes, LyingInt, Recorder, drive, websocket_scope

pytestmark = pytest.mark.anyio

INVALID_STATUS = [
    pytest.param(True, "must be an int, got bool", id="bool-true"),
    pytest.param(False, "must be an int, got bool", id="bool-false"),
    pytest.param("403", "must be an int, got str", id="str"),
    pytest.param(403.0, "must be an int, got float", id="float"),
    pytest.param(None, "must be an int, got NoneType", id="none"),
    pytest.param(100, "1xx status is an interim response", id="100"),
    pytest.param(101, "101 would complete the WebSocket upgrade", id="101"),
    pytest.param(199, "1xx status", id="199"),
    pytest.param(99, r"200\.\.599, got 99 ", id="99"),
    pytest.param(0, r"200\.\.599, got 0 ", id="0"),
    pytest.param(-403, r"200\.\.599, got -403 ", id="negative"),
    pytest.param(600, r"200\.\.599, got 600 ", id="600"),
    pytest.param(1000, r"200\.\.599, got 1000 ", id="1000"),
]

INVALID_HEADERS = [
    pytest.param("x-a: 1", "iterable of \\(name, value\\) pairs, got str", id="str"),
    pytest.param(b"x-a: 1", "iterable of \\(name, value\\) pairs, got bytes", id="bytes"),
    pytest.param(42, "iterable of \\(name, value\\) pairs, got int", id="int"),
    pytest.param(None, "iterable of \\(name, value\\) pairs, got NoneType", id="none"),
    pytest.param([("x-a",)], "pair", id="one-item"),
    pytest.param([("x-a", "1", "2")], "pair", id="three-items"),
    pytest.param(["ab"], "pair", id="two-char-str"),
    pytest.param([(1, "v")], "name must be str or bytes, got int", id="int-name"),
    pytest.param([("x-a", 1)], "value must be str or bytes, got int", id="int-value"),
    pytest.param([("x-a", None)], "value must be str or bytes, got NoneType", id="none-value"),
    pytest.param([(bytearray(b"x"), "v")], "name must be str or bytes", id="bytearray-name"),
    pytest.param([("", "v")], "not a token", id="empty-name"),
    pytest.param([("x a", "v")], "not a token", id="space-in-name"),
    pytest.param([("x:a", "v")], "not a token", id="colon-in-name"),
    pytest.param([(":status", "200")], "not a token", id="pseudo-header"),
    pytest.param([("x-a\r\nx-b", "v")], "not a token", id="crlf-in-name"),
    pytest.param([("na\xefve", "v")], "not a token", id="non-ascii-name"),
    pytest.param([(b"x-\xff", b"v")], "not a token", id="obs-text-name"),
    pytest.param([("x-a", "1\r\nx-b: 2")], "CR, LF, NUL", id="crlf-value"),
    pytest.param([("x-a", "1\nx-b: 2")], "CR, LF, NUL", id="lf-value"),
    pytest.param([("x-a", "1\rx-b: 2")], "CR, LF, NUL", id="cr-value"),
    pytest.param([("x-a", "1\x00")], "CR, LF, NUL", id="nul-value"),
    pytest.param([("x-a", "1\x7f")], "CR, LF, NUL", id="del-value"),
    pytest.param([("x-a", "1\x0b2")], "CR, LF, NUL", id="vertical-tab-value"),
    pytest.param([(b"x-a", b"1\r\n 2")], "CR, LF, NUL", id="obs-fold-bytes"),
    pytest.param([("x-a", "1\r\n\t2")], "CR, LF, NUL", id="obs-fold-str"),
    pytest.param([("x-a", "1\x852")], "C1 control", id="nel-value"),
    pytest.param([("x-a", "1\u20282")], "not latin-1", id="line-separator-value"),
    pytest.param([("x-a", "1\u20292")], "not latin-1", id="paragraph-separator-value"),
    pytest.param([("x-a", "\u2603")], "not latin-1", id="snowman-value"),
    pytest.param([("x-a", " 1")], "leading or trailing whitespace", id="leading-space"),
    pytest.param([("x-a", "1\t")], "leading or trailing whitespace", id="trailing-tab"),
    pytest.param([("connection", "close")], "cannot be set on a denial", id="connection"),
    pytest.param([("Keep-Alive", "5")], "cannot be set on a denial", id="keep-alive"),
    pytest.param([("proxy-connection", "x")], "cannot be set on a denial", id="proxy-connection"),
    pytest.param([("Transfer-Encoding", "chunked")], "cannot be set", id="transfer-encoding"),
    pytest.param([("upgrade", "websocket")], "cannot be set on a denial", id="upgrade"),
    pytest.param([("Sec-WebSocket-Accept", "x")], "cannot be set", id="sec-websocket-accept"),
    pytest.param([(b"sec-websocket-protocol", b"chat")], "cannot be set", id="sec-ws-protocol"),
    pytest.param([("content-length", "3")], "does not match the body of 2 bytes", id="cl-wrong"),
    pytest.param([("content-length", "x")], "does not match", id="cl-not-a-number"),
    pytest.param([("content-length", "+2")], "does not match", id="cl-signed"),
    pytest.param([("content-length", "02")], "has leading zeros", id="cl-leading-zero"),
    pytest.param(
        [("content-length", "2"), ("Content-Length", "2")], "more than once", id="cl-twice"
    ),
]

INVALID_BODY = [
    pytest.param("no", "got str: encode it, or use Denial.text", id="str"),
    pytest.param(None, "got NoneType", id="none"),
    pytest.param(42, "got int", id="int"),
    pytest.param([110, 111], "got list", id="list"),
    pytest.param(b"x" * (64 * 1024 + 1), r"at most MAX_BODY_BYTES \(65536\) bytes", id="too-big"),
    pytest.param(
        bytearray(64 * 1024 + 1), r"at most MAX_BODY_BYTES \(65536\)", id="too-big-bytearray"
    ),
    pytest.param(
        memoryview(bytes(64 * 1024 + 1)), r"at most MAX_BODY_BYTES", id="too-big-memoryview"
    ),
]


async def assert_nothing_sent(core: ModuleType, match: str, **kwargs: Any) -> None:
    """The error is raised by the pure builder and by `deny`, with zero sends."""
    with pytest.raises(core.InvalidDenialError, match=match):
        core.denial_messages(websocket_scope(), **kwargs)
    send = Recorder()
    with pytest.raises(core.InvalidDenialError, match=match):
        await core.deny(websocket_scope(), send, **kwargs)
    assert send.calls == 0
    fallback_send = Recorder()
    with pytest.raises(core.InvalidDenialError, match=match):
        await core.deny(websocket_scope(extension=False), fallback_send, **kwargs)
    assert fallback_send.calls == 0


@pytest.mark.parametrize(("status", "match"), INVALID_STATUS)
async def test_invalid_status(core: ModuleType, status: Any, match: str) -> None:
    await assert_nothing_sent(core, match, status=status)
    with pytest.raises(core.InvalidDenialError, match=match):
        core.Denial(status)


@pytest.mark.parametrize(("headers", "match"), INVALID_HEADERS)
async def test_invalid_headers(core: ModuleType, headers: Any, match: str) -> None:
    await assert_nothing_sent(core, match, status=400, headers=headers, body=b"no")
    with pytest.raises(core.InvalidDenialError, match=match):
        core.Denial(400, headers, b"no")


@pytest.mark.parametrize(("body", "match"), INVALID_BODY)
async def test_invalid_body(core: ModuleType, body: Any, match: str) -> None:
    await assert_nothing_sent(core, match, status=400, body=body)


async def test_a_body_of_max_body_bytes_is_fine(core: ModuleType) -> None:
    assert len(core.Denial(400, (), b"x" * core.MAX_BODY_BYTES).body) == core.MAX_BODY_BYTES


@pytest.mark.parametrize("status", [204, 304])
async def test_no_content_statuses_refuse_a_body(core: ModuleType, status: int) -> None:
    await assert_nothing_sent(
        core, f"status {status} cannot carry a body", status=status, body=b"x"
    )


@pytest.mark.parametrize("status", [204, 304])
async def test_no_content_statuses_refuse_a_content_length(core: ModuleType, status: int) -> None:
    await assert_nothing_sent(
        core, "cannot carry a content-length", status=status, headers=[("content-length", "0")]
    )


async def test_205_refuses_a_body(core: ModuleType) -> None:
    """RFC 9110 section 15.3.6: a server MUST NOT generate content in a 205 response."""
    await assert_nothing_sent(core, "status 205 cannot carry a body", status=205, body=b"x")


def test_205_has_a_zero_content_length(core: ModuleType) -> None:
    assert core.Denial(205).headers == ((b"content-length", b"0"),)
    assert core.Denial(205, [("content-length", "0")]).headers == ((b"content-length", b"0"),)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"headers": [(b"x-a", LyingBytes(b" v "))]}, "whitespace", id="value"),
        pytest.param({"headers": [(b"x-a", LyingBytes(b"v\r\nx: y"))]}, "CR, LF", id="value-crlf"),
        pytest.param({"status": LyingInt(101)}, "101 would complete", id="status"),
        pytest.param({"status": LyingInt(1000)}, r"got 1000 ", id="status-range"),
    ],
)
async def test_subclasses_are_judged_by_their_content(
    core: ModuleType, kwargs: dict[str, Any], match: str
) -> None:
    await assert_nothing_sent(core, match, **kwargs)


def test_subclasses_are_sent_as_plain_values(core: ModuleType) -> None:
    denial = core.Denial(
        LyingInt(401), [(LyingBytes(b"X-A"), LyingBytes(b"v"))], LyingBytes(b"abc")
    )
    assert denial.status == 401
    assert type(denial.status) is int
    assert denial.headers == ((b"x-a", b"v"), (b"content-length", b"3"))
    assert all(type(item) is bytes for pair in denial.headers for item in pair)
    assert denial.body == b"abc"
    assert type(denial.body) is bytes


async def test_a_released_memoryview_body(core: ModuleType) -> None:
    body = memoryview(b"abc")
    body.release()
    await assert_nothing_sent(core, "body cannot be read", body=body)


def test_json_too_deep_to_encode(core: ModuleType) -> None:
    data: list[Any] = []
    for _ in range(100_000):
        data = [data]
    with pytest.raises(core.InvalidDenialError, match="cannot be encoded as JSON"):
        core.Denial.json(400, data)


@pytest.mark.parametrize("fallback", ["accept", "CLOSE", None, "", 0])
async def test_invalid_fallback(core: ModuleType, fallback: Any) -> None:
    """Refused even where the extension makes the fallback moot: the call is wrong either way."""
    await assert_nothing_sent(core, "fallback must be 'close' or 'raise'", fallback=fallback)


@pytest.mark.parametrize(
    ("scope", "match"),
    [
        pytest.param({"type": "http"}, "got 'http'", id="http"),
        pytest.param({"type": "lifespan"}, "got 'lifespan'", id="lifespan"),
        pytest.param({}, "got None", id="no-type"),
        pytest.param(["websocket"], "got 'list'", id="not-a-mapping"),
    ],
)
async def test_a_scope_that_is_not_a_websocket(core: ModuleType, scope: Any, match: str) -> None:
    with pytest.raises(core.InvalidDenialError, match=match):
        core.denial_messages(scope)
    send = Recorder()
    with pytest.raises(core.InvalidDenialError, match=match):
        await core.deny(scope, send)
    assert send.calls == 0


async def test_a_denial_with_headers_beside_it(core: ModuleType) -> None:
    send = Recorder()
    with pytest.raises(core.InvalidDenialError, match="belong to the Denial"):
        await core.deny(websocket_scope(), send, core.Denial(401), [("x-a", "1")])
    with pytest.raises(core.InvalidDenialError, match="belong to the Denial"):
        await core.deny(websocket_scope(), send, core.Denial(401), body=b"x")
    assert send.calls == 0


@pytest.mark.parametrize("empty", [(), [], {}, b"", bytearray()])
async def test_a_denial_with_nothing_beside_it(core: ModuleType, empty: Any) -> None:
    """Empty headers or body beside a Denial add nothing, whatever their type."""
    denial = core.Denial(401, body=b"no")
    send = Recorder()
    headers = b"" if isinstance(empty, (bytes, bytearray)) else empty
    body = empty if isinstance(empty, (bytes, bytearray)) else b""
    assert await core.deny(websocket_scope(), send, denial, headers, body) == "response"
    assert send.messages == core.denial_messages(websocket_scope(), denial, headers, body)
    assert send.messages[1]["body"] == b"no"


async def test_fallback_raise_sends_nothing(core: ModuleType) -> None:
    send = Recorder()
    with pytest.raises(core.DenialUnsupportedError):
        await core.deny(websocket_scope(extension=False), send, 401, fallback="raise")
    assert send.calls == 0


@pytest.mark.parametrize(
    ("build", "match"),
    [
        pytest.param(
            lambda core: core.Denial.text(400, b"bytes"), "text must be str", id="text-bytes"
        ),
        pytest.param(
            lambda core: core.Denial.text(400, "\ud800"), "UTF-8", id="text-lone-surrogate"
        ),
        pytest.param(lambda core: core.Denial.text(101, "x"), "1xx", id="text-101"),
        pytest.param(
            lambda core: core.Denial.text(400, "x", content_type="text/plain\r\nx: y"),
            "CR, LF, NUL",
            id="text-content-type-injection",
        ),
        pytest.param(
            lambda core: core.Denial.json(400, {"a": float("nan")}), "JSON", id="json-nan"
        ),
        pytest.param(lambda core: core.Denial.json(400, {"a": object()}), "JSON", id="json-object"),
        pytest.param(lambda core: core.Denial.json(400, {(1, 2): 1}), "JSON", id="json-tuple-key"),
        pytest.param(lambda core: core.Denial.json(204, {}), "cannot carry a body", id="json-204"),
    ],
)
def test_invalid_constructor_input(core: ModuleType, build: Any, match: str) -> None:
    with pytest.raises(core.InvalidDenialError, match=match):
        build(core)


def test_the_error_family(core: ModuleType) -> None:
    assert issubclass(core.InvalidDenialError, core.DenyError)
    assert issubclass(core.InvalidDenialError, ValueError)
    assert issubclass(core.DenialUnsupportedError, core.DenyError)
    assert issubclass(core.DenialUnsupportedError, RuntimeError)
    assert not issubclass(core.DenialUnsupportedError, ValueError)


class AlwaysEqual(str):
    """A str that claims to equal anything: it must never be taken for a checked header."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("x-a")


def test_checked_headers_are_remembered_by_exact_type(core: ModuleType) -> None:
    """The pair cache keeps str and bytes apart and never trusts a subclass's equality."""
    assert core.Denial(401, [("x-a", "1")]).headers[0] == (b"x-a", b"1")
    assert core.Denial(401, [(b"x-a", b"1")]).headers[0] == (b"x-a", b"1")
    with pytest.raises(core.InvalidDenialError, match="not a token"):
        core.Denial(401, [(AlwaysEqual("x-a\r\nx-b"), "1")])
    with pytest.raises(core.InvalidDenialError, match="CR, LF, NUL"):
        core.Denial(401, [("x-a", AlwaysEqual("1\r\nx-b: 2"))])


def test_many_distinct_headers_stay_correct(core: ModuleType) -> None:
    """Every pair is checked and emitted as given, however many distinct pairs came before."""
    for number in range(1500):
        denial = core.Denial(401, [(f"x-{number}", str(number))])
        assert denial.headers[0] == (f"x-{number}".encode(), str(number).encode())
    with pytest.raises(core.InvalidDenialError):
        core.Denial(401, [("x-1", "1\n")])


HEADERS = (("www-authenticate", "Bearer"), (b"x-a", "1"))


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        pytest.param(401, HEADERS, b"no", id="tuple"),
        pytest.param(401, list(HEADERS), b"no", id="list"),
        pytest.param(401, dict(HEADERS), b"no", id="mapping"),
        pytest.param(401, ((AlwaysEqual("x-a"), "1"),), b"no", id="str-subclass"),
        pytest.param(401, HEADERS, bytearray(b"no"), id="bytearray"),
        pytest.param(401, HEADERS, b"x" * 5000, id="large-body"),
        pytest.param(HTTPStatus.UNAUTHORIZED, HEADERS, b"no", id="int-subclass"),
    ],
)
def test_the_same_input_gives_equal_denials(
    core: ModuleType, status: Any, headers: Any, body: Any
) -> None:
    first = core.as_denial(status, headers, body)
    assert core.as_denial(status, headers, body) == first


def test_a_denial_given_alone_is_itself(core: ModuleType) -> None:
    denial = core.Denial(401)
    assert core.as_denial(denial) is denial
    with pytest.raises(core.InvalidDenialError, match="belong to the Denial"):
        core.as_denial(denial, HEADERS)


def test_a_refused_input_is_refused_every_time(core: ModuleType) -> None:
    for _ in range(2):
        with pytest.raises(core.InvalidDenialError):
            core.as_denial(401, (("x-a", "1\r\n"),), b"")


def test_deny_sends_what_each_call_was_given(core: ModuleType) -> None:
    """A status seen before with other headers or body, or an equal int of another type:
    what is sent is always what this call was given."""
    sent = []
    for status, headers, body in [
        (401, HEADERS, b"first"),
        (401, HEADERS, b"second"),
        (401, HEADERS[:1], b"second"),
        (401, HEADERS[:1], b"second"),
        (HTTPStatus.UNAUTHORIZED, HEADERS, b"third"),
    ]:
        send = Recorder()
        assert drive(core.deny(websocket_scope(), send, status, headers, body)) == "response"
        start, final = send.messages
        sent.append((start["status"], len(start["headers"]), final["body"]))
    assert sent == [
        (401, 3, b"first"),
        (401, 3, b"second"),
        (401, 2, b"second"),
        (401, 2, b"second"),
        (401, 3, b"third"),
    ]
    with pytest.raises(core.InvalidDenialError):
        drive(core.deny(websocket_scope(), Recorder(), 401.0, HEADERS[:1], b"second"))

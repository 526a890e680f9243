"""Property tests: any input gives a spec-valid message sequence or raises before sending."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_ws_deny import EXTENSION
from tests.helpers import (
    LyingBytes,
    LyingInt,
    LyingStr,
    Recorder,
    drive,
    forbidden_receive,
    websocket_scope,
)

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
FORBIDDEN = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHARS = "".join(chr(c) for c in range(0x21, 0x7F)) + "".join(chr(c) for c in range(0xA0, 0x100))
NASTY = "\r\n\x00\x0b\x7f\x85\u2028\u2029\t :"


names = st.one_of(
    st.text(alphabet=TCHARS + NASTY + "\xe9", max_size=12),
    st.binary(max_size=12),
    st.binary(max_size=12).map(LyingBytes),
    st.text(alphabet=TCHARS + NASTY, max_size=12).map(LyingStr),
    st.sampled_from(["content-length", "Connection", "sec-websocket-key", "Set-Cookie"]),
    st.integers(),
    st.none(),
)
values = st.one_of(
    st.text(alphabet=VCHARS + NASTY + "\u2603", max_size=16),
    st.binary(max_size=16),
    st.binary(max_size=16).map(LyingBytes),
    st.text(alphabet=VCHARS + NASTY, max_size=16).map(LyingStr),
    st.integers(min_value=0, max_value=100).map(str),
    st.integers(),
    st.none(),
)
headers = st.one_of(
    st.lists(st.tuples(names, values), max_size=5),
    st.lists(st.lists(names, max_size=3), max_size=2),
    st.dictionaries(st.text(alphabet=TCHARS, min_size=1, max_size=8), values, max_size=3),
    st.text(max_size=5),
    st.none(),
)
statuses = st.one_of(
    st.integers(min_value=-5, max_value=1005),
    st.integers(min_value=-5, max_value=1005).map(LyingInt),
    st.sampled_from([101, 199, 200, 204, 304, 403, 599, 600, True]),
    st.floats(allow_nan=False),
    st.text(max_size=3),
)
bodies = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(LyingBytes),
    st.binary(max_size=8).map(bytearray),
    st.binary(max_size=8).map(memoryview),
    st.text(max_size=4),
    st.none(),
)
fallbacks = st.sampled_from(["close", "raise", "accept", None])


def assert_spec_valid(messages: list[Any], scope: dict[str, Any]) -> None:
    if len(messages) == 1:
        assert messages == [{"type": "websocket.close", "code": 1008, "reason": ""}]
        assert not scope["extensions"]
        return
    start, final = messages
    assert set(start) == {"type", "status", "headers"}
    assert start["type"] == "websocket.http.response.start"
    assert type(start["status"]) is int
    assert 200 <= start["status"] <= 599
    assert final == {
        "type": "websocket.http.response.body",
        "body": final["body"],
        "more_body": False,
    }
    assert type(final["body"]) is bytes
    lengths = []
    for name, value in start["headers"]:
        assert type(name) is bytes
        assert type(value) is bytes
        assert TOKEN.fullmatch(name), name
        assert name not in FORBIDDEN
        assert not name.startswith(b"sec-websocket-")
        assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value), value
        assert value == value.strip(b" \t")
        if name == b"content-length":
            lengths.append(value)
    if start["status"] in (204, 304):
        assert lengths == []
        assert final["body"] == b""
    else:
        if start["status"] == 205:
            assert final["body"] == b""
        assert lengths == [str(len(final["body"])).encode()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    extension=st.booleans(),
    http2=st.booleans(),
    status=statuses,
    headers=headers,
    body=bodies,
    fallback=fallbacks,
)
def test_any_input_is_a_valid_denial_or_an_error_before_sending(
    core: ModuleType,
    extension: bool,
    http2: bool,
    status: Any,
    headers: Any,
    body: Any,
    fallback: Any,
) -> None:
    scope = websocket_scope(extension=extension, http_version="2" if http2 else "1.1")
    send = Recorder()
    try:
        outcome = drive(core.deny(scope, send, status, headers, body, fallback=fallback))
    except (core.InvalidDenialError, core.DenialUnsupportedError):
        assert send.calls == 0
        return
    assert outcome == ("response" if extension else "close")
    assert_spec_valid(send.messages, scope)


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(alphabet=TCHARS, min_size=1, max_size=12).filter(
        lambda n: (
            n.lower().encode() not in FORBIDDEN
            and not n.lower().startswith("sec-websocket-")
            and n.lower() != "content-length"
        )
    ),
    value=st.text(alphabet=VCHARS + " \t", max_size=16),
    body=st.binary(max_size=64),
)
def test_subclasses_that_lie_are_judged_and_sent_by_their_content(
    core: ModuleType, name: str, value: str, body: bytes
) -> None:
    headers = [(LyingBytes(name.encode()), LyingBytes(value.encode("latin-1")))]
    send = Recorder()
    try:
        drive(core.deny(websocket_scope(), send, LyingInt(401), headers, LyingBytes(body)))
    except core.InvalidDenialError:
        # LyingInt claims 101: only the value it holds, 401, may decide; so the one reason left
        # to refuse is whitespace around the value, whatever strip() says.
        assert value != value.strip(" \t")
        assert send.calls == 0
        return
    assert value == value.strip(" \t")
    assert_spec_valid(send.messages, websocket_scope())
    start, final = send.messages
    assert start["status"] == 401
    assert start["headers"] == [
        (name.lower().encode(), value.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
    ]
    assert final["body"] == body


valid_headers = st.lists(
    st.tuples(
        st.text(alphabet=TCHARS, min_size=1, max_size=12).filter(
            lambda n: (
                n.lower() not in {f.decode() for f in FORBIDDEN}
                and not n.lower().startswith("sec-websocket-")
                and n.lower() != "content-length"
            )
        ),
        st.text(alphabet=VCHARS + " \t", max_size=16).map(lambda v: v.strip(" \t")),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.integers(min_value=200, max_value=599).filter(lambda s: s not in (204, 205, 304)),
    headers=valid_headers,
    body=st.binary(max_size=256),
)
def test_every_valid_input_is_sent_as_given(
    core: ModuleType, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    send = Recorder()
    assert drive(core.deny(websocket_scope(), send, status, headers, body)) == "response"
    start, final = send.messages
    expected = [(n.lower().encode(), v.encode("latin-1")) for n, v in headers]
    assert start["headers"] == [*expected, (b"content-length", str(len(body)).encode())]
    assert start["status"] == status
    assert final["body"] == body


class Mapped(Mapping[str, Any]):
    """A scope or extensions mapping that is not a dict: the general path, never the fast one."""

    def __init__(self, items: dict[str, Any]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


extensions = st.sampled_from(["listed", "empty", "none", "missing", "mapping", "list"])
scope_kinds = st.sampled_from(["websocket", "http", None])


def a_scope(extension: str, kind: str | None, http2: bool, as_mapping: bool) -> Any:
    scope = websocket_scope(http_version="2" if http2 else "1.1")
    scope["extensions"] = {
        "listed": {EXTENSION: {}},
        "empty": {},
        "none": None,
        "mapping": Mapped({EXTENSION: {}}),
        "list": [EXTENSION],
    }.get(extension)
    if extension == "missing":
        del scope["extensions"]
    if kind is None:
        del scope["type"]
    else:
        scope["type"] = kind
    return Mapped(scope) if as_mapping else scope


def outcome_of(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "sent", call()
    except Exception as exc:  # the type is compared, whatever it is
        return "raised", type(exc)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    extension=extensions,
    kind=scope_kinds,
    http2=st.booleans(),
    as_mapping=st.booleans(),
    status=st.one_of(st.sampled_from([200, 204, 299, 401, 403, 429, 500, 599]), statuses),
    headers=st.one_of(st.just(()), st.just((("www-authenticate", "Bearer"),)), headers),
    body=st.one_of(st.just(b""), st.just(b'{"error":"no"}'), bodies),
    fallback=fallbacks,
    repeat=st.booleans(),
)
def test_deny_and_the_application_send_exactly_the_messages_of_denial_messages(
    core: ModuleType,
    extension: str,
    kind: str | None,
    http2: bool,
    as_mapping: bool,
    status: Any,
    headers: Any,
    body: Any,
    fallback: Any,
    repeat: bool,
) -> None:
    """`deny` and `Denial.__call__` write the common case out; they must agree with the builder.

    Every scope shape (dict or other mapping, extension listed or not or malformed, another
    type, HTTP/2), every input and fallback, and a second call with the same objects (which
    finds the first call's Denial again) give the same messages, or the same error.
    """
    scope = a_scope(extension, kind, http2, as_mapping)
    expected = outcome_of(
        lambda: core.denial_messages(scope, status, headers, body, fallback=fallback)
    )
    for _ in range(2 if repeat else 1):
        send = Recorder()
        got = outcome_of(
            lambda send=send: drive(
                core.deny(scope, send, status, headers, body, fallback=fallback)
            )
        )
        if expected[0] == "raised":
            assert got == expected
            assert send.calls == 0
            continue
        assert got == ("sent", "close" if len(expected[1]) == 1 else "response")
        assert send.messages == expected[1]
    denial = outcome_of(lambda: core.Denial(status, headers, body))
    if denial[0] == "sent":
        application = Recorder()
        messages = outcome_of(lambda: denial[1].messages(scope))
        ran = outcome_of(lambda: drive(denial[1](scope, forbidden_receive, application)))
        if messages[0] == "raised":
            assert ran == messages
            assert application.calls == 0
        else:
            assert ran == ("sent", None)
            assert application.messages == messages[1]

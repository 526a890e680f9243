"""Property tests over every input of `deny`, `denial_messages`, `Denial` (its constructors and its
use as an application) and `WebSocketGuard`: any input either gives a spec-valid sequence or
raises before anything is sent.

`tests/test_core_properties.py` covers `deny` with loose arguments on a well-formed scope; these
add what it leaves out: any scope (missing or odd ``type``, ``extensions`` and
``http_version``, not a mapping at all), a prebuilt `Denial` (alone or with stray arguments),
the text and JSON constructors with any text, content type and data, a ``send`` that fails at
any call, the value semantics of `Denial`, and the guard with any options, check and application
behaviour. The expected messages come from a model written here, not from the code under test.

Nothing here suspends (the recording ``send`` never does), so the coroutines are driven without
an event loop, as in `tests/test_core_properties.py`; the event-loop behaviour is tested under
asyncio and trio elsewhere.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
from collections.abc import Coroutine, Mapping
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from asgi_ws_deny import EXTENSION
from tests.helpers import Recorder, drive, forbidden_receive
from tests.test_core_properties import bodies, headers, statuses, valid_headers

CLOSE = {"type": "websocket.close", "code": 1008, "reason": ""}
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- scopes ----------------------------------------------------------------------------------

MISSING = object()
extension_values = st.sampled_from(
    [
        MISSING,
        None,
        {},
        {EXTENSION: {}},
        {EXTENSION: None},
        {"websocket.http.response.other": {}},
        [EXTENSION],
        EXTENSION,
        (),
    ]
)
scope_types = st.sampled_from([MISSING, "websocket", "http", "lifespan", None, "WebSocket", 1])
http_versions = st.sampled_from([MISSING, "1.1", "2", "1.0", None, 2])


@st.composite
def scopes(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from([None, [], "websocket", 1, [("type", "websocket")]]))
    scope: dict[str, Any] = {"path": "/ws", "headers": [], "subprotocols": []}
    for key, strategy in (
        ("type", scope_types),
        ("extensions", extension_values),
        ("http_version", http_versions),
    ):
        value = draw(strategy)
        if value is not MISSING:
            scope[key] = value
    return scope


def is_websocket(scope: Any) -> bool:
    return isinstance(scope, Mapping) and scope.get("type") == "websocket"


def listed(scope: Mapping[str, Any]) -> bool:
    extensions = scope.get("extensions")
    return isinstance(extensions, Mapping) and EXTENSION in extensions


def expected_messages(scope: Any, denial: Any, fallback: Any) -> list[Any] | None:
    """What the helpers must send for a valid ``denial``, or None when they must refuse."""
    if fallback not in ("close", "raise") or not is_websocket(scope):
        return None
    if listed(scope):
        # A 2xx answer opens the tunnel over HTTP/2 and HTTP/3 (RFC 8441, RFC 9220); the close
        # fallback cannot.
        if 200 <= denial.status <= 299 and scope.get("http_version") in ("2", "3"):
            return None
        return [
            {
                "type": "websocket.http.response.start",
                "status": denial.status,
                "headers": list(denial.headers),
            },
            {"type": "websocket.http.response.body", "body": denial.body, "more_body": False},
        ]
    return [CLOSE] if fallback == "close" else None


fallbacks = st.sampled_from(["close", "raise", "accept", None])
calls = st.sampled_from(["deny", "deny-denial", "denial_messages", "application"])


# --- the core --------------------------------------------------------------------------------


@SETTINGS
@given(
    scope=scopes(),
    call=calls,
    status=statuses,
    headers=headers,
    body=bodies,
    fallback=fallbacks,
    stray=st.sampled_from([None, ("headers", [("x", "y")]), ("body", b"x")]),
)
def test_any_scope_and_input_give_the_model_messages_or_an_error_before_sending(
    core: ModuleType,
    scope: Any,
    call: str,
    status: Any,
    headers: Any,
    body: Any,
    fallback: Any,
    stray: Any,
) -> None:
    errors = (core.InvalidDenialError, core.DenialUnsupportedError)
    try:
        denial = core.Denial(status, headers, body)
    except core.InvalidDenialError:
        denial = None
    if call == "application":
        fallback = "close"
    send = Recorder()
    try:
        if call == "deny":
            outcome = drive(core.deny(scope, send, status, headers, body, fallback=fallback))
        elif call == "deny-denial":
            assume(denial is not None)
            extra = {} if stray is None else {stray[0]: stray[1]}
            outcome = drive(core.deny(scope, send, denial, **extra, fallback=fallback))
        elif call == "denial_messages":
            for message in core.denial_messages(scope, status, headers, body, fallback=fallback):
                drive(send(message))
            outcome = None
        else:
            assume(denial is not None)
            outcome = drive(denial(scope, forbidden_receive, send))
    except errors as raised:
        error: Exception | None = raised
    else:
        error = None
    if error is not None:
        assert send.calls == 0, f"{error!r} raised after sending {send.messages}"
        if denial is not None and not (call == "deny-denial" and stray is not None):
            assert expected_messages(scope, denial, fallback) is None, error
        return
    assert denial is not None, "an input that Denial refuses was sent"
    assert not (call == "deny-denial" and stray is not None), "stray arguments were ignored"
    expected = expected_messages(scope, denial, fallback)
    assert send.messages == expected
    if call in ("deny", "deny-denial"):
        assert outcome == ("close" if expected == [CLOSE] else "response")


@SETTINGS
@given(
    extension=st.booleans(),
    status=st.integers(200, 599).filter(lambda s: s not in (204, 205, 304)),
    headers=valid_headers,
    body=st.binary(max_size=32),
    fail_at=st.integers(1, 3),
    error=st.sampled_from([OSError, ConnectionResetError, BrokenPipeError, ConnectionAbortedError]),
)
def test_a_send_that_fails_at_any_call_leaves_a_valid_prefix(
    core: ModuleType,
    extension: bool,
    status: int,
    headers: Any,
    body: bytes,
    fail_at: int,
    error: type[OSError],
) -> None:
    scope = {"type": "websocket", "extensions": {EXTENSION: {}} if extension else {}}
    denial = core.Denial(status, headers, body)
    messages = expected_messages(scope, denial, "close")
    assert messages is not None

    delivered: list[Any] = []
    calls = 0

    async def send(message: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == fail_at:
            raise error("client left")
        delivered.append(message)

    outcome = drive(core.deny(scope, send, denial))
    if fail_at <= len(messages):
        assert outcome == "disconnected"
        assert delivered == messages[: fail_at - 1]
        assert calls == fail_at
    else:
        assert outcome == ("response" if extension else "close")
        assert delivered == messages


@SETTINGS
@given(
    status=statuses,
    text=st.one_of(st.text(max_size=40), st.binary(max_size=4), st.none()),
    headers=headers,
    content_type=st.one_of(
        st.just("text/plain; charset=utf-8"),
        st.text(max_size=20),
        st.binary(max_size=8),
    ),
)
def test_text_denials_carry_the_text_as_utf8_and_one_content_type(
    core: ModuleType, status: Any, text: Any, headers: Any, content_type: Any
) -> None:
    try:
        denial = core.Denial.text(status, text, headers, content_type=content_type)
    except core.InvalidDenialError:
        return
    assert isinstance(text, str)
    assert denial.body == text.encode("utf-8")
    names = [name for name, _ in denial.headers]
    assert names.count(b"content-type") == 1
    assert names.count(b"content-length") == (0 if denial.status in (204, 304) else 1)


json_data = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=4),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
        st.dictionaries(st.integers(), children, max_size=2),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=8,
)


def _json_safe(data: Any) -> bool:
    if isinstance(data, float):
        return math.isfinite(data)
    if isinstance(data, (bytes, frozenset)):
        return False
    if isinstance(data, str):
        # Lone surrogates cannot be encoded as UTF-8.
        return all(not 0xD800 <= ord(c) <= 0xDFFF for c in data)
    if isinstance(data, list):
        return all(_json_safe(item) for item in data)
    if isinstance(data, dict):
        return all(_json_safe(key) for key in data) and all(map(_json_safe, data.values()))
    return True


@SETTINGS
@given(status=st.integers(200, 599).filter(lambda s: s not in (204, 205, 304)), data=json_data)
def test_json_denials_round_trip_or_refuse(core: ModuleType, status: int, data: Any) -> None:
    try:
        denial = core.Denial.json(status, data)
    except core.InvalidDenialError:
        assert not _json_safe(data)
        return
    assert _json_safe(data)
    decoded = json.loads(denial.body.decode("utf-8"))
    # Integer keys come back as strings; everything else exactly.
    assert decoded == json.loads(json.dumps(data))
    assert (b"content-type", b"application/json") in denial.headers


@SETTINGS
@given(
    status=st.integers(200, 599).filter(lambda s: s not in (204, 205, 304)),
    headers=valid_headers,
    body=st.binary(max_size=32),
)
def test_a_denial_is_a_value(core: ModuleType, status: int, headers: Any, body: bytes) -> None:
    denial = core.Denial(status, headers, body)
    for twin in (
        pickle.loads(pickle.dumps(denial)),
        copy.copy(denial),
        copy.deepcopy(denial),
        core.Denial(denial.status, denial.headers, denial.body),
    ):
        assert twin == denial
        assert hash(twin) == hash(denial)
    scope = {"type": "websocket", "extensions": {EXTENSION: {}}}
    first = denial.messages(scope)
    # What a server does with the messages it was given cannot change the denial.
    first[0]["headers"].append((b"x-server", b"added"))
    first[0]["status"] = 500
    first[1]["body"] = b"changed"
    assert denial.messages(scope) == expected_messages(scope, denial, "close")
    with pytest.raises(AttributeError):
        denial.status = 500


# --- the guard -------------------------------------------------------------------------------

ACCEPT: dict[str, Any] = {"type": "websocket.accept", "subprotocol": None, "headers": []}
DATA: dict[str, Any] = {"type": "websocket.send", "bytes": None, "text": "data"}
APP_CLOSE: dict[str, Any] = {"type": "websocket.close", "code": 1000, "reason": ""}
START: dict[str, Any] = {"type": "websocket.http.response.start", "status": 404, "headers": []}
START_101: dict[str, Any] = {"type": "websocket.http.response.start", "status": 101, "headers": []}
PART: dict[str, Any] = {"type": "websocket.http.response.body", "body": b"a", "more_body": True}
FINAL: dict[str, Any] = {"type": "websocket.http.response.body", "body": b"b", "more_body": False}
APP_MESSAGES: list[dict[str, Any]] = [
    ACCEPT,
    DATA,
    APP_CLOSE,
    START,
    START_101,
    PART,
    FINAL,
    {"type": "websocket.x"},
]


def assert_valid_sequence(messages: list[Any], *, extension: bool, complete: bool) -> None:
    """ASGI WebSocket and its denial-response extension, as a state machine."""
    state = "connecting"
    for message in messages:
        kind = message["type"]
        assert state not in ("denied", "closed"), f"{kind} after the end: {messages}"
        if state == "connecting":
            if kind == "websocket.accept":
                assert message["subprotocol"] is None or isinstance(message["subprotocol"], str)
                state = "open"
            elif kind == "websocket.close":
                state = "denied"
            elif kind == "websocket.http.response.start":
                assert extension, f"a response start without the extension: {messages}"
                status = message["status"]
                assert type(status) is int
                assert 200 <= status <= 599
                state = "responding"
            else:
                raise AssertionError(f"{kind} before the handshake: {messages}")
        elif state == "responding":
            assert kind == "websocket.http.response.body", messages
            assert isinstance(message["body"], bytes)
            if not message.get("more_body", False):
                state = "denied"
        elif state == "open":
            assert kind in ("websocket.send", "websocket.close"), messages
            if kind == "websocket.close":
                code = message["code"]
                assert code in (1000, 1008) or 3000 <= code <= 4999, message
                reason = message.get("reason") or ""
                assert len(reason.encode("utf-8")) <= 123, message
                state = "closed"
    if complete:
        assert state in ("open", "closed", "denied"), f"unfinished: {messages}"


@st.composite
def guard_options(draw: st.DrawFn) -> dict[str, Any]:
    from asgi_ws_deny import Denial

    options: dict[str, Any] = {}
    choices: dict[str, list[Any]] = {
        "fallback": ["close", "raise", "accept"],
        "browser_policy": ["never", "origin", "always", "browser"],
        "error_denial": [Denial(503), Denial.text(500, "oops"), 500],
        "no_handshake_denial": [Denial(404), Denial(200), "403"],
        "close_codes": [
            {401: 4401},
            {401: 1006},
            lambda status: 4000 + status,
            lambda status: 1005,
            lambda status: 1 / 0,
            42,
        ],
    }
    for name, values in choices.items():
        if draw(st.booleans()):
            options[name] = draw(st.sampled_from(values))
    return options


@st.composite
def checks(draw: st.DrawFn) -> Any:
    from asgi_ws_deny import Denial, Denied

    kind = draw(st.sampled_from(["none", "returns", "raises"]))
    if kind == "none":
        return None
    value: Any = draw(
        st.sampled_from(
            [None, Denial(401), Denial(200), Denial.json(429, {"e": 1}), False, True, "no"]
            if kind == "returns"
            else [Denied(403, reason="x" * 200), Denied(401), RuntimeError("boom"), KeyError()]
        )
    )
    is_async = draw(st.booleans())

    def check(handshake: Any) -> Any:
        if kind == "raises":
            raise value
        return value

    async def async_check(handshake: Any) -> Any:
        return check(handshake)

    return async_check if is_async else check


steps = st.one_of(
    st.tuples(st.just("send"), st.sampled_from(APP_MESSAGES)),
    st.tuples(st.just("denied"), st.sampled_from([401, 404, 200])),
    st.tuples(st.just("raise"), st.just("boom")),
)


@SETTINGS
@given(
    options=guard_options(),
    check=checks(),
    script=st.lists(steps, max_size=5),
    extension=st.booleans(),
    http2=st.booleans(),
    origin=st.booleans(),
    subprotocols=st.sampled_from([[], ["chat"], ["a", "b"]]),
)
def test_the_guard_sends_a_valid_sequence_or_raises_before_sending(
    options: dict[str, Any],
    check: Any,
    script: list[tuple[str, Any]],
    extension: bool,
    http2: bool,
    origin: bool,
    subprotocols: list[str],
) -> None:
    from asgi_ws_deny import Denied, DenyError, WebSocketGuard

    app_calls = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal app_calls
        app_calls += 1
        for step, value in script:
            if step == "send":
                await send(value)
            elif step == "denied":
                raise Denied(value, reason="denied by the app")
            else:
                raise RuntimeError(value)

    try:
        guard = WebSocketGuard(app, check, **options)
    except DenyError:
        return  # a bad option is refused at construction, long before any handshake
    scope: dict[str, Any] = {
        "type": "websocket",
        "http_version": "2" if http2 else "1.1",
        "path": "/ws",
        "headers": [(b"origin", b"http://127.0.0.1")] if origin else [],
        "subprotocols": subprotocols,
        "extensions": {EXTENSION: {}} if extension else {},
    }
    send = Recorder()
    try:
        drive(guard(scope, forbidden_receive, send))
    except Exception:
        # Raised to the server (an app error, a refused message, fallback="raise"): what was
        # sent before must still be a valid beginning.
        assert_valid_sequence(send.messages, extension=extension, complete=False)
        completed = False
    else:
        assert_valid_sequence(send.messages, extension=extension, complete=True)
        completed = True
    # Admitted exactly when there is no check or it returned None.
    assert bool(app_calls) is (check is None or drive_check(check) is None)
    if not completed and not app_calls:
        # A refusal raised to the server only where it cannot be sent: fallback="raise" with
        # no extension, before anything went out.
        assert not send.messages
    accepted = any(message["type"] == "websocket.accept" for message in send.messages)
    if accepted and not app_calls:
        # Only the browser-visible policy accepts a refused handshake, and it closes at once.
        assert send.messages[-1]["type"] == "websocket.close"
        assert [message["type"] for message in send.messages].count("websocket.send") == 0


def drive_check(check: Any) -> Any:
    """What a generated check gives: its value, or the exception it raises."""
    try:
        result = check(None)
        if isinstance(result, Coroutine):
            result = drive(result)
    except Exception as error:
        return error
    return result

"""WebSocketGuard: the check before the handshake, pass-through, the view, the options."""

from __future__ import annotations

import builtins
import enum
import logging
import sys
import types
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import pytest

from asgi_ws_deny import (
    Check,
    Denial,
    DenialUnsupportedError,
    Denied,
    Handshake,
    InvalidDenialError,
    MultiMap,
    WebSocketGuard,
    default_close_code,
)
from asgi_ws_deny import handshake as handshake_module
from asgi_ws_deny.testing import handshake
from tests.helpers import Recorder, exception_group, forbidden_receive, websocket_scope

pytestmark = pytest.mark.anyio

NOT_FOUND = Denial.json(404, {"message": "User not allowed"})
SECRET = "the check's secret detail"


class Endpoint:
    """An app that accepts, says hello and closes, and remembers whether it was called."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        await send({"type": "websocket.send", "bytes": None, "text": "hello"})
        await send({"type": "websocket.close", "code": 1000, "reason": ""})


# --- What a check decides -------------------------------------------------------------------


def returning(value: object) -> Any:
    def check(handshake: Handshake) -> object:
        return value

    return check


def returning_async(value: object) -> Any:
    async def check(handshake: Handshake) -> object:
        return value

    return check


def raising(exc: BaseException) -> Any:
    def check(handshake: Handshake) -> object:
        raise exc

    return check


def raising_async(exc: BaseException) -> Any:
    async def check(handshake: Handshake) -> object:
        raise exc

    return check


# (check, admitted, status the client sees with the extension, body, logged at)
CHECKS = [
    pytest.param(returning(None), True, 101, b"", None, id="sync-none-admits"),
    pytest.param(returning_async(None), True, 101, b"", None, id="async-none-admits"),
    pytest.param(returning(NOT_FOUND), False, 404, NOT_FOUND.body, None, id="sync-denial"),
    pytest.param(returning_async(NOT_FOUND), False, 404, NOT_FOUND.body, None, id="async-denial"),
    pytest.param(raising(Denied(401, body=b"who?")), False, 401, b"who?", None, id="raises-denied"),
    pytest.param(
        raising_async(Denied(NOT_FOUND)), False, 404, NOT_FOUND.body, None, id="async-denied"
    ),
    pytest.param(raising(RuntimeError(SECRET)), False, 500, b"", logging.ERROR, id="raises-error"),
    pytest.param(
        raising_async(KeyError(SECRET)), False, 500, b"", logging.ERROR, id="async-raises-error"
    ),
    pytest.param(returning(False), False, 500, b"", logging.ERROR, id="returns-false"),
    pytest.param(returning(True), False, 500, b"", logging.ERROR, id="returns-true"),
    pytest.param(returning_async(0), False, 500, b"", logging.ERROR, id="returns-zero"),
    pytest.param(returning(403), False, 500, b"", logging.ERROR, id="returns-a-status"),
    pytest.param(returning(Denied(403)), False, 500, b"", logging.ERROR, id="returns-denied"),
]


@pytest.mark.parametrize(("check", "admitted", "status", "body", "logged"), CHECKS)
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_the_check_admits_only_on_none(
    check: Check,
    admitted: bool,
    status: int,
    body: bytes,
    logged: int | None,
    extension: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = Endpoint()
    guard = WebSocketGuard(endpoint, check)
    with caplog.at_level(logging.DEBUG, logger="asgi_ws_deny"):
        result = await handshake(guard, "/ws", extension=extension)
    assert endpoint.calls == (1 if admitted else 0)
    assert result.accepted is admitted
    if admitted:
        assert result.data == ("hello",)
    elif extension:
        assert (result.status, result.body) == (status, body)
    else:
        # Without the extension every denial is the fallback close, which the server answers
        # with 403 whatever status was asked for.
        assert result.status == 403
        assert result.messages == ({"type": "websocket.close", "code": 1008, "reason": ""},)
    assert SECRET.encode() not in result.body
    records = [r for r in caplog.records if r.name == "asgi_ws_deny" and r.levelno >= logging.INFO]
    if logged is None:
        assert records == []
    else:
        assert [r.levelno for r in records] == [logged]
        assert "/ws" in records[0].getMessage()


async def test_a_failing_check_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = WebSocketGuard(Endpoint(), raising(ZeroDivisionError(SECRET)))
    with caplog.at_level(logging.ERROR, logger="asgi_ws_deny"):
        result = await handshake(guard, "/private")
    assert result.status == 500
    (record,) = caplog.records
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ZeroDivisionError)
    assert "/private" in record.getMessage()


async def test_a_check_raising_a_group_of_denied_denies_with_it() -> None:
    group = exception_group(Denied(429))
    guard = WebSocketGuard(Endpoint(), raising(group))
    assert (await handshake(guard)).status == 429


async def test_a_group_of_the_backport_counts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.10 has no built-in groups; trio and anyio raise those of the exceptiongroup
    backport there. On 3.10 this is the real backport; later, the built-in type stands in for
    it, so the 3.10 lookup runs on every Python."""
    if sys.version_info >= (3, 11):
        backport = types.ModuleType("exceptiongroup")
        backport.BaseExceptionGroup = vars(builtins)["BaseExceptionGroup"]  # type: ignore[attr-defined]
        monkeypatch.setattr(handshake_module, "_EXCEPTION_GROUP", None)
        monkeypatch.setitem(sys.modules, "exceptiongroup", backport)
    group = exception_group(Denied(429))
    assert (await handshake(WebSocketGuard(Endpoint(), raising(group)))).status == 429

    async def accepts_then_raises(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise group

    assert (await handshake(WebSocketGuard(accepts_then_raises))).close_code == 4429


async def test_the_error_denial_is_configurable() -> None:
    teapot = Denial.text(503, "try later")
    guard = WebSocketGuard(Endpoint(), raising(RuntimeError()), error_denial=teapot)
    result = await handshake(guard)
    assert (result.status, result.body) == (503, b"try later")


async def test_the_check_sees_the_handshake() -> None:
    seen: list[Handshake] = []

    def check(handshake: Handshake) -> None:
        seen.append(handshake)

    await handshake(
        WebSocketGuard(Endpoint(), check),
        "/ws/room%201?a=1&a=2&b=",
        headers=[("Cookie", "sid=abc; theme=dark"), ("X-Trace", "1"), ("x-trace", "2")],
        subprotocols=["graphql-transport-ws", "chat"],
    )
    (view,) = seen
    assert view.path == "/ws/room 1"
    assert view.query_string == b"a=1&a=2&b="
    assert (view.query["a"], view.query.getall("a"), view.query["b"]) == ("1", ("1", "2"), "")
    assert view.headers["X-TRACE"] == "1"
    assert view.headers.getall("x-trace") == ("1", "2")
    assert view.cookies == {"sid": "abc", "theme": "dark"}
    assert view.subprotocols == ("graphql-transport-ws", "chat")
    assert view.client == ("127.0.0.1", 50000)
    assert view.origin is None
    assert view.scope["type"] == "websocket"


async def test_a_sync_check_is_called_once_and_never_awaited_twice() -> None:
    calls: list[str] = []

    def check(handshake: Handshake) -> None:
        calls.append(handshake.path)

    await handshake(WebSocketGuard(Endpoint(), check), "/once")
    assert calls == ["/once"]


# --- The guard never receives, and denies only through send ---------------------------------


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(returning(NOT_FOUND), id="denial"),
        pytest.param(raising(RuntimeError()), id="error"),
        pytest.param(returning(False), id="junk"),
    ],
)
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_a_refusal_never_calls_receive(check: Check, extension: bool) -> None:
    endpoint = Endpoint()
    send = Recorder()
    guard = WebSocketGuard(endpoint, check)
    await guard(websocket_scope(extension=extension), forbidden_receive, send)
    assert endpoint.calls == 0
    assert len(send.messages) == (2 if extension else 1)


async def test_a_client_that_left_ends_the_refusal_quietly() -> None:
    send = Recorder(fail_at=1)
    await WebSocketGuard(Endpoint(), returning(NOT_FOUND))(
        websocket_scope(), forbidden_receive, send
    )
    assert send.calls == 1
    assert send.messages == []


async def test_fallback_raise_refuses_to_deny_without_the_extension() -> None:
    send = Recorder()
    guard = WebSocketGuard(Endpoint(), returning(NOT_FOUND), fallback="raise")
    with pytest.raises(DenialUnsupportedError):
        await guard(websocket_scope(extension=False), forbidden_receive, send)
    assert send.messages == []


@pytest.mark.parametrize("version", ["2", "3"])
async def test_a_2xx_denial_over_http2_or_http3_fails_closed(
    caplog: pytest.LogCaptureFixture, version: Literal["2", "3"]
) -> None:
    # A 2xx answer to an extended CONNECT would open the tunnel (RFC 8441 section 5 over
    # HTTP/2, RFC 9220 section 3 over HTTP/3).
    guard = WebSocketGuard(Endpoint(), returning(Denial(200)))
    with caplog.at_level(logging.ERROR, logger="asgi_ws_deny"):
        result = await handshake(guard, http_version=version)
    assert result.status == 500
    assert [r.levelno for r in caplog.records] == [logging.ERROR]


# --- Other scopes pass through untouched ----------------------------------------------------


@pytest.mark.parametrize("scope_type", ["http", "lifespan"])
async def test_other_scopes_reach_the_app_with_the_same_callables(scope_type: str) -> None:
    seen: list[tuple[object, object, object]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    def check(handshake: Handshake) -> None:
        raise AssertionError("a check runs for websocket scopes only")

    scope = {"type": scope_type}
    send = Recorder()
    await WebSocketGuard(app, check)(scope, forbidden_receive, send)
    assert seen == [(scope, forbidden_receive, send)]
    assert seen[0][0] is scope


async def test_other_scopes_keep_the_app_errors() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise LookupError("http error")

    with pytest.raises(LookupError, match="http error"):
        await WebSocketGuard(app, returning(NOT_FOUND))(
            {"type": "http"}, forbidden_receive, Recorder()
        )


# --- Browser-visible denials ----------------------------------------------------------------

ORIGIN = ("origin", "http://127.0.0.1:8000")

# (policy, request headers, browser-visible?)
POLICIES = [
    pytest.param("never", [ORIGIN], False, id="never-with-origin"),
    pytest.param("origin", [ORIGIN], True, id="origin-with-origin"),
    pytest.param("origin", [("Origin", "null")], True, id="origin-any-case"),
    pytest.param("origin", [], False, id="origin-without-origin"),
    pytest.param("always", [], True, id="always-without-origin"),
]


@pytest.mark.parametrize(("policy", "headers", "visible"), POLICIES)
async def test_the_browser_policy_accepts_then_closes(
    policy: Any, headers: list[tuple[str, str]], visible: bool
) -> None:
    endpoint = Endpoint()
    guard = WebSocketGuard(endpoint, returning(NOT_FOUND), browser_policy=policy)
    result = await handshake(guard, headers=headers)
    assert endpoint.calls == 0
    if visible:
        assert result.messages == (
            {"type": "websocket.accept", "subprotocol": None, "headers": []},
            {"type": "websocket.close", "code": 4404, "reason": "Not Found"},
        )
        assert result.data == ()
    else:
        assert (result.accepted, result.status) == (False, 404)


async def test_the_browser_policy_selects_the_first_offered_subprotocol() -> None:
    # A browser fails a connection whose accept omits the subprotocol it offered, and the
    # close code would be lost in a 1006.
    guard = WebSocketGuard(Endpoint(), returning(Denial(401)), browser_policy="always")
    result = await handshake(guard, subprotocols=["graphql-transport-ws", "graphql-ws"])
    assert result.subprotocol == "graphql-transport-ws"
    assert (result.close_code, result.close_reason) == (4401, "Unauthorized")


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("offered", "echoed"),
    [
        pytest.param(["bearer." + JWT, "chat.v1"], "chat.v1", id="bearer-first"),
        pytest.param(["Bearer.x", "v2"], "v2", id="bearer-any-case"),
        pytest.param(
            ["base64url.bearer.authorization.k8s.io.dG9rZW4", "v4.channel.k8s.io"],
            "v4.channel.k8s.io",
            id="kubernetes",
        ),
        pytest.param(["access_token.abc", "jwt.abc", "chat"], "chat", id="token-and-jwt"),
        pytest.param(["a b", "x,y", "caf\u00e9", "", "chat"], "chat", id="not-tokens"),
        pytest.param(["p" * 65, "chat"], "chat", id="too-long"),
        pytest.param(["p" * 64], "p" * 64, id="64-is-fine"),
    ],
)
async def test_the_browser_policy_never_echoes_a_credential_or_a_non_token(
    offered: list[str], echoed: str
) -> None:
    guard = WebSocketGuard(Endpoint(), returning(Denial(401)), browser_policy="always")
    result = await handshake(guard, subprotocols=offered)
    assert (result.subprotocol, result.close_code) == (echoed, 4401)


@pytest.mark.parametrize(
    "offered",
    [["bearer." + JWT], ["auth-v1", "session.abc"], ["not a token"]],
    ids=["bearer", "credential-like", "not-a-token"],
)
async def test_the_browser_policy_denies_over_http_when_nothing_can_be_echoed(
    offered: list[str],
) -> None:
    guard = WebSocketGuard(Endpoint(), returning(Denial(401)), browser_policy="always")
    send = Recorder()
    await guard(websocket_scope(subprotocols=offered), forbidden_receive, send)
    assert [m["type"] for m in send.messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert send.messages[0]["status"] == 401
    assert JWT not in repr(send.messages)


@pytest.mark.parametrize(
    ("check", "code", "reason"),
    [
        pytest.param(raising(Denied(429, reason="slow down")), 4429, "slow down", id="denied"),
        pytest.param(raising(RuntimeError(SECRET)), 4500, "Internal Server Error", id="error"),
        pytest.param(returning(Denial(599)), 4599, "", id="status-without-phrase"),
    ],
)
async def test_the_browser_policy_carries_the_reason(check: Check, code: int, reason: str) -> None:
    guard = WebSocketGuard(Endpoint(), check, browser_policy="always")
    result = await handshake(guard)
    assert (result.accepted, result.close_code, result.close_reason) == (True, code, reason)


async def test_the_browser_policy_never_receives() -> None:
    send = Recorder()
    guard = WebSocketGuard(Endpoint(), returning(NOT_FOUND), browser_policy="always")
    await guard(websocket_scope(), forbidden_receive, send)
    assert [m["type"] for m in send.messages] == ["websocket.accept", "websocket.close"]


async def test_the_browser_policy_stops_when_the_client_left() -> None:
    send = Recorder(fail_at=1)
    guard = WebSocketGuard(Endpoint(), returning(NOT_FOUND), browser_policy="always")
    await guard(websocket_scope(), forbidden_receive, send)
    assert send.calls == 1


# --- Close codes ----------------------------------------------------------------------------


class CloseCode(enum.IntEnum):
    POLICY = 1008


def raise_lookup(status: int) -> int:
    raise LookupError(status)


@pytest.mark.parametrize(
    ("close_codes", "status", "code", "logged"),
    [
        pytest.param(None, 403, 4403, False, id="default"),
        pytest.param({403: 1008}, 403, 1008, False, id="mapping"),
        pytest.param({403: 1008}, 404, 4404, False, id="mapping-falls-back"),
        pytest.param(lambda status: 3000 + status, 401, 3401, False, id="callable"),
        pytest.param(lambda status: 1006, 401, 1008, True, id="callable-unsendable"),
        pytest.param(lambda status: True, 401, 1008, True, id="callable-bool"),
        pytest.param(lambda status: 4401.0, 401, 1008, True, id="callable-float"),
        pytest.param(lambda status: Decimal(4401), 401, 1008, True, id="callable-decimal"),
        pytest.param(lambda status: [4401], 401, 1008, True, id="callable-unhashable"),
        pytest.param({401: CloseCode.POLICY}, 401, 1008, False, id="mapping-intenum"),
        pytest.param(lambda status: CloseCode.POLICY, 401, 1008, False, id="callable-intenum"),
        pytest.param(raise_lookup, 401, 1008, True, id="callable-raises"),
    ],
)
async def test_close_codes(
    close_codes: Any, status: int, code: int, logged: bool, caplog: pytest.LogCaptureFixture
) -> None:
    guard = WebSocketGuard(
        Endpoint(), returning(Denial(status)), browser_policy="always", close_codes=close_codes
    )
    with caplog.at_level(logging.ERROR, logger="asgi_ws_deny"):
        result = await handshake(guard)
    assert result.close_code == code
    assert type(result.close_code) is int  # servers pack it as a 16-bit integer
    assert bool(caplog.records) is logged


def test_the_default_close_code_is_4000_plus_the_status() -> None:
    assert [default_close_code(s) for s in (400, 401, 403, 404, 429, 500)] == [
        4400,
        4401,
        4403,
        4404,
        4429,
        4500,
    ]


# --- Options are validated at construction --------------------------------------------------


async def app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"app": None}, "ASGI callable", id="app"),
        pytest.param({"check": "yes"}, "check must be callable", id="check"),
        pytest.param({"check": []}, "at least one check", id="check-list-empty"),
        pytest.param({"check": [print, "no"]}, "each check must be callable", id="check-list"),
        pytest.param({"fallback": "ignore"}, "fallback must be", id="fallback"),
        pytest.param({"browser_policy": "sometimes"}, "browser_policy must be", id="policy"),
        pytest.param({"error_denial": 500}, "error_denial must be a Denial", id="error-denial"),
        pytest.param(
            {"no_handshake_denial": Denied(403)}, "no_handshake_denial must be", id="no-handshake"
        ),
        pytest.param({"close_codes": {403: 1006}}, r"close_codes\[403\]", id="code-1006"),
        pytest.param({"close_codes": {403: 999}}, "cannot be sent", id="code-999"),
        pytest.param({"close_codes": {403: 5000}}, "cannot be sent", id="code-5000"),
        pytest.param({"close_codes": {403: True}}, "cannot be sent", id="code-bool"),
        pytest.param({"close_codes": {403: 4403.0}}, "cannot be sent", id="code-float"),
        pytest.param({"close_codes": {403: [4403]}}, "cannot be sent", id="code-unhashable"),
        pytest.param({"close_codes": 4403}, "mapping or a callable", id="codes-int"),
        pytest.param({"check_timeout": 0}, "check_timeout must be", id="timeout-0"),
        pytest.param({"check_timeout": "5"}, "check_timeout must be", id="timeout-str"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"app": app, **kwargs}
    with pytest.raises(InvalidDenialError, match=message):
        WebSocketGuard(**arguments)


# --- The read-only view ---------------------------------------------------------------------


def view(**overrides: Any) -> Handshake:
    return Handshake(websocket_scope(**overrides))


@pytest.mark.parametrize(
    ("cookie_headers", "expected"),
    [
        pytest.param([], {}, id="none"),
        pytest.param([b"a=1"], {"a": "1"}, id="one"),
        pytest.param([b"a=1; b=2"], {"a": "1", "b": "2"}, id="two"),
        pytest.param([b"a=1;b=2 ;  c = 3"], {"a": "1", "b": "2", "c": "3"}, id="spacing"),
        pytest.param([b"a=1", b"b=2"], {"a": "1", "b": "2"}, id="two-headers-http2"),
        pytest.param([b"a=1; a=2"], {"a": "1"}, id="first-wins"),
        pytest.param([b"token=x=y"], {"token": "x=y"}, id="equals-in-value"),
        pytest.param([b"flag; a=1; =2"], {"a": "1"}, id="malformed-skipped"),
        pytest.param([b"e="], {"e": ""}, id="empty-value"),
    ],
)
def test_cookies(cookie_headers: list[bytes], expected: dict[str, str]) -> None:
    handshake_view = view(headers=[(b"cookie", value) for value in cookie_headers])
    assert dict(handshake_view.cookies) == expected


def test_every_value_of_a_repeated_cookie_is_kept() -> None:
    handshake_view = view(headers=[(b"cookie", b"a=1; b=2"), (b"cookie", b"a=3")])
    assert handshake_view.cookies["a"] == "1"
    assert handshake_view.cookies.getall("a") == ("1", "3")


@pytest.mark.parametrize(
    ("overrides", "attribute", "expected"),
    [
        pytest.param({}, "client", ("127.0.0.1", 50000), id="client"),
        pytest.param({"client": ["::1", 4]}, "client", ("::1", 4), id="client-list"),
        pytest.param({"client": None}, "client", None, id="client-none"),
        pytest.param({"server": ["/tmp/s", None]}, "server", ("/tmp/s", None), id="unix"),
        pytest.param({}, "subprotocols", (), id="no-subprotocols"),
        pytest.param({"subprotocols": ["a", "b"]}, "subprotocols", ("a", "b"), id="subprotocols"),
        pytest.param({"http_version": "2"}, "http_version", "2", id="http2"),
        pytest.param({"scheme": "wss"}, "scheme", "wss", id="scheme"),
        pytest.param({"root_path": "/api"}, "root_path", "/api", id="root-path"),
        pytest.param({"query_string": b"q=%E2%9C%93"}, "query", {"q": "\u2713"}, id="utf8-query"),
        pytest.param(
            {"headers": [(b"Origin", b"https://a.example")]},
            "origin",
            "https://a.example",
            id="origin",
        ),
    ],
)
def test_the_view(overrides: dict[str, Any], attribute: str, expected: object) -> None:
    assert getattr(view(**overrides), attribute) == expected


def test_the_view_is_read_only() -> None:
    handshake_view = view()
    with pytest.raises(AttributeError, match="read-only"):
        handshake_view.path = "/other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        handshake_view.scope["path"] = "/other"  # type: ignore[index]
    with pytest.raises(AttributeError, match="read-only"):
        handshake_view.headers._items = ()
    assert handshake_view.path == "/ws"


def test_multimap() -> None:
    headers = MultiMap([("Accept", "a"), ("x", "1"), ("X", "2")], case_insensitive=True)
    assert list(headers) == ["accept", "x"]
    assert len(headers) == 2
    assert (headers["ACCEPT"], headers.getall("x"), headers.getall("missing")) == (
        "a",
        ("1", "2"),
        (),
    )
    assert "X" in headers
    assert 1 not in headers  # type: ignore[comparison-overlap]
    assert headers.multi_items() == (("accept", "a"), ("x", "1"), ("x", "2"))
    assert headers == {"accept": "a", "x": "1"}
    query = MultiMap([("A", "1")])
    assert "a" not in query
    with pytest.raises(KeyError):
        query["a"]
    assert isinstance(query, Mapping)
    assert repr(query) == "MultiMap([('A', '1')])"


class KeyedCheck:
    """A check holding a secret, as a token validator with a signing key would."""

    def __init__(self, result: object) -> None:
        self.result = result

    def __repr__(self) -> str:
        return f"KeyedCheck(key={SECRET!r})"

    def __call__(self, handshake: object) -> object:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize(
    "result",
    [pytest.param(SECRET, id="returns-the-secret"), pytest.param(KeyError("x"), id="raises")],
)
async def test_the_log_names_a_failing_check_without_its_repr_or_its_result(
    result: object, caplog: pytest.LogCaptureFixture
) -> None:
    guard = WebSocketGuard(Endpoint(), KeyedCheck(result))
    with caplog.at_level(logging.DEBUG, logger="asgi_ws_deny"):
        assert (await handshake(guard, "/ws")).status == 500
    (record,) = caplog.records
    assert "KeyedCheck" in record.getMessage()
    assert SECRET not in record.getMessage()


async def test_the_log_never_holds_the_request_headers(caplog: pytest.LogCaptureFixture) -> None:
    from asgi_ws_deny import Denied

    async def closes_then_denies(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        raise Denied(403)

    guard = WebSocketGuard(closes_then_denies)
    with caplog.at_level(logging.DEBUG, logger="asgi_ws_deny"):
        await handshake(guard, "/ws", headers=[("authorization", f"Bearer {SECRET}")])
    assert caplog.records
    assert all(SECRET not in record.getMessage() for record in caplog.records)


# --- check_timeout ---------------------------------------------------------------------------


class Stuck:
    """An async check that waits for ever (on an event nobody sets), and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = False

    async def __call__(self, handshake: Handshake) -> None:
        import anyio

        self.calls += 1
        try:
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise


async def test_a_check_past_check_timeout_is_answered_503_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, stuck = Endpoint(), Stuck()
    guard = WebSocketGuard(endpoint, stuck, check_timeout=0.2)
    result = await handshake(guard)
    assert (result.status, result.header("retry-after")) == (503, b"1")
    assert (stuck.calls, stuck.cancelled, endpoint.calls) == (1, True, 0)
    assert "still running after 0.2s" in caplog.text
    assert "Stuck" in caplog.text


async def test_check_timeout_leaves_a_quick_check_alone() -> None:
    endpoint = Endpoint()
    guard = WebSocketGuard(endpoint, [returning(None), returning(None)], check_timeout=5)
    assert (await handshake(guard)).accepted
    refused = await handshake(WebSocketGuard(endpoint, returning(NOT_FOUND), check_timeout=5))
    assert refused.status == 404
    assert endpoint.calls == 1


async def test_check_timeout_under_the_browser_policy_closes_4503() -> None:
    guard = WebSocketGuard(Endpoint(), Stuck(), check_timeout=1.5, browser_policy="always")
    result = await handshake(guard)
    assert (result.close_code, result.close_reason) == (4503, "Service Unavailable")

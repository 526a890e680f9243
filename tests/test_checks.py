"""TokenCheck, SubprotocolCheck and AllOf; what importing the module loads.

Token cases are a table: the check's sources, the request, and the status (None: admitted) and
``www-authenticate`` the client sees. Every async test runs under asyncio and trio.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from asgi_ws_deny import Denial, Denied, Handshake, WebSocketGuard
from asgi_ws_deny.checks import (
    AllOf,
    InvalidCheckError,
    OriginCheck,
    RateLimitCheck,
    SubprotocolCheck,
    TokenCheck,
    TokenValidatorError,
)
from asgi_ws_deny.testing import HandshakeResult, handshake
from tests.checks_support import Endpoint, view
from tests.helpers import exception_group

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-Tok3n.value"
OTHER = "another-token"


def is_token(token: str) -> bool:
    return token == TOKEN


async def is_token_async(token: str) -> bool:
    return token == TOKEN


def all_sources(validate: Any = is_token) -> TokenCheck:
    return TokenCheck(
        validate, subprotocol="bearer.", cookie="session", query="access_token", realm="chat"
    )


async def run(
    check: Any,
    path: str = "/ws",
    headers: list[tuple[str, str]] | None = None,
    subprotocols: tuple[str, ...] = (),
    endpoint: Endpoint | None = None,
) -> HandshakeResult:
    app = WebSocketGuard(endpoint or Endpoint(), check)
    return await handshake(app, path, headers=headers or [], subprotocols=subprotocols)


# --- TokenCheck -------------------------------------------------------------------------------

MISSING = 'Bearer realm="chat"'
INVALID = 'Bearer realm="chat", error="invalid_token"'
MALFORMED = 'Bearer realm="chat", error="invalid_request"'

# (id, path, headers, subprotocols, status or None when admitted, www-authenticate)
TOKEN_CASES: list[
    tuple[str, str, list[tuple[str, str]], tuple[str, ...], int | None, str | None]
] = [
    ("header", "/ws", [("authorization", f"Bearer {TOKEN}")], (), None, None),
    ("header-scheme-lower", "/ws", [("authorization", f"bearer {TOKEN}")], (), None, None),
    (
        "header-scheme-upper-two-spaces",
        "/ws",
        [("authorization", f"BEARER  {TOKEN}")],
        (),
        None,
        None,
    ),
    ("header-padding", "/ws", [("authorization", "Bearer abc==")], (), 401, INVALID),
    ("header-invalid", "/ws", [("authorization", f"Bearer {OTHER}")], (), 401, INVALID),
    ("nothing", "/ws", [], (), 401, MISSING),
    ("basic-scheme", "/ws", [("authorization", "Basic dXNlcjpwdw==")], (), 401, MISSING),
    ("bearer-alone", "/ws", [("authorization", "Bearer")], (), 400, MALFORMED),
    ("bearer-empty", "/ws", [("authorization", "Bearer ")], (), 400, MALFORMED),
    ("bearer-two-words", "/ws", [("authorization", f"Bearer {TOKEN} x")], (), 400, MALFORMED),
    ("bearer-comma", "/ws", [("authorization", "Bearer a,b")], (), 400, MALFORMED),
    ("bearer-inner-padding", "/ws", [("authorization", "Bearer a=b")], (), 400, MALFORMED),
    (
        "two-authorization-headers",
        "/ws",
        [("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")],
        (),
        400,
        MALFORMED,
    ),
    ("subprotocol", "/ws", [], ("chat.v1", f"bearer.{TOKEN}"), None, None),
    ("subprotocol-first", "/ws", [], (f"bearer.{TOKEN}", "chat.v1"), None, None),
    ("subprotocol-invalid", "/ws", [], ("chat.v1", f"bearer.{OTHER}"), 401, INVALID),
    ("subprotocol-empty", "/ws", [], ("chat.v1", "bearer."), 400, MALFORMED),
    ("subprotocol-two", "/ws", [], (f"bearer.{TOKEN}", f"bearer.{OTHER}"), 400, MALFORMED),
    ("subprotocol-no-prefix", "/ws", [], ("chat.v1", TOKEN), 401, MISSING),
    ("cookie", "/ws", [("cookie", f"theme=dark; session={TOKEN}")], (), None, None),
    ("cookie-invalid", "/ws", [("cookie", f"session={OTHER}")], (), 401, INVALID),
    ("cookie-cleared", "/ws", [("cookie", "session=")], (), 401, MISSING),
    ("cookie-other-name", "/ws", [("cookie", f"sessionid={TOKEN}")], (), 401, MISSING),
    # A sibling subdomain can toss in a second cookie of the same name: neither is chosen.
    ("cookie-two", "/ws", [("cookie", f"session={OTHER}; session={TOKEN}")], (), 400, MALFORMED),
    (
        "cookie-two-headers",
        "/ws",
        [("cookie", f"session={TOKEN}"), ("cookie", f"session={OTHER}")],
        (),
        400,
        MALFORMED,
    ),
    ("cookie-same-twice", "/ws", [("cookie", f"session={TOKEN}; session={TOKEN}")], (), None, None),
    ("cookie-two-one-empty", "/ws", [("cookie", f"session=; session={TOKEN}")], (), None, None),
    ("query", f"/ws?access_token={TOKEN}", [], (), None, None),
    ("query-same-twice", f"/ws?access_token={TOKEN}&access_token={TOKEN}", [], (), None, None),
    ("query-two", f"/ws?access_token={TOKEN}&access_token={OTHER}", [], (), 400, MALFORMED),
    ("query-empty", "/ws?access_token=", [], (), 401, MISSING),
    ("query-invalid", f"/ws?access_token={OTHER}", [], (), 401, INVALID),
    (
        "header-and-cookie-same",
        "/ws",
        [("authorization", f"Bearer {TOKEN}"), ("cookie", f"session={TOKEN}")],
        (),
        None,
        None,
    ),
    (
        "header-and-cookie-differ",
        "/ws",
        [("authorization", f"Bearer {TOKEN}"), ("cookie", f"session={OTHER}")],
        (),
        400,
        MALFORMED,
    ),
    (
        "subprotocol-and-query-differ",
        f"/ws?access_token={OTHER}",
        [],
        (f"bearer.{TOKEN}",),
        400,
        MALFORMED,
    ),
]


@pytest.mark.parametrize("validate", [is_token, is_token_async], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("path", "headers", "subprotocols", "status", "challenge"),
    [case[1:] for case in TOKEN_CASES],
    ids=[case[0] for case in TOKEN_CASES],
)
async def test_token_sources(
    validate: Any,
    path: str,
    headers: list[tuple[str, str]],
    subprotocols: tuple[str, ...],
    status: int | None,
    challenge: str | None,
) -> None:
    endpoint = Endpoint()
    result = await run(all_sources(validate), path, headers, subprotocols, endpoint)
    if status is None:
        assert result.accepted
        assert endpoint.calls == 1
        return
    assert endpoint.calls == 0
    assert result.status == status
    assert challenge is not None
    assert result.header("www-authenticate") == challenge.encode()
    assert result.header("content-type") == b"application/json"
    expected = {401: "missing_token" if challenge == MISSING else "invalid_token"}
    assert result.json() == {"error": expected.get(status, "invalid_request")}


@pytest.mark.parametrize(
    ("check", "headers", "subprotocols", "path"),
    [
        (TokenCheck(is_token), [("cookie", f"session={TOKEN}")], (), "/ws"),
        (TokenCheck(is_token), [], (f"bearer.{TOKEN}",), "/ws"),
        (TokenCheck(is_token), [], (), f"/ws?access_token={TOKEN}"),
        (
            TokenCheck(is_token, header=False, cookie="session"),
            [("authorization", f"Bearer {TOKEN}")],
            (),
            "/ws",
        ),
    ],
    ids=["cookie-off", "subprotocol-off", "query-off", "header-off"],
)
async def test_only_the_configured_sources_count(
    check: TokenCheck, headers: list[tuple[str, str]], subprotocols: tuple[str, ...], path: str
) -> None:
    result = await run(check, path, headers, subprotocols)
    assert (result.status, result.header("www-authenticate")) == (401, b"Bearer")


async def test_without_a_realm_the_challenge_has_none() -> None:
    check = TokenCheck(is_token)
    missing = await run(check)
    invalid = await run(check, headers=[("authorization", "Bearer nope")])
    malformed = await run(check, headers=[("authorization", "Bearer a b")])
    assert missing.header("www-authenticate") == b"Bearer"
    assert invalid.header("www-authenticate") == b'Bearer error="invalid_token"'
    assert malformed.header("www-authenticate") == b'Bearer error="invalid_request"'


async def test_the_validator_gets_the_token_alone() -> None:
    seen: list[object] = []

    def validate(token: str) -> bool:
        seen.append(token)
        return True

    await run(TokenCheck(validate), headers=[("authorization", f"Bearer   {TOKEN}")])
    assert seen == [TOKEN]


async def test_a_validator_may_raise_denied() -> None:
    def validate(token: str) -> bool:
        raise Denied(Denial.json(403, {"error": "insufficient_scope"}))

    result = await run(TokenCheck(validate), headers=[("authorization", f"Bearer {TOKEN}")])
    assert (result.status, result.json()) == (403, {"error": "insufficient_scope"})


async def test_a_validator_may_raise_denied_in_a_group() -> None:
    async def validate(token: str) -> bool:
        raise exception_group(Denied(403))

    result = await run(TokenCheck(validate), headers=[("authorization", f"Bearer {TOKEN}")])
    assert result.status == 403


def leaky(token: str) -> bool:
    raise ValueError(f"no user for token {token}")


async def leaky_async(token: str) -> bool:
    raise KeyError(token)


def not_a_bool(token: str) -> Any:
    return token  # a "truthy" result that is not True


async def not_a_bool_async(token: str) -> Any:
    return 1


@pytest.mark.parametrize(
    ("validate", "named"),
    [
        (leaky, "raised ValueError"),
        (leaky_async, "raised KeyError"),
        (not_a_bool, "returned str"),
        (not_a_bool_async, "returned int"),
    ],
    ids=["raises", "raises-async", "returns-str", "returns-int-async"],
)
async def test_a_failing_validator_fails_closed_and_never_logs_the_token(
    validate: Any, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    check = all_sources(validate)
    result = await run(check, headers=[("authorization", f"Bearer {TOKEN}")])
    assert result.status == 500
    failures = [r for r in caplog.records if r.exc_info and r.exc_info[0] is TokenValidatorError]
    assert len(failures) == 1
    logged = caplog.text
    assert named in logged
    assert TOKEN not in logged
    if named.startswith("raised"):
        # The validator's frame is kept, so the failure can be found.
        assert validate.__name__ in logged


def frame_locals(record: logging.LogRecord) -> list[str]:
    """The repr of every local variable of every frame a log record's exception reaches,
    through its traceback and the exceptions it chains to: what an error tracker records."""
    seen: list[str] = []
    pending = [record.exc_info[1]] if record.exc_info else []
    tracebacks = [record.exc_info[2]] if record.exc_info else []
    while pending:
        exc = pending.pop()
        if exc is None:
            continue
        tracebacks.append(exc.__traceback__)
        pending += [exc.__cause__, exc.__context__]
    for tb in tracebacks:
        while tb is not None:
            seen.extend(repr(value) for value in tb.tb_frame.f_locals.values())
            tb = tb.tb_next
    return seen


@pytest.mark.parametrize("validate", [leaky, leaky_async], ids=["sync", "async"])
@pytest.mark.parametrize("chained", [False, True], ids=["alone", "in-a-chain"])
async def test_no_logged_frame_holds_the_token(
    validate: Any, chained: bool, caplog: pytest.LogCaptureFixture
) -> None:
    check = all_sources(validate)
    composed = [OriginCheck("https://app.example.com"), check] if chained else check
    result = await run(composed, headers=[("cookie", f"session={TOKEN}")])
    assert result.status == 500
    (failure,) = [r for r in caplog.records if r.exc_info]
    assert failure.exc_info is not None
    assert failure.exc_info[0] is TokenValidatorError
    assert validate.__name__ in caplog.text  # where it failed is still logged, as text
    assert not [value for value in frame_locals(failure) if TOKEN in value]


async def test_no_log_line_of_any_path_shows_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    check = all_sources()
    requests: list[tuple[str, list[tuple[str, str]], tuple[str, ...]]] = [
        ("/ws", [("authorization", f"Bearer {TOKEN}")], ()),
        ("/ws", [("authorization", f"Bearer {TOKEN}x")], ()),
        ("/ws", [("authorization", f"Bearer {TOKEN} {TOKEN}")], ()),
        ("/ws", [("cookie", f"session={TOKEN}x")], ()),
        (f"/ws?access_token={TOKEN}x", [], ()),
        ("/ws", [], (f"bearer.{TOKEN}x",)),
        ("/ws", [("authorization", f"Bearer {TOKEN}"), ("cookie", f"session={TOKEN}x")], ()),
    ]
    for path, headers, subprotocols in requests:
        await run(check, path, headers, subprotocols)
    assert caplog.records, "the refusals are logged"
    assert TOKEN not in caplog.text
    assert all(TOKEN not in repr(record.args) for record in caplog.records)
    assert TOKEN not in repr(check)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("not callable",), {}, "validate must be callable"),
        ((is_token,), {"header": False}, "at least one place"),
        ((is_token,), {"cookie": "a b"}, "cookie must be None or a non-empty token"),
        ((is_token,), {"cookie": ""}, "cookie must be None or a non-empty token"),
        ((is_token,), {"subprotocol": "bearer,"}, "subprotocol must be"),
        ((is_token,), {"query": ""}, "query must be None"),
        ((is_token,), {"realm": 'a"b'}, "realm must be printable"),
        ((is_token,), {"realm": "caf\u00e9"}, "realm must be printable"),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_token_check_configuration(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCheckError, match=message):
        TokenCheck(*args, **kwargs)


def test_the_validator_is_named_never_shown() -> None:
    signing_key = "signing-key-4f2a"

    def check_signature(token: str, key: str) -> bool:
        return False

    check = TokenCheck(functools.partial(check_signature, key=signing_key), cookie="session")
    assert signing_key not in repr(check)
    assert repr(check) == "TokenCheck(functools.partial, header=True, cookie='session')"
    assert repr(TokenCheck(is_token)) == "TokenCheck(test_checks.is_token, header=True)"


def test_a_sync_validator_keeps_the_check_sync() -> None:
    check = TokenCheck(is_token)
    assert check(view([("authorization", f"Bearer {TOKEN}")])) is None
    refused = check(view([("authorization", f"Bearer {OTHER}")]))
    assert isinstance(refused, Denial)
    assert refused.status == 401


# --- SubprotocolCheck -------------------------------------------------------------------------

SUBPROTOCOLS = SubprotocolCheck("graphql-transport-ws", "graphql-ws")


@pytest.mark.parametrize(
    ("offered", "admitted"),
    [
        (("graphql-transport-ws",), True),
        (("graphql-ws",), True),
        (("chat", "graphql-ws"), True),
        ((), False),
        (("chat",), False),
        (("GraphQL-WS",), False),
        (("graphql-ws ",), False),
        (("graphql",), False),
    ],
    ids=["first", "second", "among-others", "none", "other", "case", "space", "prefix"],
)
async def test_subprotocols(offered: tuple[str, ...], admitted: bool) -> None:
    endpoint = Endpoint()
    result = await run(SUBPROTOCOLS, subprotocols=offered, endpoint=endpoint)
    if admitted:
        assert result.accepted
        assert endpoint.calls == 1
        return
    assert endpoint.calls == 0
    assert result.status == 400
    assert result.header("content-type") == b"application/json"
    assert result.json() == {
        "error": "unsupported_subprotocol",
        "supported": ["graphql-transport-ws", "graphql-ws"],
    }


async def test_a_refused_subprotocol_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A client may offer its token as a subprotocol ("bearer.<token>"), as docs/security.md
    suggests: the refusal says how many were offered, never which."""
    with caplog.at_level(logging.DEBUG, logger="asgi_ws_deny"):
        result = await run(SUBPROTOCOLS, subprotocols=("chat.v1", "bearer.S3CRET"))
    assert result.status == 400
    assert "offering 2 subprotocol(s)" in caplog.text
    assert "S3CRET" not in caplog.text


async def test_a_subprotocol_denial_can_be_replaced() -> None:
    check = SubprotocolCheck("v2", denial=Denial.text(426, "upgrade your client"))
    result = await run(check, subprotocols=("v1",))
    assert (result.status, result.body) == (426, b"upgrade your client")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "at least one"),
        (("a b",), {}, "tokens"),
        (("",), {}, "tokens"),
        (("a,b",), {}, "tokens"),
        ((b"v1",), {}, "tokens"),
        (("v1",), {"denial": 400}, "must be a Denial"),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_subprotocol_check_configuration(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCheckError, match=message):
        SubprotocolCheck(*args, **kwargs)


# --- AllOf --------------------------------------------------------------------------------------


class Recording:
    """A check that records its call in a shared log and returns (or awaits) a fixed result."""

    def __init__(self, name: str, log: list[str], result: object = None, *, is_async: bool = False):
        self.name, self.log, self.result, self.is_async = name, log, result, is_async

    def __call__(self, handshake: Handshake) -> Any:
        self.log.append(self.name)
        if isinstance(self.result, BaseException):
            raise self.result
        if self.is_async:
            return self.answer()
        return self.result

    async def answer(self) -> object:
        self.log.append(self.name + " awaited")
        return self.result

    def __repr__(self) -> str:
        return f"Recording({self.name!r})"


REFUSAL = Denial.json(418, {"error": "first refusal"})
SECOND = Denial.json(451, {"error": "second refusal"})


# The guard takes a chain as AllOf, or as a plain list or tuple of checks.
COMPOSE = [
    pytest.param(lambda checks: AllOf(*checks), id="AllOf"),
    pytest.param(list, id="list"),
    pytest.param(tuple, id="tuple"),
]


@pytest.mark.parametrize("compose", COMPOSE)
@pytest.mark.parametrize("kinds", ["sss", "ass", "sas", "ssa", "aaa"])
async def test_checks_run_in_order_and_the_first_refusal_wins(kinds: str, compose: Any) -> None:
    log: list[str] = []
    results: list[object] = [None, REFUSAL, SECOND]
    checks = [
        Recording(str(i), log, result, is_async=kind == "a")
        for i, (kind, result) in enumerate(zip(kinds, results, strict=True))
    ]
    endpoint = Endpoint()
    result = await run(compose(checks), endpoint=endpoint)
    assert (result.status, result.json()) == (418, {"error": "first refusal"})
    assert endpoint.calls == 0
    assert [entry for entry in log if not entry.endswith("awaited")] == ["0", "1"]


@pytest.mark.parametrize("compose", COMPOSE)
@pytest.mark.parametrize("kinds", ["sss", "asa", "aaa"])
async def test_every_check_admitting_admits(kinds: str, compose: Any) -> None:
    log: list[str] = []
    checks = [Recording(str(i), log, is_async=kind == "a") for i, kind in enumerate(kinds)]
    endpoint = Endpoint()
    result = await run(compose(checks), endpoint=endpoint)
    assert result.accepted
    assert endpoint.calls == 1
    awaited = [f"{i} awaited" for i, kind in enumerate(kinds) if kind == "a"]
    assert [entry for entry in log if entry.endswith("awaited")] == awaited
    assert [entry for entry in log if not entry.endswith("awaited")] == ["0", "1", "2"]


def test_a_chain_of_sync_checks_is_sync() -> None:
    log: list[str] = []
    chain = AllOf(Recording("a", log), Recording("b", log, REFUSAL))
    assert chain(view()) is REFUSAL
    assert AllOf(Recording("c", log))(view()) is None


async def test_a_chain_turns_async_at_the_first_awaitable() -> None:
    log: list[str] = []
    chain = AllOf(Recording("a", log), Recording("b", log, is_async=True), Recording("c", log))
    pending = chain(view())
    assert isinstance(pending, Awaitable)
    assert log == ["a", "b"]  # "c" waits until "b" is awaited
    assert await pending is None
    assert log == ["a", "b", "b awaited", "c"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "failure",
    [RuntimeError("check broke"), True, "deny", 403],
    ids=["raises", "returns-true", "returns-str", "returns-int"],
)
async def test_a_failing_check_fails_closed_and_stops_the_chain(
    failure: object, is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    chain = AllOf(
        Recording("first", log),
        Recording("broken", log, failure, is_async=is_async),
        Recording("after", log),
    )
    endpoint = Endpoint()
    result = await run(chain, endpoint=endpoint)
    assert result.status == 500
    assert endpoint.calls == 0
    assert "after" not in log
    if not isinstance(failure, BaseException):
        assert f"check test_checks.Recording returned {type(failure).__name__}" in caplog.text
        # A name, never the repr, which may hold a key or a token.
        assert "Recording('broken')" not in caplog.text


async def test_denied_raised_in_a_chain_is_the_answer() -> None:
    log: list[str] = []
    chain = AllOf(Recording("a", log, Denied(404, reason="gone")), Recording("b", log))
    result = await run(chain)
    assert result.status == 404
    assert log == ["a"]


@pytest.mark.parametrize(
    ("checks", "message"),
    [((), "at least one check"), ((None,), "must be callable"), (("check",), "must be callable")],
    ids=["empty", "none", "str"],
)
def test_all_of_configuration(checks: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidCheckError, match=message):
        AllOf(*checks)


async def test_the_ready_made_checks_compose() -> None:
    chain = AllOf(
        OriginCheck("https://app.example.com"),
        SubprotocolCheck("chat.v1"),
        RateLimitCheck("2/minute"),
        TokenCheck(is_token_async, subprotocol="bearer."),
    )
    origin = [("origin", "https://app.example.com")]
    offered = ("chat.v1", f"bearer.{TOKEN}")
    outcomes = [
        await run(chain, headers=[("origin", "https://evil.net")], subprotocols=offered),
        await run(chain, headers=origin, subprotocols=(f"bearer.{TOKEN}",)),
        await run(chain, headers=origin, subprotocols=("chat.v1", f"bearer.{OTHER}")),
        await run(chain, headers=origin, subprotocols=offered),
        await run(chain, headers=origin, subprotocols=offered),
    ]
    # The origin and subprotocol refusals come before the rate limit and spend none of it;
    # the invalid token spent one.
    assert [o.status for o in outcomes] == [403, 400, 401, 101, 429]
    assert repr(chain).startswith("AllOf(OriginCheck('https://app.example.com'), ")


@pytest.mark.parametrize("compose", COMPOSE)
@pytest.mark.parametrize("policy", ["origin", "never"])
async def test_a_cross_origin_page_cannot_tell_a_valid_session_from_an_invalid_one(
    compose: Any, policy: Any
) -> None:
    """The origin check runs first, whatever the order given: every refusal of a page on
    another origin is the same, and the token validator never runs for it."""
    validated: list[str] = []

    def validate(token: str) -> bool:
        validated.append(token)
        return token == TOKEN

    checks = [TokenCheck(validate, cookie="session"), OriginCheck("https://app.example.com")]
    guard = WebSocketGuard(Endpoint(), compose(checks), browser_policy=policy)
    evil = ("origin", "https://evil.example")
    valid = await handshake(guard, "/ws", headers=[evil, ("cookie", f"session={TOKEN}")])
    invalid = await handshake(guard, "/ws", headers=[evil, ("cookie", f"session={OTHER}")])
    anonymous = await handshake(guard, "/ws", headers=[evil])
    assert valid.messages == invalid.messages == anonymous.messages
    if policy == "origin":
        assert (valid.close_code, valid.close_reason) == (4403, "Forbidden")
    else:
        assert valid.json() == {"error": "origin_not_allowed"}
    assert validated == []
    # From the allowed origin the token decides, as before.
    own = ("origin", "https://app.example.com")
    assert (await handshake(guard, "/ws", headers=[own, ("cookie", f"session={TOKEN}")])).accepted
    assert validated == [TOKEN]


def test_all_of_runs_checks_marked_runs_first_first_and_keeps_the_rest_in_order() -> None:
    def one(handshake: Handshake) -> None:
        return None

    def two(handshake: Handshake) -> None:
        return None

    origin = OriginCheck("https://app.example.com")
    assert AllOf(one, origin, two).checks == (origin, one, two)
    assert AllOf(one, two).checks == (one, two)


# --- The module -------------------------------------------------------------------------------


def test_importing_the_checks_loads_no_third_party_package_and_no_event_loop() -> None:
    code = (
        "import sys\n"
        "import asgi_ws_deny.checks\n"
        "print(sorted({'limits', 'redis', 'idna', 'asyncio', 'trio', 'anyio'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_checks_never_import_asyncio() -> None:
    import asgi_ws_deny.checks as checks

    assert checks.__file__ is not None
    modules = sorted(Path(checks.__file__).parent.glob("*.py"))
    assert len(modules) > 1
    for module in modules:
        text = module.read_text(encoding="utf-8")
        assert "import asyncio" not in text, module
        assert "from asyncio" not in text, module

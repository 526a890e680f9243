"""`deny` and `Denial` as an ASGI application: what is sent, what is returned, what is not."""

from __future__ import annotations

import copy
import pickle
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import Recorder, forbidden_receive, websocket_scope

RESPONSE_TYPES = ["websocket.http.response.start", "websocket.http.response.body"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("extension", "outcome", "types"),
    [
        pytest.param(True, "response", RESPONSE_TYPES, id="extension"),
        pytest.param(False, "close", ["websocket.close"], id="fallback"),
    ],
)
async def test_deny_sends_the_messages_and_says_which_path(
    core: ModuleType, extension: bool, outcome: str, types: list[str]
) -> None:
    send = Recorder()
    scope = websocket_scope(extension=extension)
    result = await core.deny(scope, send, 401, [("www-authenticate", "Bearer")], b"no")
    assert result == outcome
    assert [m["type"] for m in send.messages] == types


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("extension", "fail_at", "sent"),
    [
        pytest.param(True, 1, 0, id="extension-before-start"),
        pytest.param(True, 2, 1, id="extension-between-start-and-body"),
        pytest.param(False, 1, 0, id="fallback-close"),
    ],
)
async def test_a_client_that_left_is_disconnected(
    core: ModuleType, extension: bool, fail_at: int, sent: int
) -> None:
    """ASGI spec 2.4: send raises OSError once the client is gone; nothing more is tried."""
    send = Recorder(fail_at=fail_at)
    result = await core.deny(websocket_scope(extension=extension), send, 401, body=b"no")
    assert result == "disconnected"
    assert send.calls == fail_at
    assert len(send.messages) == sent


@pytest.mark.anyio
async def test_other_exceptions_from_send_propagate(core: ModuleType) -> None:
    async def broken_send(message: Any) -> None:
        raise RuntimeError("server bug")

    with pytest.raises(RuntimeError, match="server bug"):
        await core.deny(websocket_scope(), broken_send, 401)


@pytest.mark.anyio
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "fallback"])
async def test_a_denial_is_an_asgi_application(core: ModuleType, extension: bool) -> None:
    denial = core.Denial.json(401, {"error": "unauthorized"})
    send = Recorder()
    assert await denial(websocket_scope(extension=extension), forbidden_receive, send) is None
    assert send.messages == denial.messages(websocket_scope(extension=extension))


@pytest.mark.anyio
async def test_a_denial_as_an_application_swallows_a_departed_client(core: ModuleType) -> None:
    send = Recorder(fail_at=1)
    await core.Denial(401)(websocket_scope(), forbidden_receive, send)
    assert send.messages == []


@pytest.mark.anyio
async def test_deny_takes_a_denial(core: ModuleType) -> None:
    send = Recorder()
    denial = core.Denial.text(429, "slow down", [("retry-after", "30")])
    assert await core.deny(websocket_scope(), send, denial, fallback="raise") == "response"
    assert send.messages == denial.messages(websocket_scope())


@pytest.mark.anyio
async def test_deny_accepts_any_awaitable_send(core: ModuleType) -> None:
    """A plain coroutine function works as well as a callable object."""
    received: list[Any] = []

    async def send(message: Any) -> None:
        received.append(message["type"])

    assert await core.deny(websocket_scope(), send) == "response"
    assert received == RESPONSE_TYPES


class TestDenial:
    def test_what_it_holds(self, core: ModuleType) -> None:
        denial = core.Denial(401, [("WWW-Authenticate", "Bearer")], bytearray(b"no"))
        assert denial.status == 401
        assert denial.headers == ((b"www-authenticate", b"Bearer"), (b"content-length", b"2"))
        assert denial.body == b"no"
        assert type(denial.body) is bytes

    def test_defaults(self, core: ModuleType) -> None:
        assert core.Denial() == core.Denial(403, (), b"")
        assert core.Denial().headers == ((b"content-length", b"0"),)

    @pytest.mark.parametrize("attribute", ["status", "headers", "body", "_status", "other"])
    def test_is_immutable(self, core: ModuleType, attribute: str) -> None:
        denial = core.Denial(401)
        with pytest.raises(AttributeError, match="immutable"):
            setattr(denial, attribute, 500)
        with pytest.raises(AttributeError, match="immutable"):
            delattr(denial, attribute)
        assert denial == core.Denial(401)

    def test_equality_and_hash_follow_the_wire_form(self, core: ModuleType) -> None:
        a = core.Denial(401, [("X-A", "1")], b"no")
        b = core.Denial(401, [(b"x-a", b"1"), (b"content-length", b"2")], memoryview(b"no"))
        assert a == b
        assert hash(a) == hash(b)
        assert len({a, b}) == 1
        assert a != core.Denial(401, [("x-a", "2")], b"no")
        assert a != core.Denial(402, [("x-a", "1")], b"no")
        assert a != (401, a.headers, b"no")

    def test_text(self, core: ModuleType) -> None:
        denial = core.Denial.text(403, "d\xe9j\xe0 vu")
        assert denial.body == "d\xe9j\xe0 vu".encode()
        assert denial.headers == (
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"9"),
        )

    def test_json(self, core: ModuleType) -> None:
        denial = core.Denial.json(404, {"message": "User not allowed", "caf\xe9": [1, None]})
        assert denial.body == '{"message":"User not allowed","caf\xe9":[1,null]}'.encode()
        assert denial.headers == (
            (b"content-type", b"application/json"),
            (b"content-length", b"47"),
        )

    @pytest.mark.parametrize("name", ["content-type", "Content-Type", b"CONTENT-TYPE"])
    def test_a_given_content_type_wins(self, core: ModuleType, name: str | bytes) -> None:
        denial = core.Denial.json(400, [], [(name, "application/problem+json")])
        assert denial.headers == (
            (b"content-type", b"application/problem+json"),
            (b"content-length", b"2"),
        )

    def test_content_type_parameter(self, core: ModuleType) -> None:
        denial = core.Denial.text(400, "x", content_type="text/html; charset=utf-8")
        assert denial.headers[0] == (b"content-type", b"text/html; charset=utf-8")

    def test_repr(self, core: ModuleType) -> None:
        assert repr(core.Denial(401, [("x-a", "1")], b"no")) == (
            "Denial(401, headers=((b'x-a', b'1'), (b'content-length', b'2')), body=b'no')"
        )

    def test_round_trips_through_pickle_and_copy(self, core: ModuleType) -> None:
        denial = core.Denial.json(401, {"error": "x"})
        assert pickle.loads(pickle.dumps(denial)) == denial
        assert copy.copy(denial) == denial
        assert copy.deepcopy(denial) == denial

    def test_subclass_constructors_keep_the_class(self, core: ModuleType) -> None:
        class Unauthorized(core.Denial):  # type: ignore[misc, name-defined]
            """A subclass, as an application might define for its own denials."""

        assert type(Unauthorized.json(401, {})) is Unauthorized
        assert type(Unauthorized.text(401, "x")) is Unauthorized

"""Admission: a check admits with scope entries and a release the guard calls once when the
connection ends, however it ends; AllOf gives back what earlier checks took on a refusal."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from asgi_ws_deny import Admission, Denial, Denied, Handshake, WebSocketGuard
from asgi_ws_deny.handshake import AllOf, run_check
from tests.helpers import Recorder, websocket_scope

pytestmark = pytest.mark.anyio

ACCEPT = {"type": "websocket.accept", "subprotocol": None, "headers": []}


class Lease:
    """A release that records its calls, sync or async."""

    def __init__(self, name: str = "lease", log: list[str] | None = None) -> None:
        self.name = name
        self.log = log if log is not None else []

    def release(self) -> None:
        self.log.append(self.name)

    async def release_async(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.log.append(self.name)

    def admission(self, **scope: Any) -> Admission:
        return Admission(scope=scope, release=self.release)


async def connect() -> dict[str, Any]:
    return {"type": "websocket.connect"}


async def accepts_and_returns(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(ACCEPT)


async def raises_after_accept(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(ACCEPT)
    raise LookupError("app error")


async def raises_before_accept(scope: Any, receive: Any, send: Any) -> None:
    raise LookupError("app error")


async def denies(scope: Any, receive: Any, send: Any) -> None:
    raise Denied(404)


async def returns_without_handshake(scope: Any, receive: Any, send: Any) -> None:
    return None


ENDINGS = [
    pytest.param(accepts_and_returns, None, id="returns"),
    pytest.param(raises_after_accept, LookupError, id="raises-after-accept"),
    pytest.param(raises_before_accept, LookupError, id="raises-before-accept"),
    pytest.param(denies, None, id="denies-after-all"),
    pytest.param(returns_without_handshake, None, id="no-handshake"),
]


@pytest.mark.parametrize(("app", "raised"), ENDINGS)
async def test_the_release_runs_once_however_the_connection_ends(
    app: Any, raised: type[BaseException] | None
) -> None:
    lease = Lease()
    guard = WebSocketGuard(app, lambda handshake: lease.admission())
    if raised is None:
        await guard(websocket_scope(), connect, Recorder())
    else:
        with pytest.raises(raised):
            await guard(websocket_scope(), connect, Recorder())
    assert lease.log == ["lease"]


async def test_the_release_runs_when_the_connection_is_cancelled() -> None:
    lease = Lease()
    started = anyio.Event()

    async def waits(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        started.set()
        await anyio.sleep_forever()

    guard = WebSocketGuard(waits, lambda handshake: lease.admission())
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(guard, websocket_scope(), connect, Recorder())
        await started.wait()
        assert lease.log == []  # held while the connection lives
        tasks.cancel_scope.cancel()
    assert lease.log == ["lease"]


async def test_an_async_release_is_awaited() -> None:
    lease = Lease()
    check = lambda handshake: Admission(release=lease.release_async)  # noqa: E731
    await WebSocketGuard(accepts_and_returns, check)(websocket_scope(), connect, Recorder())
    assert lease.log == ["lease"]


async def test_scope_entries_reach_the_application() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("example.subject"))
        await accepts_and_returns(scope, receive, send)

    check = lambda handshake: Admission(scope={"example.subject": "alice"})  # noqa: E731
    await WebSocketGuard(app, check)(websocket_scope(), connect, Recorder())
    assert seen == ["alice"]


async def test_a_release_that_raises_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def release() -> None:
        raise RuntimeError("storage down")

    server = Recorder()
    guard = WebSocketGuard(accepts_and_returns, lambda handshake: Admission(release=release))
    with caplog.at_level(logging.ERROR, logger="asgi_ws_deny"):
        await guard(websocket_scope(), connect, server)
    assert server.messages == [ACCEPT]
    assert ["release raised" in record.getMessage() for record in caplog.records] == [True]


async def test_a_refused_handshake_takes_nothing_to_release() -> None:
    lease = Lease()
    guard = WebSocketGuard(accepts_and_returns, lambda handshake: Denial(403))
    await guard(websocket_scope(), connect, Recorder())
    assert lease.log == []


# --- AllOf ----------------------------------------------------------------------------------


def returning(value: object) -> Any:
    return lambda handshake: value


def raising(exc: Exception) -> Any:
    def check(handshake: Handshake) -> None:
        raise exc

    return check


async def test_all_of_gives_back_what_earlier_checks_took_on_a_refusal() -> None:
    log: list[str] = []
    first, second = Lease("first", log), Lease("second", log)
    check = AllOf(
        lambda handshake: first.admission(),
        lambda handshake: second.admission(),
        returning(Denial(401)),
    )
    guard = WebSocketGuard(accepts_and_returns, check)
    server = Recorder()
    await guard(websocket_scope(), connect, server)
    assert server.messages[0]["status"] == 401
    assert log == ["second", "first"]


async def test_all_of_gives_back_on_an_exception_too() -> None:
    lease = Lease()
    check = AllOf(lambda handshake: lease.admission(), raising(Denied(429)))
    server = Recorder()
    await WebSocketGuard(accepts_and_returns, check)(websocket_scope(), connect, server)
    assert server.messages[0]["status"] == 429
    assert lease.log == ["lease"]


async def test_all_of_combines_admissions() -> None:
    log: list[str] = []
    first, second = Lease("first", log), Lease("second", log)
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["a"], scope["b"]))
        await accepts_and_returns(scope, receive, send)

    check = AllOf(
        lambda handshake: first.admission(a=1, b=1),
        returning(None),
        lambda handshake: second.admission(b=2),
    )
    await WebSocketGuard(app, check)(websocket_scope(), connect, Recorder())
    assert seen == [(1, 2)]  # a later entry wins a key
    assert log == ["second", "first"]


def test_a_sync_chain_without_admissions_stays_sync() -> None:
    assert AllOf(returning(None), returning(None))(Handshake(websocket_scope())) is None


# --- Outside the guard ----------------------------------------------------------------------


async def test_run_check_applies_scope_entries_in_place() -> None:
    scope = websocket_scope()
    check = returning(Admission(scope={"example.subject": "bob"}))
    assert await run_check(check, scope, Denial(500)) is None
    assert scope["example.subject"] == "bob"


async def test_run_check_refuses_a_release_it_cannot_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lease = Lease()
    with caplog.at_level(logging.ERROR, logger="asgi_ws_deny"):
        refused = await run_check(
            lambda handshake: lease.admission(), websocket_scope(), Denial(500)
        )
    assert refused is not None
    assert refused[0].status == 500
    assert lease.log == ["lease"]  # given back at once
    assert "only WebSocketGuard" in caplog.text


def test_admission_options() -> None:
    with pytest.raises(ValueError, match="release must be callable"):
        Admission(release="nope")  # type: ignore[arg-type]
    admission = Admission(scope={"k": "secret-value"}, release=print)
    assert "secret-value" not in repr(admission)
    with pytest.raises(TypeError):
        admission.scope["k"] = "x"  # type: ignore[index]

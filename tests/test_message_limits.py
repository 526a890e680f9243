"""Message limits after admission: counted in the guard's receive, closed with 1009 or 1008.

In process, with a scripted server, each limit and what the application sees after it; then
on real servers through the ``websockets`` client, which reports the close code it got.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from asgi_ws_deny import (
    ClosedByGuardError,
    InvalidDenialError,
    MessageLimits,
    WebSocketGuard,
)
from asgi_ws_deny import message_limits as limits_module
from tests.helpers import Recorder, websocket_scope

CONNECT = {"type": "websocket.connect"}
ACCEPT = {"type": "websocket.accept", "subprotocol": None, "headers": []}


def text(value: str) -> dict[str, Any]:
    return {"type": "websocket.receive", "bytes": None, "text": value}


def data(value: bytes) -> dict[str, Any]:
    return {"type": "websocket.receive", "bytes": value, "text": None}


class Script:
    """A server's receive: the connect, then ``messages``; asked once more, it fails the test."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.messages = [CONNECT, *messages]
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if not self.messages:
            raise AssertionError("the server's receive() was called after the guard closed")
        return self.messages.pop(0)


class Echo:
    """Accepts, then receives until a disconnect, trying to answer each message; records all."""

    def __init__(self, *, probe: bool = False) -> None:
        self.received: list[dict[str, Any]] = []
        self.send_error: BaseException | None = None
        self.probe = probe  # after the disconnect, send once and receive once more

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] == "websocket.disconnect" and not self.probe:
                return
            if message["type"] == "websocket.disconnect":
                try:
                    await send({"type": "websocket.send", "bytes": None, "text": "late"})
                except OSError as exc:
                    self.send_error = exc
                # Later calls keep answering the same, at once.
                assert await receive() == message
                return
            await send({**message, "type": "websocket.send"})


async def run(
    limits: MessageLimits, *messages: dict[str, Any], probe: bool = True
) -> tuple[Echo, Recorder, Script]:
    app, server, script = Echo(probe=probe), Recorder(), Script(*messages)
    await WebSocketGuard(app, message_limits=limits)(websocket_scope(), script, server)
    return app, server, script


def disconnect(code: int, reason: str) -> dict[str, Any]:
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


# (limits, messages the client sends, how many pass, the close code and reason)
CASES = [
    pytest.param(MessageLimits(max_size=4), [text("abcd"), text("abcde")], 1, 1009,
                 "message too big", id="text-size"),
    pytest.param(MessageLimits(max_size=4), [data(b"1234"), data(b"12345")], 1, 1009,
                 "message too big", id="bytes-size"),
    # "é" is two bytes in UTF-8: three characters, five bytes.
    pytest.param(MessageLimits(max_size=4), [text("ab"), text("aéé")], 1,
                 1009, "message too big", id="text-counts-utf8-bytes"),
    pytest.param(MessageLimits(max_messages=3), [text("a")] * 4, 3, 1008,
                 "too many messages", id="messages-per-interval"),
    pytest.param(MessageLimits(max_bytes=10), [data(b"12345"), data(b"12345"), data(b"1")], 2,
                 1008, "too much data", id="bytes-per-interval"),
]  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize(("limits", "messages", "passed", "code", "reason"), CASES)
async def test_the_first_limit_passed_closes_the_connection(
    limits: MessageLimits,
    messages: list[dict[str, Any]],
    passed: int,
    code: int,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="asgi_ws_deny"):
        app, server, script = await run(limits, *messages)
    assert app.received == [*messages[:passed], disconnect(code, reason)]
    echoes = [{**message, "type": "websocket.send"} for message in messages[:passed]]
    close = {"type": "websocket.close", "code": code, "reason": reason}
    assert server.messages == [ACCEPT, *echoes, close]
    assert isinstance(app.send_error, ClosedByGuardError)
    assert isinstance(app.send_error, OSError)
    assert (app.send_error.code, app.send_error.reason) == (code, reason)
    assert script.calls == 1 + passed + 1  # nothing asked of the server after the close
    assert [record.levelno for record in caplog.records] == [logging.INFO]


@pytest.mark.anyio
async def test_within_the_limits_every_message_passes_untouched() -> None:
    limits = MessageLimits(max_size=5, max_messages=3, max_bytes=15)
    messages = [text("abcde"), data(b"12345"), text("éa")]
    app, server, _ = await run(limits, *messages, disconnect(1000, ""), probe=False)
    assert app.received == [*messages, disconnect(1000, "")]
    assert server.messages[-1] == {**messages[-1], "type": "websocket.send"}


def test_a_window_closes_only_on_more_than_the_limit_within_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    reads: list[float] = []

    def clock() -> float:
        reads.append(now[0])
        return now[0]

    monkeypatch.setattr(limits_module, "_clock", clock)
    limits = MessageLimits(max_messages=2, interval=10)
    meter = limits.meter()
    assert meter.exceeded(text("a")) is None  # opens the window [100, 110)
    now[0] = 109.9
    assert meter.exceeded(text("a")) is None
    assert reads == [100.0]  # a message within the limits reads no clock
    assert meter.exceeded(text("a")) == (1008, "too many messages")  # 3 within 10 s
    meter = limits.meter()  # another connection counts alone
    assert meter.exceeded(text("a")) is None  # opens [109.9, 119.9)
    assert meter.exceeded(text("a")) is None
    now[0] = 119.9  # the window has ended: this message opens the next, counted alone
    assert meter.exceeded(text("a")) is None
    assert meter.exceeded(text("a")) is None
    assert meter.exceeded(text("a")) == (1008, "too many messages")


def test_a_window_for_bytes_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(limits_module, "_clock", lambda: now[0])
    meter = MessageLimits(max_bytes=4, interval=1).meter()
    assert meter.exceeded(data(b"123")) is None
    assert meter.exceeded(data(b"12")) == (1008, "too much data")
    meter = MessageLimits(max_bytes=4, interval=1).meter()
    assert meter.exceeded(data(b"123")) is None
    now[0] = 1.0
    assert meter.exceeded(data(b"1234")) is None  # a new window, counted alone
    now[0] = 5.0
    assert meter.exceeded(data(b"12345")) == (1008, "too much data")  # alone over the limit


def test_only_received_data_counts() -> None:
    meter = MessageLimits(max_messages=1, max_size=1).meter()
    for other in (CONNECT, disconnect(1000, ""), {"type": "websocket.receive"}):
        assert meter.exceeded(other) is None
    assert meter.exceeded(data(b"ab")) == (1009, "message too big")


@pytest.mark.anyio
async def test_without_limits_nothing_is_counted() -> None:
    guard = WebSocketGuard(Echo())
    assert guard.message_limits is None
    big = data(b"x" * 100_000)
    _, server, _ = await run_unlimited(guard, big)
    assert server.messages[-1] == {**big, "type": "websocket.send"}


async def run_unlimited(
    guard: WebSocketGuard, *messages: dict[str, Any]
) -> tuple[Any, Recorder, Script]:
    server, script = Recorder(), Script(*messages, disconnect(1000, ""))
    await guard(websocket_scope(), script, server)
    return guard.app, server, script


@pytest.mark.anyio
async def test_a_limit_passed_after_the_app_closed_changes_nothing() -> None:
    """A message the server had read before the application's close is handed over as is."""
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        received.append(await receive())

    server = Recorder()
    limits = MessageLimits(max_size=1)
    await WebSocketGuard(app, message_limits=limits)(
        websocket_scope(), Script(data(b"too big")), server
    )
    assert received == [data(b"too big")]
    assert [message["type"] for message in server.messages] == [
        "websocket.accept",
        "websocket.close",
    ]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_size": 0},
        {"max_size": -1},
        {"max_size": 1.5},
        {"max_size": True},
        {"max_messages": "10"},
        {"max_bytes": 10, "interval": 0},
        {"max_bytes": 10, "interval": float("inf")},
        {"max_bytes": 10, "interval": float("nan")},
    ],
    ids=repr,
)
def test_bad_limits_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidDenialError):
        MessageLimits(**options)


def test_the_guard_takes_only_message_limits() -> None:
    with pytest.raises(InvalidDenialError, match="MessageLimits"):
        WebSocketGuard(Echo(), message_limits={"max_size": 1})  # type: ignore[arg-type]
    limits = MessageLimits(max_size=1, interval=2)
    assert repr(limits) == "MessageLimits(max_size=1, interval=2.0)"


# --- On real servers ------------------------------------------------------------------------

TESTS = Path(__file__).parent


@pytest.mark.servers
@pytest.mark.parametrize("variant", ["uvicorn-sansio", "hypercorn-trio"])
def test_on_a_server_the_client_gets_the_limits_close_code(variant: str) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from conformance.servers import run_server

    with run_server(variant, "message_limits_app:app", app_dir=TESTS) as server:
        url = f"ws://{server.host}:{server.port}/echo"
        with connect(url, open_timeout=5, close_timeout=5) as ws:
            ws.send("x" * 16)
            assert ws.recv(timeout=5) == "x" * 16
            ws.send("x" * 17)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1009, "message too big")
        with connect(url, open_timeout=5, close_timeout=5) as ws:
            for number in range(5):
                ws.send(str(number))
                assert ws.recv(timeout=5) == str(number)
            ws.send("6")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "too many messages")
    log = server.log()
    assert log.count("disconnect 1009") == 1, log
    assert log.count("disconnect 1008") == 1, log


# --- The example ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_example_echoes_within_its_limits_and_closes_past_them() -> None:
    from asgi_ws_deny.testing import handshake
    from examples.message_limits import app

    within = await handshake(app, "/ws", messages=["a" * 4096, "b"])
    assert within.data == ("a" * 4096, "b")
    too_big = await handshake(app, "/ws", messages=["a", "é" * 2049])  # 4,098 bytes
    assert (too_big.data, too_big.close_code) == (("a",), 1009)
    flood = await handshake(app, "/ws", messages=["x"] * 25)
    assert (flood.data, flood.close_code) == (("x",) * 20, 1008)


# --- Close codes ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_close_codes_can_be_chosen() -> None:
    limits = MessageLimits(max_size=1, max_messages=1, size_code=4009, rate_code=4008)
    app, server, _ = await run(limits, data(b"12"))
    assert app.received == [disconnect(4009, "message too big")]
    assert server.messages[-1] == {
        "type": "websocket.close",
        "code": 4009,
        "reason": "message too big",
    }
    assert repr(limits) == (
        "MessageLimits(max_size=1, max_messages=1, interval=1.0, size_code=4009, rate_code=4008)"
    )
    app, server, _ = await run(limits, data(b"1"), data(b"1"))
    assert app.received[-1] == disconnect(4008, "too many messages")


@pytest.mark.parametrize("code", [1004, 1005, 1006, 1015, 2000, 999, 5000, True, "1009"])
def test_a_close_code_that_cannot_be_sent_is_refused(code: Any) -> None:
    with pytest.raises(InvalidDenialError, match="close code"):
        MessageLimits(max_size=1, size_code=code)
    with pytest.raises(InvalidDenialError, match="close code"):
        MessageLimits(max_size=1, rate_code=code)


@pytest.mark.anyio
async def test_a_server_that_refuses_the_guards_close_still_ends_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """daphne 4.2 raises a bare Exception for a close code outside 1000 and 3000-4999."""

    class Refusing(Recorder):
        async def __call__(self, message: Any) -> None:
            if message["type"] == "websocket.close":
                raise Exception("invalid close code 1009 (must be 1000 or from [3000, 4999])")
            await super().__call__(message)

    app, script = Echo(probe=True), Script(data(b"too big"))
    limits = MessageLimits(max_size=1)
    with caplog.at_level(logging.ERROR, logger="asgi_ws_deny"):
        await WebSocketGuard(app, message_limits=limits)(websocket_scope(), script, Refusing())
    assert app.received == [disconnect(1009, "message too big")]
    assert isinstance(app.send_error, ClosedByGuardError)
    assert ["refused the guard's close" in r.getMessage() for r in caplog.records] == [True]

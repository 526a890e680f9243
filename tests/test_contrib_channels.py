"""asgi_ws_deny.contrib.channels in memory: Channels' WebsocketCommunicator and the harness.

Channels runs on asyncio only (its consumers wait with ``asyncio.wait``), so these tests do too.
"""

from __future__ import annotations

from typing import Any

import pytest

# The example configures Django before anything of Channels is imported.
from examples.frameworks import channels_app  # isort: skip

from channels.exceptions import DenyConnection
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from django.urls import path

from asgi_ws_deny import (
    EXTENSION,
    Denial,
    DenialUnsupportedError,
    Denied,
    HandshakeStateError,
    InvalidDenialError,
)
from asgi_ws_deny.contrib.channels import DISCONNECT_CODE, DenialMixin
from asgi_ws_deny.testing import ProtocolViolation, handshake
from tests.helpers import Recorder, websocket_scope

UNKNOWN_USER_JSON = b'{"error":"unknown user"}'
PATHS = ["/ws", "/denied"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- Channels' own test client -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("target", PATHS)
async def test_communicator_without_the_extension_sees_a_close(target: str) -> None:
    communicator = WebsocketCommunicator(channels_app.application, target)
    connected, code = await communicator.connect()
    assert (connected, code) == (False, 1008)
    # The consumer ended by itself: no disconnect was sent to it.
    await communicator.wait(timeout=1)


@pytest.mark.anyio
@pytest.mark.parametrize("target", PATHS)
async def test_communicator_with_the_extension_sees_the_response(target: str) -> None:
    communicator = WebsocketCommunicator(channels_app.application, target)
    # Channels' communicator builds a scope without extensions; this one is a server with it.
    communicator.scope["extensions"] = {EXTENSION: {}}
    await communicator.send_input({"type": "websocket.connect"})
    start = await communicator.receive_output(timeout=1)
    body = await communicator.receive_output(timeout=1)
    await communicator.wait(timeout=1)
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 401
    assert (b"www-authenticate", b'Bearer realm="chat"') in start["headers"]
    assert body == {
        "type": "websocket.http.response.body",
        "body": UNKNOWN_USER_JSON,
        "more_body": False,
    }


@pytest.mark.anyio
@pytest.mark.parametrize("target", PATHS)
async def test_communicator_admits_alice(target: str) -> None:
    communicator = WebsocketCommunicator(
        channels_app.application, target, headers=[(b"x-user", b"alice")]
    )
    assert await communicator.connect() == (True, None)
    assert await communicator.receive_from() == "hello alice"
    assert (await communicator.receive_output())["type"] == "websocket.close"
    await communicator.disconnect()


# --- The harness: what a client sees, and that receive() is never called after a denial -------


@pytest.mark.anyio
@pytest.mark.parametrize("target", PATHS)
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_example_in_the_harness(target: str, extension: bool) -> None:
    result = await handshake(channels_app.application, target, extension=extension)
    if extension:
        assert (result.status, result.body) == (401, UNKNOWN_USER_JSON)
        assert result.header("content-type") == b"application/json"
    else:
        assert (result.status, result.body) == (403, b"")
    admitted = await handshake(channels_app.application, target, headers={"x-user": "alice"})
    assert (admitted.accepted, admitted.data) == (True, ("hello alice",))


class PlainChannels(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        raise DenyConnection


@pytest.mark.anyio
async def test_without_the_mixin_channels_waits_in_receive_after_a_denial() -> None:
    """The problem the mixin solves: a denied consumer goes on to call receive()."""
    with pytest.raises(ProtocolViolation, match=r"receive\(\) was called after a denial"):
        await handshake(PlainChannels.as_asgi(), "/")


# --- The mixin's rules -------------------------------------------------------------------------


class Recording(DenialMixin, AsyncWebsocketConsumer):
    """Runs ``self.script`` in connect() and records what happened."""

    log: list[Any]

    def __init__(self, script: Any, log: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.log = log

    async def connect(self) -> None:
        await self.script(self)

    async def disconnect(self, code: int) -> None:
        self.log.append(("disconnect", code))


def consumer(script: Any, **options: Any) -> tuple[Any, list[Any]]:
    log: list[Any] = []
    return Recording.as_asgi(script=script, log=log, **options), log


@pytest.mark.anyio
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_deny_returns_the_outcome_and_ends_the_consumer(extension: bool) -> None:
    async def script(self: Recording) -> None:
        self.log.append(await self.deny(429, [("retry-after", "5")], b"slow"))

    app, log = consumer(script)
    result = await handshake(app, "/", extension=extension)
    assert result.status == (429 if extension else 403)
    assert log == [
        "response" if extension else "close",
        ("disconnect", DISCONNECT_CODE),
    ]


@pytest.mark.anyio
async def test_the_denial_is_kept_on_the_consumer() -> None:
    async def script(self: Recording) -> None:
        await self.deny(Denial.text(403, "no"))
        self.log.append((self.handshake_state.name, self.denial))

    app, log = consumer(script)
    await handshake(app, "/")
    assert log[0] == ("DENIED", Denial.text(403, "no"))


async def deny_after_accept(self: Recording) -> None:
    await self.accept()
    await self.deny(401)


async def accept_after_deny(self: Recording) -> None:
    await self.deny(401)
    await self.accept()


async def close_after_deny(self: Recording) -> None:
    await self.deny(401)
    await self.close()


async def deny_twice(self: Recording) -> None:
    await self.deny(401)
    await self.deny(401)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("script", "sent"),
    [
        (deny_after_accept, ["websocket.accept"]),
        (accept_after_deny, ["websocket.http.response.start", "websocket.http.response.body"]),
        (close_after_deny, ["websocket.http.response.start", "websocket.http.response.body"]),
        (deny_twice, ["websocket.http.response.start", "websocket.http.response.body"]),
    ],
    ids=["deny-after-accept", "accept-after-deny", "close-after-deny", "deny-twice"],
)
async def test_out_of_order_answers_raise_before_sending(script: Any, sent: list[str]) -> None:
    app, _ = consumer(script)
    recorder = Recorder()
    connects = iter([{"type": "websocket.connect"}])

    async def receive() -> dict[str, Any]:
        return next(connects)

    with pytest.raises(HandshakeStateError):
        await app(websocket_scope(), receive, recorder)
    assert [message["type"] for message in recorder.messages] == sent


@pytest.mark.anyio
async def test_invalid_input_raises_before_sending() -> None:
    async def script(self: Recording) -> None:
        for bad in ((101,), (Denial(403), [("a", "b")])):
            with pytest.raises(InvalidDenialError):
                await self.deny(*bad)
        self.log.append(self.handshake_state.name)
        await self.deny(403)

    app, log = consumer(script)
    result = await handshake(app, "/")
    assert (result.status, log[0]) == (403, "CONNECTING")


@pytest.mark.anyio
async def test_fallback_raise() -> None:
    async def script(self: Recording) -> None:
        with pytest.raises(DenialUnsupportedError):
            await self.deny(401, fallback="raise")
        self.log.append(self.handshake_state.name)
        await self.close()

    app, log = consumer(script)
    result = await handshake(app, "/", extension=False)
    assert (result.status, log[0]) == (403, "CONNECTING")


@pytest.mark.anyio
async def test_denial_fallback_attribute() -> None:
    async def script(self: Recording) -> None:
        await self.deny(401)  # pragma: no cover - raises first

    class Strict(Recording):
        denial_fallback = "raise"

    app = Strict.as_asgi(script=script, log=[])
    with pytest.raises(DenialUnsupportedError):
        await handshake(app, "/", extension=False)


@pytest.mark.anyio
async def test_denied_after_accept_closes_with_4000_plus_status() -> None:
    async def script(self: Recording) -> None:
        await self.accept()
        raise Denied(401, reason="log in again")

    app, _ = consumer(script)
    result = await handshake(app, "/")
    assert (result.accepted, result.close_code, result.close_reason) == (
        True,
        4401,
        "log in again",
    )


@pytest.mark.anyio
async def test_channels_deny_connection_also_ends_the_consumer() -> None:
    async def script(self: Recording) -> None:
        raise DenyConnection

    app, log = consumer(script)
    communicator = WebsocketCommunicator(app, "/")
    assert await communicator.connect() == (False, 1000)
    await communicator.wait(timeout=1)
    assert log == [("disconnect", DISCONNECT_CODE)]
    result = await handshake(app, "/")
    assert (result.status, [m["type"] for m in result.messages]) == (403, ["websocket.close"])


class JsonChat(DenialMixin, AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        await self.deny(Denial.json(403, {"error": "json consumer"}))


@pytest.mark.anyio
async def test_the_mixin_suits_the_json_consumer() -> None:
    app = URLRouter([path("json", JsonChat.as_asgi())])
    result = await handshake(app, "/json")
    assert (result.status, result.json()) == (403, {"error": "json consumer"})


class Room(DenialMixin, AsyncWebsocketConsumer):
    groups = ["room"]  # noqa: RUF012 - Channels reads it as a class attribute

    async def connect(self) -> None:
        layer_groups.append(dict(self.channel_layer.groups))
        await self.deny(403)


layer_groups: list[dict[str, Any]] = []


@pytest.mark.anyio
async def test_a_denied_consumer_leaves_its_groups() -> None:
    in_memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=in_memory):
        layer = get_channel_layer()
        result = await handshake(Room.as_asgi(), "/")
        assert result.status == 403
        assert list(layer_groups[0]) == ["room"]  # joined before connect() ran
        assert layer.groups == {}  # and left when the denial ended the consumer

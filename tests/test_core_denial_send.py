"""`denial_send`: a framework's own response becomes one validated denial, or nothing at all."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.helpers import Recorder, drive, websocket_scope

START = {
    "type": "http.response.start",
    "status": 401,
    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
}


def body(data: bytes, *, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def feed(core: ModuleType, messages: list[Any], **options: Any) -> Recorder:
    """Send ``messages`` through a `denial_send` over a recording ``send``."""
    server = Recorder()
    send = core.denial_send(options.pop("scope", websocket_scope()), server, **options)
    for message in messages:
        drive(send(message))
    return server


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b'{"error":"no"}'], id="one-body"),
        pytest.param([b'{"error"', b"", b':"no"}'], id="streamed"),
    ],
)
def test_a_response_becomes_the_denial_of_its_parts(core: ModuleType, chunks: list[bytes]) -> None:
    messages = [START, *(body(c, more=True) for c in chunks[:-1]), body(chunks[-1])]
    server = feed(core, messages)
    expected = core.denial_messages(websocket_scope(), 401, START["headers"], b'{"error":"no"}')
    assert server.messages == expected
    assert server.messages[0]["headers"][-1] == (b"content-length", b"14")


def test_nothing_is_sent_until_the_body_ends(core: ModuleType) -> None:
    server = feed(core, [START, body(b"part", more=True)])
    assert server.messages == []


def test_a_body_without_more_body_ends_it(core: ModuleType) -> None:
    server = feed(core, [START, {"type": "http.response.body", "body": b"x"}])
    assert [m["type"] for m in server.messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]


def test_without_the_extension_the_fallback_close(core: ModuleType) -> None:
    server = feed(core, [START, body(b"no")], scope=websocket_scope(extension=False))
    assert server.messages == [{"type": "websocket.close", "code": 1008, "reason": ""}]


def test_without_the_extension_fallback_raise(core: ModuleType) -> None:
    server = Recorder()
    send = core.denial_send(websocket_scope(extension=False), server, fallback="raise")
    drive(send(START))
    with pytest.raises(core.DenialUnsupportedError):
        drive(send(body(b"no")))
    assert server.messages == []


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        pytest.param([{**START, "trailers": True}], "no trailers", id="trailers-announced"),
        pytest.param(
            [START, {"type": "http.response.trailers", "headers": []}],
            "cannot be part of a denial",
            id="trailers-message",
        ),
        pytest.param(
            [START, {"type": "http.response.pathsend", "path": "/etc/hostname"}],
            "cannot be part of a denial",
            id="pathsend",
        ),
        pytest.param([{"type": "websocket.accept"}], "cannot be part of a denial", id="accept"),
        pytest.param([body(b"x")], "before http.response.start", id="body-first"),
        pytest.param([START, START], "twice", id="two-starts"),
        pytest.param([START, body(b"x"), body(b"y")], "after the end", id="after-the-end"),
        pytest.param([START, body("text")], "got str", id="str-body"),  # type: ignore[arg-type]
        pytest.param([{**START, "status": 101}, body(b"")], "1xx status", id="switching-protocols"),
        pytest.param(
            [{**START, "headers": [(b"connection", b"close")]}, body(b"")],
            "cannot be set on a denial",
            id="connection-header",
        ),
        pytest.param(
            [{**START, "headers": [(b"content-length", b"5")]}, body(b"x")],
            "does not match",
            id="wrong-content-length",
        ),
    ],
)
def test_anything_else_raises_and_nothing_is_sent(
    core: ModuleType, messages: list[Any], match: str
) -> None:
    """The error comes with the last message; what went out before is a whole denial only."""
    server = Recorder()
    send = core.denial_send(websocket_scope(), server)
    *taken, refused = messages
    for message in taken:
        drive(send(message))
    sent = list(server.messages)
    with pytest.raises(core.InvalidDenialError, match=match):
        drive(send(refused))
    assert server.messages == sent
    assert len(sent) == (2 if match == "after the end" else 0)


def test_after_an_error_every_message_is_refused(core: ModuleType) -> None:
    server = Recorder()
    send = core.denial_send(websocket_scope(), server)
    with pytest.raises(core.InvalidDenialError):
        drive(send(body(b"x")))
    with pytest.raises(core.InvalidDenialError, match="after an invalid response"):
        drive(send(START))
    assert server.messages == []


def test_a_body_over_max_body_is_refused_as_it_arrives(core: ModuleType) -> None:
    server = Recorder()
    send = core.denial_send(websocket_scope(), server, max_body=10)
    drive(send(START))
    drive(send(body(b"x" * 10, more=True)))
    with pytest.raises(core.InvalidDenialError, match="max_body of 10 bytes"):
        drive(send(body(b"x", more=True)))
    assert server.messages == []


def test_the_default_max_body(core: ModuleType) -> None:
    assert core.MAX_BODY_BYTES == 64 * 1024
    assert len(feed(core, [START, body(b"x" * core.MAX_BODY_BYTES)]).messages) == 2
    # Over the default in one chunk (the chunk itself is too big) or in several.
    with pytest.raises(core.InvalidDenialError, match="MAX_BODY_BYTES"):
        feed(core, [START, body(b"x" * (core.MAX_BODY_BYTES + 1))])
    half = b"x" * (core.MAX_BODY_BYTES // 2)
    with pytest.raises(core.InvalidDenialError, match="max_body"):
        feed(core, [START, body(half, more=True), body(half, more=True), body(b"x")])


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"fallback": "accept"}, id="fallback"),
        pytest.param({"max_body": -1}, id="negative"),
        pytest.param({"max_body": 1.5}, id="float"),
        pytest.param({"max_body": True}, id="bool"),
        pytest.param({"max_body": 64 * 1024 + 1}, id="over-max-body-bytes"),
    ],
)
def test_bad_options_raise_at_once(core: ModuleType, options: dict[str, Any]) -> None:
    with pytest.raises(core.InvalidDenialError):
        core.denial_send(websocket_scope(), Recorder(), **options)


def test_a_client_that_left_ends_it_quietly(core: ModuleType) -> None:
    server = Recorder(fail_at=1)
    send = core.denial_send(websocket_scope(), server)
    drive(send(START))
    drive(send(body(b"no")))  # deny's "disconnected": nothing raised to the framework
    assert server.messages == []


def test_the_websocket_prefixed_forms_are_taken_too(core: ModuleType) -> None:
    """Frameworks that send a Response in a websocket scope use the extension's own names."""
    start = {**START, "type": "websocket.http.response.start"}
    final = {**body(b"no"), "type": "websocket.http.response.body"}
    server = feed(core, [start, final])
    assert server.messages == core.denial_messages(websocket_scope(), 401, START["headers"], b"no")


@pytest.mark.parametrize(
    ("scope", "server", "outcome"),
    [
        pytest.param(websocket_scope(), Recorder(), "response", id="response"),
        pytest.param(websocket_scope(extension=False), Recorder(), "close", id="close"),
        pytest.param(websocket_scope(), Recorder(fail_at=1), "disconnected", id="disconnected"),
    ],
)
def test_the_outcome_is_that_of_deny(
    core: ModuleType, scope: dict[str, Any], server: Recorder, outcome: str
) -> None:
    send = core.denial_send(scope, server)
    assert send.outcome is None
    drive(send(START))
    assert send.outcome is None
    drive(send(body(b"no")))
    assert send.outcome == outcome

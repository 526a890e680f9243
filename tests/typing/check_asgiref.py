"""Type test, checked by ``mypy --strict``: what asgi-ws-deny emits is what asgiref's types accept.

This file is never run; the type checker reads it (``make typecheck`` and ``tests/test_typing.py``).
"""

from __future__ import annotations

from asgiref.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    WebSocketScope,
)
from asgiref.typing import WebSocketCloseEvent as AsgirefClose
from asgiref.typing import WebSocketResponseBodyEvent as AsgirefBody
from asgiref.typing import WebSocketResponseStartEvent as AsgirefStart

from asgi_ws_deny import (
    Denial,
    DenialMessage,
    Outcome,
    WebSocketCloseEvent,
    WebSocketResponseBodyEvent,
    WebSocketResponseStartEvent,
    denial_messages,
    deny,
)


def each_message_is_a_send_event(message: DenialMessage) -> ASGISendEvent:
    return message


def the_list_is_a_list_of_send_events(scope: WebSocketScope) -> list[ASGISendEvent]:
    return list(denial_messages(scope, 401, [("www-authenticate", "Bearer")], b"no"))


def start_is_asgiref_start(message: WebSocketResponseStartEvent) -> AsgirefStart:
    return message


def body_is_asgiref_body(message: WebSocketResponseBodyEvent) -> AsgirefBody:
    return message


def close_is_asgiref_close(message: WebSocketCloseEvent) -> AsgirefClose:
    return message


def asgiref_start_is_ours(message: AsgirefStart) -> WebSocketResponseStartEvent:
    return message


async def deny_takes_asgiref_callables(scope: WebSocketScope, send: ASGISendCallable) -> Outcome:
    return await deny(scope, send, Denial.json(401, {"error": "unauthorized"}))


async def a_denial_is_an_asgiref_application(
    scope: WebSocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
) -> None:
    await Denial(403)(scope, receive, send)


def headers_in_every_form() -> list[Denial]:
    return [
        Denial(401, [("www-authenticate", "Bearer")]),
        Denial(401, [(b"www-authenticate", b"Bearer")]),
        Denial(401, {"www-authenticate": "Bearer"}),
        Denial(401, {b"www-authenticate": b"Bearer"}),
        Denial(401, {"www-authenticate": b"Bearer"}),
        Denial(401, (("x-a", "1"), (b"x-b", "2"))),
    ]

"""Django Channels: ``await self.deny(401, ...)`` in a consumer's ``connect()``.

Theory of operation
-------------------
A Channels consumer answers a handshake in ``connect()``: ``accept()``, or ``close()`` (which the
server turns into 403, whatever the reason). `DenialMixin` adds a third answer, `deny`, which
sends a real HTTP response through the core `deny` where the server lists the denial-response
extension (uvicorn, hypercorn) and falls back to ``websocket.close`` (403) where it does not
(daphne). Raising `Denied` in ``connect()`` does the same.

After the handshake, a consumer waits in ``receive()`` for the next message until the server
reports the disconnect. After a denial that wait is the servers' least portable corner: one
returns at once, another when the client closes, another never. So once ``connect()`` has
refused the handshake (with `deny`, `Denied`, or Channels' own ``close()`` and
``DenyConnection`` before accept), the mixin ends the consumer itself, at once: it runs the
consumer's own disconnect path (leaving its ``groups``, calling ``disconnect(code)`` with 1006,
"closed without a close frame", RFC 6455 section 7.1.5) and stops it, and ``receive()`` is
never called again.

The mixin also keeps the handshake in order: `deny` after ``accept()`` or ``close()`` raises
`HandshakeStateError`, as do ``accept()`` and ``close()`` after a denial, each before anything
is sent. `Denied` raised after ``accept()`` in ``connect()`` closes the connection with
``4000 + status`` and its reason, as `WebSocketGuard` does.

Channels runs on asyncio only (its consumers wait with ``asyncio.wait``), so this module does
too. It suits ``AsyncWebsocketConsumer`` and ``AsyncJsonWebsocketConsumer``; the synchronous
``WebsocketConsumer`` cannot await `deny`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

try:
    from channels.exceptions import StopConsumer
except ImportError as error:
    raise ImportError(
        "asgi_ws_deny.contrib.channels needs Django Channels: pip install 'asgi-ws-deny[channels]'"
    ) from error

from asgi_ws_deny import _deny
from asgi_ws_deny._deny import as_denial
from asgi_ws_deny.guard import HandshakeState, HandshakeStateError, default_close_code
from asgi_ws_deny.handshake import Denied, close_reason

__all__ = ("DISCONNECT_CODE", "DenialMixin")

#: The code ``disconnect()`` receives after a denial: 1006, the connection ended without a close
#: frame (RFC 6455 section 7.1.5), which is what a denied client observes too.
DISCONNECT_CODE = 1006


class DenialMixin:
    """Adds ``await self.deny(status, headers, body)`` to an async Channels WebSocket consumer.

    Put it first among the bases: ``class Chat(DenialMixin, AsyncWebsocketConsumer)``. In
    ``connect()``, ``await self.deny(...)`` (then return) or ``raise Denied(...)`` refuses the
    handshake; the consumer then ends without waiting for the server. ``denial_fallback`` is
    the `deny` fallback used when none is given (``"close"``: 403 where the server lacks the
    extension).
    """

    #: The fallback of `deny` where the server lacks the denial-response extension.
    denial_fallback: _deny.Fallback = "close"

    # Set by the consumer's ``__call__`` (Channels' AsyncConsumer) before any handler runs.
    scope: Mapping[str, Any]
    base_send: _deny.Send

    #: What the consumer answered the handshake with, once it has.
    handshake_state: HandshakeState = HandshakeState.CONNECTING
    #: The denial sent, once `deny` has sent one.
    denial: _deny.Denial | None = None

    async def deny(
        self,
        status: int | _deny.Denial = 403,
        headers: _deny.Headers = (),
        body: _deny.Body = b"",
        *,
        fallback: _deny.Fallback | None = None,
    ) -> _deny.Outcome:
        """Deny the handshake: the response where the server can send it, else 403.

        Takes what the core `deny` takes after ``scope`` and ``send``, and returns its outcome
        (``"response"``, ``"close"`` or ``"disconnected"``). Call it in ``connect()`` instead of
        ``accept()``, then return: the consumer ends when ``connect()`` does. Raises
        `HandshakeStateError` when the handshake was already answered, and `InvalidDenialError`
        for an input that cannot deny it, in both cases before anything is sent.
        """
        self._check_connecting("websocket.http.response.start")
        denial = as_denial(status, headers, body)
        chosen = self.denial_fallback if fallback is None else fallback
        # Validated for this scope first (it raises having sent nothing); then the state moves
        # before the first send, so nothing else is sent even if the client has left meanwhile.
        denial.messages(self.scope, fallback=chosen)
        self.handshake_state = HandshakeState.DENIED
        self.denial = denial
        return await _deny.deny(self.scope, self.base_send, denial, fallback=chosen)

    def _check_connecting(self, message_type: str) -> None:
        if self.handshake_state is not HandshakeState.CONNECTING:
            raise HandshakeStateError(
                self.handshake_state,
                message_type,
                "the handshake was already answered"
                + (" by a denial: nothing follows it" if self.denial is not None else ""),
            )

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        """Accept the handshake (Channels' ``accept``); refused after a denial."""
        self._check_connecting("websocket.accept")
        self.handshake_state = HandshakeState.OPEN
        await super().accept(subprotocol, headers)  # type: ignore[misc]

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close (Channels' ``close``; before accept, a 403); refused after a denial."""
        if self.denial is not None:
            self._check_connecting("websocket.close")
        if self.handshake_state is HandshakeState.CONNECTING:
            self.handshake_state = HandshakeState.DENIED
        elif self.handshake_state is HandshakeState.OPEN:
            self.handshake_state = HandshakeState.CLOSED
        await super().close(code, reason)  # type: ignore[misc]

    async def websocket_connect(self, message: Mapping[str, Any]) -> None:
        """Run ``connect()``; after a denial (or a close before accept) end the consumer."""
        try:
            await super().websocket_connect(message)  # type: ignore[misc]
        except Denied as denied:
            await self._denied(denied)
        if self.handshake_state is HandshakeState.DENIED:
            await self._end()

    async def _denied(self, denied: Denied) -> None:
        if self.handshake_state is HandshakeState.CONNECTING:
            await self.deny(denied.denial)
        elif self.handshake_state is HandshakeState.OPEN:
            await self.close(default_close_code(denied.status), close_reason(denied.reason))

    async def _end(self) -> None:
        """The consumer's own disconnect path, then stop, as after a real disconnect."""
        with contextlib.suppress(StopConsumer):
            await self.websocket_disconnect(  # type: ignore[attr-defined]
                {"type": "websocket.disconnect", "code": DISCONNECT_CODE}
            )
        raise StopConsumer

"""Limits on what a client sends after admission, counted by the guard's ``receive``.

Theory of operation
-------------------
`MessageLimits` is configuration, validated once and shared by every connection a guard serves:
``WebSocketGuard(app, check, message_limits=MessageLimits(...))``. For each admitted connection
the guard asks it for a `MessageMeter`, which counts the ``websocket.receive`` messages the
application receives through the guard's ``receive`` and names the first limit one of them
passes. The guard then closes the connection itself (``websocket.close`` with the meter's code
and reason) and gives the application ``websocket.disconnect`` with the same code in place of
the message, and at every later ``receive()``; a later ``send`` raises `ClosedByGuardError`, an
``OSError``, as a server's does once its client has left (ASGI spec 2.4).

- The size of one message (``max_size``, in bytes; text counts its UTF-8 bytes): close 1009,
  "message too big" (RFC 6455 section 7.4.1).
- Messages per interval (``max_messages``): close 1008, policy violation.
- Bytes per interval (``max_bytes``): close 1008.

(``size_code`` and ``rate_code`` replace the two codes, for servers that refuse to send them.)

The intervals are fixed windows of ``interval`` seconds per connection. The first message opens
one; a message that passes a count after its window has ended opens the next, counted alone. A
connection is closed only when more than ``max_messages`` messages (or ``max_bytes`` bytes)
arrived within ``interval`` seconds of its window's opening; a burst that straddles two windows
may pass up to twice as many in ``interval`` seconds. Counting costs a few additions and
comparisons per message: the clock is read when a window opens and when a count passes its
limit, never for a message within the limits. A guard without limits counts nothing.

The server has already read a message, whole, before the application receives it, so these are
policy, not a defence of memory: the server's own limit (uvicorn ``--ws-max-size``, hypercorn
``websocket_max_message_size``) bounds what it buffers. Nothing here imports an event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from asgi_ws_deny import _deny

__all__ = ("MESSAGE_TOO_BIG", "POLICY_VIOLATION", "MessageLimits", "MessageMeter")

#: RFC 6455 section 7.4.1: a message too big to process.
MESSAGE_TOO_BIG = 1009
#: RFC 6455 section 7.4.1: a message that violates the endpoint's policy.
POLICY_VIOLATION = 1008

_RECEIVE = "websocket.receive"
# RFC 6455 section 7.4: the codes a close frame may carry.
_SENDABLE = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))
# The clock of the intervals (a test replaces it).
_clock = time.monotonic


def _limit(name: str, value: object, *, whole: bool = True) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if not whole else int):
        kind = "an int" if whole else "a number"
        raise _deny.InvalidDenialError(f"{name} must be None or {kind}, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise _deny.InvalidDenialError(f"{name} must be positive, got {value!r}")
    return value


class MessageLimits:
    """Per-connection limits on what an admitted client sends; the guard closes on the first
    one passed.

    ``MessageLimits(*, max_size=None, max_messages=None, max_bytes=None, interval=1.0)``

    - ``max_size``: the most bytes one message may hold (text counts its UTF-8 encoding);
      a larger one closes with 1009.
    - ``max_messages``: the most messages per ``interval``; one more closes with 1008.
    - ``max_bytes``: the most bytes per ``interval``; more closes with 1008.
    - ``interval``: the window of the two rates, in seconds.
    - ``size_code`` and ``rate_code``: the close codes, 1009 and 1008 by default (RFC 6455
      section 7.4.1). daphne 4.2 sends only 1000 and 3000-4999 (its close raises otherwise,
      and its client then gets 1011): there, use 4009 and 4008, say.

    Each limit is off while ``None``. Raises `InvalidDenialError` for a limit that is not a
    positive int, an interval that is not a positive number, no limit at all, or a close code
    that a close frame cannot carry (1000-1003, 1007-1014 and 3000-4999 can).
    """

    __slots__ = ("interval", "max_bytes", "max_messages", "max_size", "rate_code", "size_code")

    def __init__(
        self,
        *,
        max_size: int | None = None,
        max_messages: int | None = None,
        max_bytes: int | None = None,
        interval: float = 1.0,
        size_code: int = MESSAGE_TOO_BIG,
        rate_code: int = POLICY_VIOLATION,
    ) -> None:
        self.max_size: int | None = _limit("max_size", max_size)
        self.max_messages: int | None = _limit("max_messages", max_messages)
        self.max_bytes: int | None = _limit("max_bytes", max_bytes)
        self.interval: float = float(_limit("interval", interval, whole=False))
        for name, code in (("size_code", size_code), ("rate_code", rate_code)):
            if isinstance(code, bool) or not isinstance(code, int) or code not in _SENDABLE:
                raise _deny.InvalidDenialError(
                    f"{name} must be a close code a close frame can carry (RFC 6455 section "
                    f"7.4): 1000-1003, 1007-1014 or 3000-4999, got {code!r}"
                )
        self.size_code = int(size_code)
        self.rate_code = int(rate_code)
        if max_size is None and max_messages is None and max_bytes is None:
            raise _deny.InvalidDenialError(
                "MessageLimits needs max_size, max_messages or max_bytes; "
                "for no limits, leave the guard's message_limits at None"
            )

    def meter(self) -> MessageMeter:
        """A fresh count for one connection."""
        return MessageMeter(self)

    def __repr__(self) -> str:
        options = [
            f"{name}={getattr(self, name)!r}"
            for name in ("max_size", "max_messages", "max_bytes")
            if getattr(self, name) is not None
        ]
        codes = ""
        if (self.size_code, self.rate_code) != (MESSAGE_TOO_BIG, POLICY_VIOLATION):
            codes = f", size_code={self.size_code}, rate_code={self.rate_code}"
        return f"{type(self).__name__}({', '.join(options)}, interval={self.interval!r}{codes})"


class MessageMeter:
    """The count of one connection against its `MessageLimits`."""

    __slots__ = (
        "_bytes",
        "_interval",
        "_max_bytes",
        "_max_messages",
        "_max_size",
        "_messages",
        "_rate_code",
        "_size_code",
        "_window_end",
    )

    def __init__(self, limits: MessageLimits) -> None:
        self._max_size = limits.max_size
        self._size_code = limits.size_code
        self._rate_code = limits.rate_code
        # An absent rate is one that is never passed: the count below needs no branch for it.
        self._max_messages: float = math.inf if limits.max_messages is None else limits.max_messages
        self._max_bytes: float = math.inf if limits.max_bytes is None else limits.max_bytes
        self._interval = limits.interval
        self._window_end: float | None = None  # until the first message opens a window
        self._messages = 0
        self._bytes = 0

    def exceeded(self, message: Mapping[str, Any]) -> tuple[int, str] | None:
        """Count one received message; the close code and reason of the first limit it
        passes, else None. Messages other than ``websocket.receive`` are not counted."""
        if message.get("type") != _RECEIVE:
            return None
        data = message.get("bytes")
        if data is not None:
            size = len(data)
        else:
            text = message.get("text") or ""
            # An ASCII str is its own UTF-8 encoding; CPython knows this without a scan.
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
        if self._max_size is not None and size > self._max_size:
            return self._size_code, "message too big"
        if self._window_end is None:
            self._window_end = _clock() + self._interval
        self._messages += 1
        self._bytes += size
        if self._messages <= self._max_messages and self._bytes <= self._max_bytes:
            # Within the limits in this window, so within them whichever window this message
            # belongs to: no clock is read.
            return None
        return self._passed(size)

    def _passed(self, size: int) -> tuple[int, str] | None:
        """A count passed its limit: a violation while the window runs, else a new window."""
        now = _clock()
        assert self._window_end is not None
        if now >= self._window_end:
            # The window has ended: this message opens the next one, counted alone.
            self._window_end = now + self._interval
            self._messages = 1
            self._bytes = size
            if size <= self._max_bytes:
                return None
        if self._messages > self._max_messages:
            return self._rate_code, "too many messages"
        return self._rate_code, "too much data"

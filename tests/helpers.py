"""Recording ``send`` and ``receive`` callables and scope builders shared by the tests."""

from __future__ import annotations

import builtins
import importlib
import sys
from collections.abc import Coroutine, Mapping
from typing import Any

from asgi_ws_deny import EXTENSION

# Built in from Python 3.11; on 3.10 trio and anyio raise the groups of the exceptiongroup
# backport, which trio installs there. Looked up at run time for the type checker's sake.
_ExceptionGroup: type[Exception] = (
    vars(builtins)["ExceptionGroup"]
    if sys.version_info >= (3, 11)
    else importlib.import_module("exceptiongroup").ExceptionGroup
)


def exception_group(*errors: Exception, message: str = "task group") -> Exception:
    """An exception group of ``errors``, as a task group raises it on this Python."""
    group: Exception = _ExceptionGroup(message, list(errors))
    return group


def websocket_scope(*, extension: bool = True, **overrides: Any) -> dict[str, Any]:
    """A websocket scope as a server would give it, with or without the denial extension."""
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": {EXTENSION: {}} if extension else {},
    }
    scope.update(overrides)
    return scope


class Recorder:
    """An ASGI ``send`` that records every message; raises ``OSError`` from call ``fail_at`` on."""

    def __init__(self, *, fail_at: int | None = None) -> None:
        self.messages: list[Mapping[str, Any]] = []
        self.calls = 0
        self._fail_at = fail_at

    async def __call__(self, message: Mapping[str, Any]) -> None:
        self.calls += 1
        if self._fail_at is not None and self.calls >= self._fail_at:
            raise ConnectionResetError("client left")
        self.messages.append(message)


async def forbidden_receive() -> Mapping[str, Any]:
    """A ``receive`` that a denial must never call."""
    raise AssertionError("receive() was called during a denial")


def drive(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (a recording send never does), with no event loop."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise AssertionError("suspended although nothing here ever suspends")


class LyingBytes(bytes):
    """Bytes whose methods lie about their content: the checks must read the content itself."""

    def lower(self) -> bytes:  # type: ignore[override]
        return b"x-a\r\nset-cookie: a=b"

    def strip(self, chars: bytes | None = None) -> bytes:  # type: ignore[override]
        return self

    def __len__(self) -> int:
        return 0

    def __bytes__(self) -> bytes:
        return b"x"


class LyingStr(str):
    """A str whose ``encode`` lies about its content."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"x\r\ny: z"


class LyingInt(int):
    """An int whose comparisons and conversion claim another status (101)."""

    def __le__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return True

    def __int__(self) -> int:
        return 101

"""`ConnectionLimit`: open connections per key and in total, on leases given back at the end."""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from asgi_ws_deny import _leases, _redis
from asgi_ws_deny.handshake import (
    Admission,
    CheckResult,
    Handshake,
    InvalidCheckError,
)

if TYPE_CHECKING:
    pass
from asgi_ws_deny.checks._common import _json_denial, _logger
from asgi_ws_deny.checks._keys import KeyFunction, client_host


class ConnectionLimit:
    """Cap the connections open at once, per client key and in total; refuse with 429 or 503.

    ``ConnectionLimit(max_connections, *, key=client_host, max_total=None, storage="memory://",
    ttl=30, namespace="connections", retry_after=5)``

    - ``max_connections``: the most connections one key may hold open at once (1: one session
      per user); ``None`` for no cap per key (then ``max_total`` is needed).
    - ``key(handshake)``: whose connections a handshake counts among: `client_host` by default,
      or any function of the handshake (a user id, ...). ``None`` exempts the handshake.
    - ``max_total``: the most connections open at once in all, every key together.
    - ``storage``: ``"memory://"`` counts this process's connections (one server worker); a
      Redis URI (``"redis://127.0.0.1:6379/0"``, the ``ratelimit`` extra) counts those of every
      worker and host. Redis calls are sync, one round trip each at the handshake and at its end
      (about 0.1 ms on loopback), as `RateLimitCheck`'s, so they run under asyncio and trio.
    - ``ttl`` (seconds, Redis only): how long a lease outlives a process that stopped refreshing
      it. A timer thread refreshes this process's leases every ``ttl / 3`` seconds, never per
      message, so a killed worker's connections are free again within ``ttl``.
    - ``namespace``: keeps separate limits on one Redis apart. ``retry_after``: the seconds the
      refusals' ``retry-after`` header advises (no one can know when a connection will end).

    A handshake is admitted when both caps have room: the check takes a *lease* atomically
    (a Lua script on Redis) and admits with an `Admission` whose release gives it back when the
    connection ends, however it ends: a close, a disconnect, an application error, a
    cancellation, or a denial after all (by a later check of an `AllOf`, or by the
    application). So put it last among checks. It needs `WebSocketGuard`, which calls that
    release; a framework dependency that cannot call it fails closed (`run_check`).

    Refused: a key at its cap with 429, ``{"error":"too_many_connections","retry_after":n}``;
    the total at its cap with 503, ``{"error":"at_capacity","retry_after":n}``; both with
    ``retry-after: n``. A storage that fails raises, and the guard fails closed with 500.
    Raises `InvalidCheckError` for a bad option and ``ImportError`` for a Redis URI without
    ``redis``.
    """

    __slots__ = (
        "_at_capacity",
        "_leases",
        "_too_many",
        "key",
        "max_connections",
        "max_total",
        "namespace",
        "retry_after",
        "ttl",
    )

    def __init__(
        self,
        max_connections: int | None,
        *,
        key: KeyFunction = client_host,
        max_total: int | None = None,
        storage: str = "memory://",
        ttl: float = 30,
        namespace: str = "connections",
        retry_after: int = 5,
    ) -> None:
        for name, value in (("max_connections", max_connections), ("max_total", max_total)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidCheckError(
                    f"{name} must be None or an int of 1 or more, got {value!r}"
                )
        if max_connections is None and max_total is None:
            raise InvalidCheckError("ConnectionLimit needs max_connections, max_total or both")
        if not callable(key):
            raise InvalidCheckError(f"key must be callable, got {type(key).__name__}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < math.inf:
            raise InvalidCheckError(f"ttl must be a positive number of seconds, got {ttl!r}")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 1:
            raise InvalidCheckError(f"retry_after must be an int of 1 or more, got {retry_after!r}")
        if not isinstance(namespace, str) or not namespace:
            raise InvalidCheckError(f"namespace must be a non-empty str, got {namespace!r}")
        self.max_connections = max_connections
        self.max_total = max_total
        self.key = key
        self.ttl = float(ttl)
        self.namespace = namespace
        self.retry_after = retry_after
        self._leases: _leases.MemoryLeases | _leases.RedisLeases
        if storage == "memory://":
            self._leases = _leases.MemoryLeases()
        elif isinstance(storage, str) and storage.startswith(("redis://", "rediss://", "unix://")):
            self._leases = _leases.RedisLeases(_redis.client(storage), namespace, self.ttl)
        else:
            shown = _redis.without_password(storage) if isinstance(storage, str) else storage
            raise InvalidCheckError(
                "storage must be 'memory://' or a redis://, rediss:// or unix:// URI, "
                f"got {shown!r}"
            )
        retry = [("retry-after", str(retry_after))]
        self._too_many = _json_denial(
            429, {"error": "too_many_connections", "retry_after": retry_after}, retry
        )
        self._at_capacity = _json_denial(
            503, {"error": "at_capacity", "retry_after": retry_after}, retry
        )

    def __call__(self, handshake: Handshake) -> CheckResult | Awaitable[CheckResult]:
        key = self.key(handshake)
        if key is None:
            return None
        if not isinstance(key, str):
            raise TypeError(f"the key function returned {type(key).__name__}, not str or None")
        lease = secrets.token_hex(16)
        if isinstance(self._leases, _leases.MemoryLeases):
            return self._verdict(handshake, key, lease, self._take(key, lease))
        return self._take_off_loop(handshake, key, lease)

    def _take(self, key: str, lease: str) -> int:
        return self._leases.take(key, lease, self.max_connections, self.max_total)

    async def _take_off_loop(self, handshake: Handshake, key: str, lease: str) -> CheckResult:
        """Take the lease in a worker thread: a Redis that hangs holds a thread, never the
        event loop. Cancelled meanwhile (a check timeout), the lease it took goes back."""
        import anyio
        import anyio.to_thread

        try:
            taken = await anyio.to_thread.run_sync(self._take, key, lease)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._leases.give_back, key, lease)
            raise
        return self._verdict(handshake, key, lease, taken)

    def _verdict(self, handshake: Handshake, key: str, lease: str, taken: int) -> CheckResult:
        if taken == _leases.KEY_FULL:
            _logger.debug(
                "WebSocket handshake over its connection cap refused on %r", handshake.path
            )
            return self._too_many
        if taken == _leases.TOTAL_FULL:
            _logger.debug("WebSocket handshake over the total cap refused on %r", handshake.path)
            return self._at_capacity
        leases = self._leases

        def release() -> None:
            leases.give_back(key, lease)

        return Admission(release=release)

    def open_connections(self, key: str | None = None) -> int:
        """The leases held now for ``key``, or in total for ``None`` (every process's, with
        Redis)."""
        return self._leases.count(key)

    def __repr__(self) -> str:
        store = "memory" if isinstance(self._leases, _leases.MemoryLeases) else "redis"
        return (
            f"{type(self).__name__}({self.max_connections!r}, max_total={self.max_total!r}, "
            f"storage={store}, namespace={self.namespace!r})"
        )

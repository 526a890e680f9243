"""`RateLimitCheck`: handshakes per key and period, on the ``limits`` package."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from asgi_ws_deny import _deny, _redis
from asgi_ws_deny.handshake import (
    CheckResult,
    Handshake,
    InvalidCheckError,
)

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.aio.storage import Storage as AsyncStorage
    from limits.aio.strategies import RateLimiter as AsyncRateLimiter
    from limits.storage import Storage as SyncStorage
    from limits.strategies import RateLimiter as SyncRateLimiter
from asgi_ws_deny.checks._common import _json_denial, _logger
from asgi_ws_deny.checks._keys import KeyFunction, client_host

#: The ``limits`` strategies: exact (moving window), cheap (fixed window), or in between.
RateLimitStrategy = Literal["moving-window", "fixed-window", "sliding-window-counter"]
#: What `RateLimitCheck` answers while its storage fails: 503 (``"deny"``) or admit.
StorageFailure = Literal["deny", "allow"]


# The socket timeouts a Redis storage gets when its URI names none: redis-py's own default is
# none at all, so a Redis that accepts and never answers would hold a worker thread for ever.
# A round trip on a LAN is well under a millisecond; half a second is a dead server.
_REDIS_SCHEMES = frozenset(
    ("redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel", "valkey", "valkeys")
)
STORAGE_SOCKET_TIMEOUT = _redis.SOCKET_TIMEOUT


def _storage_timeouts(uri: str) -> dict[str, float]:
    """The socket timeouts to give a sync Redis storage; those in the URI itself win."""
    scheme = uri.partition("://")[0].lower()
    if scheme not in _REDIS_SCHEMES:
        return {}
    # redis-py lets the URI's query override these keyword arguments (ConnectionPool.from_url).
    return {
        "socket_timeout": STORAGE_SOCKET_TIMEOUT,
        "socket_connect_timeout": STORAGE_SOCKET_TIMEOUT,
    }


class _AsyncioOnlyError(RuntimeError):
    """An async storage of ``limits`` used under trio."""


class _Breaker:
    """A circuit breaker: after a failure, ``cooldown`` seconds without a storage call.

    When the cooldown ends, the next handshake is the probe: it reopens the breaker before it
    calls the storage, so that the handshakes arriving meanwhile fail fast too, and a success
    closes it. The state changes on the event loop only, never in a worker thread.
    """

    __slots__ = ("cooldown", "open_until", "probing")

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.open_until = 0.0
        self.probing = False

    def closed(self) -> bool:
        """Whether a storage call may go ahead now (a probe counts as one)."""
        if not self.open_until:
            return True
        now = time.monotonic()
        if now < self.open_until:
            return False
        self.open_until = now + self.cooldown  # this caller probes; the others wait
        self.probing = True
        return True

    def failed(self) -> bool:
        """Open (again) for a cooldown; True when it was closed: the failure to report."""
        now = time.monotonic()
        newly = self.probing or now >= self.open_until
        self.open_until, self.probing = now + self.cooldown, False
        return newly

    def succeeded(self) -> None:
        self.open_until, self.probing = 0.0, False

    def remaining(self) -> float:
        return max(0.0, self.open_until - time.monotonic())


class RateLimitCheck:
    """Limit handshakes per client key with the ``limits`` package; refuse with 429.

    ``RateLimitCheck(limit, *, key=client_host, storage="memory://",
    strategy="moving-window", namespace="handshake", timeout=1.0, on_error="deny",
    cooldown=5.0)``

    - ``limit``: one rate in the notation of ``limits`` (``"10/minute"``, ``"100 per hour"``)
      or a ``limits.RateLimitItem``. For several rates, chain several checks with `AllOf`.
    - ``key(handshake)``: whose budget a handshake spends: `client_host` by default, or any
      function of the handshake (a user id from a header, the path, ...). ``None`` exempts it.
    - ``storage``: a ``limits`` storage URI or object. ``"memory://"`` (the default) counts in
      this process only, so with N server workers a client gets N times the limit;
      ``"redis://127.0.0.1:6379"`` shares one count between every worker and host. A Redis
      URI without ``socket_timeout`` or ``socket_connect_timeout`` gets
      `STORAGE_SOCKET_TIMEOUT` (0.5 s) for each. The sync storages work under asyncio and
      trio: every one but ``memory://`` runs in a worker thread (``anyio.to_thread``), so a
      slow or hung storage never blocks the event loop. The async storages
      (``"async+memory://"``, ``"async+redis://"``) work under asyncio only: ``limits`` builds
      them on asyncio's locks and tasks, and under trio they raise.
    - ``strategy``: ``"moving-window"`` (exact), ``"fixed-window"`` or
      ``"sliding-window-counter"`` (see the ``limits`` documentation).
    - ``namespace``: keeps the counts of separate checks on one storage apart.
    - ``timeout``: seconds one handshake may wait for the storage (``memory://`` excepted).
    - ``on_error``: what a handshake gets while the storage fails (raises, or no answer
      within ``timeout``): ``"deny"`` (the default) refuses it with 503, ``retry-after`` and
      ``{"error":"rate_limit_unavailable","retry_after":n}``; ``"allow"`` admits it unlimited.
    - ``cooldown``: after a failure, the storage is left alone for this many seconds (a circuit
      breaker): every handshake meanwhile gets the ``on_error`` answer at once, and the first
      one after it probes the storage again. A dead Redis costs one fast answer per
      handshake, not one timeout; the failure is logged once per opening, as a warning.

    A handshake over the limit is refused with 429, ``retry-after`` (whole seconds until the
    window lets one more in, at least 1) and ``{"error":"rate_limited","retry_after":n}``.
    Every handshake the check sees is counted, admitted or not by later checks. Raises
    `InvalidCheckError` for a bad option and ``ImportError`` without ``limits`` or ``anyio``
    (``pip install 'asgi-ws-deny[ratelimit]'``).
    """

    __slots__ = (
        "_anyio",
        "_async_limiter",
        "_breaker",
        "_inline",
        "_sync_limiter",
        "key",
        "limit",
        "namespace",
        "on_error",
        "storage",
        "timeout",
    )

    limit: RateLimitItem
    storage: SyncStorage | AsyncStorage

    def __init__(
        self,
        limit: str | RateLimitItem,
        *,
        key: KeyFunction = client_host,
        storage: str | SyncStorage | AsyncStorage = "memory://",
        strategy: RateLimitStrategy = "moving-window",
        namespace: str = "handshake",
        timeout: float = 1.0,
        on_error: StorageFailure = "deny",
        cooldown: float = 5.0,
    ) -> None:
        try:
            import anyio
            import limits
            import limits.aio.storage
            import limits.aio.strategies
            import limits.storage
            import limits.strategies
        except ImportError as exc:
            raise ImportError(
                "RateLimitCheck needs the limits and anyio packages: "
                f"pip install 'asgi-ws-deny[ratelimit]' ({exc})"
            ) from exc
        if isinstance(limit, str):
            try:
                rates = limits.parse_many(limit)
            except ValueError as exc:
                raise InvalidCheckError(f"limit {limit!r}: {exc}") from None
            if len(rates) != 1:
                raise InvalidCheckError(
                    f"limit {limit!r} holds {len(rates)} rates; give one per RateLimitCheck "
                    "and chain them with AllOf"
                )
            limit = rates[0]
        if not isinstance(limit, limits.RateLimitItem):
            raise InvalidCheckError(
                f"limit must be a str or a limits.RateLimitItem, got {type(limit).__name__}"
            )
        if not callable(key):
            raise InvalidCheckError(f"key must be callable, got {type(key).__name__}")
        if strategy not in limits.strategies.STRATEGIES:
            raise InvalidCheckError(
                f"strategy must be one of {', '.join(map(repr, limits.strategies.STRATEGIES))}, "
                f"got {strategy!r}"
            )
        if not isinstance(namespace, str) or not namespace:
            raise InvalidCheckError(f"namespace must be a non-empty str, got {namespace!r}")
        for name, seconds in (("timeout", timeout), ("cooldown", cooldown)):
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
                raise InvalidCheckError(
                    f"{name} must be a number of seconds above 0, got {seconds!r}"
                )
        if on_error not in ("deny", "allow"):
            raise InvalidCheckError(f"on_error must be 'deny' or 'allow', got {on_error!r}")
        if isinstance(storage, str):
            uri = storage
            try:
                storage = limits.storage.storage_from_string(uri, **_storage_timeouts(uri))
            except limits.errors.ConfigurationError as exc:
                # limits quotes the URI, which may carry a password.
                message = str(exc).replace(uri, _redis.without_password(uri))
                raise InvalidCheckError(f"storage: {message}") from None
        self.limit = limit
        self.key = key
        self.namespace = namespace
        self.storage = storage
        self.timeout = float(timeout)
        self.on_error: StorageFailure = on_error
        self._breaker = _Breaker(float(cooldown))
        self._anyio = anyio
        self._inline = isinstance(storage, limits.storage.MemoryStorage)
        self._sync_limiter: SyncRateLimiter | None = None
        self._async_limiter: AsyncRateLimiter | None = None
        try:
            if isinstance(storage, limits.storage.Storage):
                self._sync_limiter = limits.strategies.STRATEGIES[strategy](storage)
            elif isinstance(storage, limits.aio.storage.Storage):
                # limits types this table with the abstract base class; its values are the
                # concrete strategies.
                factory: Callable[[AsyncStorage], AsyncRateLimiter] = (
                    limits.aio.strategies.STRATEGIES[strategy]
                )
                self._async_limiter = factory(storage)
            else:
                raise InvalidCheckError(
                    f"storage must be a URI or a limits storage, got {type(storage).__name__}"
                )
        except NotImplementedError as exc:
            raise InvalidCheckError(f"strategy {strategy!r}: {exc}") from None

    def __call__(self, handshake: Handshake) -> CheckResult | Awaitable[CheckResult]:
        key = self.key(handshake)
        if key is None:
            return None
        if not isinstance(key, str):
            raise TypeError(f"the key function returned {type(key).__name__}, not str or None")
        if self._inline:
            # A dict in this process: nothing to wait for, so no thread and no timeout.
            reset = self._hit_sync(key)
            return None if reset is None else self._refuse(handshake, reset)
        return self._hit(handshake, key)

    def _hit_sync(self, key: str) -> float | None:
        """Count one handshake: None when admitted, else when the window lets one more in."""
        assert self._sync_limiter is not None
        if self._sync_limiter.hit(self.limit, self.namespace, key):
            return None
        return self._sync_limiter.get_window_stats(self.limit, self.namespace, key).reset_time

    async def _hit_async(self, key: str) -> float | None:
        assert self._async_limiter is not None
        try:
            if await self._async_limiter.hit(self.limit, self.namespace, key):
                return None
            stats = await self._async_limiter.get_window_stats(self.limit, self.namespace, key)
        except RuntimeError as exc:
            if "no running event loop" in str(exc):
                raise _AsyncioOnlyError(
                    "the async storages of limits run under asyncio only; under trio give "
                    "RateLimitCheck a sync storage ('memory://', 'redis://...')"
                ) from exc
            raise
        return stats.reset_time

    async def _hit(self, handshake: Handshake, key: str) -> CheckResult:
        """Count one handshake on a storage that does I/O, never blocking the event loop.

        A sync storage runs in a worker thread (anyio's, so under asyncio and trio alike); the
        whole round is bounded by ``timeout``; a failure or a timeout opens the breaker, and
        while it is open every handshake gets the ``on_error`` answer without a storage call.
        """
        if not self._breaker.closed():
            return self._unavailable(handshake, None)
        anyio = self._anyio
        failure: BaseException | None = None
        with anyio.move_on_after(self.timeout) as deadline:
            try:
                if self._async_limiter is not None:
                    reset = await self._hit_async(key)
                else:
                    # abandon_on_cancel: at the timeout the handshake is answered at once; the
                    # thread finishes on its own, bounded by the storage's socket timeouts.
                    reset = await anyio.to_thread.run_sync(
                        self._hit_sync, key, abandon_on_cancel=True
                    )
            except _AsyncioOnlyError:
                raise  # a configuration mistake, not an outage: fail closed, loudly
            except Exception as exc:
                failure = exc
        if deadline.cancelled_caught:
            failure = TimeoutError(f"no answer within {self.timeout:g}s")
        if failure is not None:
            return self._unavailable(handshake, failure)
        self._breaker.succeeded()
        return None if reset is None else self._refuse(handshake, reset)

    def _unavailable(self, handshake: Handshake, failure: BaseException | None) -> CheckResult:
        """The ``on_error`` answer; a new failure opens the breaker and is logged once."""
        # Handshakes that were waiting together fail together: the first one reports it.
        if failure is not None and self._breaker.failed():
            _logger.warning(
                "rate-limit storage %s failed (%s: %s); %s handshakes without it for %gs",
                type(self.storage).__name__,
                type(failure).__name__,
                _redis.without_password(str(failure)),
                "denying" if self.on_error == "deny" else "admitting",
                self._breaker.cooldown,
            )
        if self.on_error == "allow":
            return None
        retry = max(1, math.ceil(self._breaker.remaining()))
        _logger.debug("WebSocket handshake refused on %r: rate limit unavailable", handshake.path)
        return _json_denial(
            503,
            {"error": "rate_limit_unavailable", "retry_after": retry},
            [("retry-after", str(retry))],
        )

    def _refuse(self, handshake: Handshake, reset_time: float) -> _deny.Denial:
        # RFC 9110 section 10.2.3: Retry-After in whole seconds; never 0, which invites a
        # retry that would be refused again within the same second.
        retry = max(1, math.ceil(reset_time - time.time()))
        _logger.debug("WebSocket handshake over %s refused on %r", self.limit, handshake.path)
        return _json_denial(
            429, {"error": "rate_limited", "retry_after": retry}, [("retry-after", str(retry))]
        )

    def __repr__(self) -> str:
        # The storage by its type only: a URI may carry a password.
        return (
            f"{type(self).__name__}({str(self.limit)!r}, storage={type(self.storage).__name__}, "
            f"namespace={self.namespace!r})"
        )

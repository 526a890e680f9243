"""Where `asgi_ws_deny.checks.ConnectionLimit` keeps its leases: in this process, or in Redis.

Theory of operation
-------------------
A lease is one open connection counted against a cap. Taking one checks the caps and counts the
connection in one atomic step; giving it back uncounts it. Each store answers `take` with
`TAKEN`, `KEY_FULL` or `TOTAL_FULL`.

In memory (one process) the counts are sets of lease ids under a lock: a lease lives exactly as
long as its connection, and dies with the process.

In Redis (every worker and host) each capped key is a sorted set of lease ids scored by their
expiry, in milliseconds of the Redis server's clock (``TIME``, so hosts whose clocks disagree
still agree). One Lua script drops the expired leases of the key and of the total, compares the
counts with the caps and adds the new lease to both, atomically. A lease expires ``ttl`` after
it was taken or last refreshed, so the leases of a worker that was killed (``kill -9``, an
out-of-memory kill, a lost host) free themselves within ``ttl``. A daemon thread per store
refreshes every live lease of this process, in one script call, every ``ttl / 3`` seconds: on a
timer, never on a message, and under asyncio and trio alike because it is no task of theirs.
A refresh that finds a lease gone (the process stalled longer than ``ttl``) logs a warning; the
connection stays open and is counted again from the next handshake on. The keys carry one hash
tag (``{namespace}``), so that on Redis Cluster the script's keys share a slot.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis import Redis

__all__ = ("KEY_FULL", "TAKEN", "TOTAL_FULL", "MemoryLeases", "RedisLeases")

_logger = logging.getLogger("asgi_ws_deny.checks")

TAKEN = 0
KEY_FULL = 1
TOTAL_FULL = 2

# KEYS: the key's set, the total's set. ARGV: lease id, ttl ms, key cap, total cap (-1: none).
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[2])
local caps = {tonumber(ARGV[3]), tonumber(ARGV[4])}
for i = 1, 2 do
  if caps[i] >= 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if redis.call('ZCARD', KEYS[i]) >= caps[i] then return i end
  end
end
for i = 1, 2 do
  if caps[i] >= 0 then
    redis.call('ZADD', KEYS[i], now + ttl, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return 0
"""

# KEYS: sets; ARGV: ttl ms, then the lease id for each set. Returns how many were gone.
_REFRESH = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[1])
local gone = 0
for i, key in ipairs(KEYS) do
  if redis.call('ZSCORE', key, ARGV[i + 1]) then
    redis.call('ZADD', key, now + ttl, ARGV[i + 1])
    redis.call('PEXPIRE', key, ttl)
  else
    gone = gone + 1
  end
end
return gone
"""

# KEYS: one set. Returns its live leases.
_COUNT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


def _cap(value: int | None) -> int:
    return -1 if value is None else value


class MemoryLeases:
    """Leases of this process: sets of lease ids under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, set[str]] = {}
        self._total: set[str] = set()

    def take(self, key: str, lease: str, max_key: int | None, max_total: int | None) -> int:
        with self._lock:
            held = self._by_key.get(key, set())
            if max_key is not None and len(held) >= max_key:
                return KEY_FULL
            if max_total is not None and len(self._total) >= max_total:
                return TOTAL_FULL
            self._by_key.setdefault(key, held).add(lease)
            self._total.add(lease)
            return TAKEN

    def give_back(self, key: str, lease: str) -> None:
        with self._lock:
            held = self._by_key.get(key)
            if held is not None:
                held.discard(lease)
                if not held:
                    del self._by_key[key]
            self._total.discard(lease)

    def count(self, key: str | None) -> int:
        with self._lock:
            return len(self._total) if key is None else len(self._by_key.get(key, ()))


class RedisLeases:
    """Leases in Redis, with a TTL refreshed by a timer thread of this process."""

    def __init__(self, client: Redis, namespace: str, ttl: float) -> None:
        self._client = client
        self._prefix = "{" + namespace + "}"
        self._ttl_ms = max(1, round(ttl * 1000))
        self.interval = ttl / 3
        self._take = client.register_script(_TAKE)
        self._refresh = client.register_script(_REFRESH)
        self._count = client.register_script(_COUNT)
        self._live: dict[str, tuple[str, ...]] = {}  # lease id -> the sets that hold it
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        self._timer_pid = 0
        self._stop = threading.Event()

    def _set(self, key: str | None) -> str:
        return f"{self._prefix}:total" if key is None else f"{self._prefix}:key:{key}"

    def take(self, key: str, lease: str, max_key: int | None, max_total: int | None) -> int:
        keys = [self._set(key), self._set(None)]
        args: list[str | int] = [lease, self._ttl_ms, _cap(max_key), _cap(max_total)]
        verdict = int(self._take(keys=keys, args=args))
        if verdict == TAKEN:
            held = tuple(
                k for k, cap in zip(keys, (max_key, max_total), strict=True) if cap is not None
            )
            with self._lock:
                self._live[lease] = held
                self._ensure_timer()
        return verdict

    def give_back(self, key: str, lease: str) -> None:
        with self._lock:
            held = self._live.pop(lease, ())
        if held:
            pipe = self._client.pipeline(transaction=False)
            for name in held:
                pipe.zrem(name, lease)
            pipe.execute()

    def count(self, key: str | None) -> int:
        return int(self._count(keys=[self._set(key)]))

    def refresh(self) -> int:
        """Extend every live lease of this process by ``ttl``; how many had expired."""
        with self._lock:
            pairs = [(name, lease) for lease, held in self._live.items() for name in held]
        if not pairs:
            return 0
        args: list[Any] = [self._ttl_ms, *(lease for _, lease in pairs)]
        gone = int(self._refresh(keys=[name for name, _ in pairs], args=args))
        if gone:
            _logger.warning(
                "%d connection lease(s) had expired before their refresh: this process stalled "
                "longer than the ttl; those connections are not counted until they end",
                gone,
            )
        return gone

    def _ensure_timer(self) -> None:
        # Under the lock. Started with the first live lease and ended by the last (no thread
        # lingers in an idle process), and started again in a child after a fork, which no
        # thread survives, so a store built before a server forks its workers still refreshes.
        pid = os.getpid()
        if self._timer is not None and self._timer_pid == pid and self._timer.is_alive():
            return
        self._timer_pid = pid
        self._timer = threading.Thread(
            target=self._run, name="asgi-ws-deny-lease-refresh", daemon=True
        )
        self._timer.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if not self._live:
                    self._timer = None
                    return
            try:
                self.refresh()
            except Exception:
                _logger.exception("Refreshing connection leases failed; retrying on the timer")

    def stop(self) -> None:
        """Stop refreshing for good (the leases then expire within ``ttl``)."""
        self._stop.set()
        timer = self._timer
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=5)

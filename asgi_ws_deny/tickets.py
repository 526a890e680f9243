"""One-time tickets: how a browser authenticates a WebSocket handshake without a long-lived
token in the URL.

Theory of operation
-------------------
A browser cannot set ``Authorization`` on a WebSocket handshake, so applications put their
long-lived tokens in the query string, where every access log keeps them. The ticket pattern
replaces the token with something worthless once used:

1. The page asks an authenticated HTTP endpoint of the application for a ticket. The endpoint
   calls ``tickets.issue(subject, origin=...)``, which stores the ticket's subject (and the
   page's origin, when given) for ``ttl`` seconds and returns a random ticket: 32 bytes from
   `secrets`, base64url, so it fits a subprotocol name and a query value.
2. The page opens the WebSocket offering the ticket as a subprotocol beside its real one,
   ``new WebSocket(url, ["chat.v1", "ticket." + ticket])``.
3. `TicketCheck` finds it and *redeems* it: the stored entry is read and deleted in one atomic
   step (Redis ``GETDEL``; under a lock in memory), so of any number of handshakes racing with
   one ticket, on any number of workers, exactly one gets the subject. A ticket that is
   unknown, spent, expired, or bound to another origin than the handshake's ``Origin`` is
   refused with 401; the subject of an admitted one reaches the application as
   ``scope["asgi_ws_deny.subject"]`` (`SUBJECT_KEY`).

The store keeps the SHA-256 of each ticket, never the ticket: a copy of the store (a Redis dump,
``MONITOR``) yields nothing to present. Nothing here logs a ticket, a subject or a store URI with
its password. Servers do not log offered subprotocols, so a ticket sent that way appears in no
log; one sent in the query string (``TicketCheck(..., query="ticket")``) is written to the
server's access log, spent by then.

``memory://`` serves one process (one server worker); ``redis://`` (the ``ratelimit`` extra
brings ``redis``) shares tickets between workers and hosts. Redis calls are sync: each blocks
the event loop for one round trip (about 0.1 ms on loopback), as `RateLimitCheck`'s do, and so
run unchanged under asyncio and trio. Nothing here imports an event loop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, NamedTuple

from asgi_ws_deny import _deny, _redis
from asgi_ws_deny.checks import OriginCheck
from asgi_ws_deny.handshake import Admission, CheckResult, Handshake, InvalidCheckError

if TYPE_CHECKING:
    from redis import Redis

__all__ = ("SUBJECT_KEY", "Ticket", "TicketCheck", "Tickets")

_logger = logging.getLogger("asgi_ws_deny.tickets")

#: The scope key under which `TicketCheck` hands the application the ticket's subject.
SUBJECT_KEY = "asgi_ws_deny.subject"

# secrets.token_urlsafe(32): 43 characters of [A-Za-z0-9_-], RFC 9110 token characters all.
_TICKET_BYTES = 32
_TICKET_LENGTH = 43
_TICKET_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
# The clock of in-memory expiry (a test replaces it).
_clock = time.monotonic


class Ticket(NamedTuple):
    """What a redeemed ticket was issued for."""

    subject: str
    origin: str | None


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("ascii")).hexdigest()


def _well_formed(ticket: str) -> bool:
    return len(ticket) == _TICKET_LENGTH and set(ticket) <= _TICKET_ALPHABET


class _MemoryStore:
    """Tickets in this process: a dict under a lock, expired entries dropped as issues come.

    One store has one ttl, so the dict's insertion order is the order of expiry: the expired
    entries are the oldest, and a sweep stops at the first live one.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, value: str, ttl: int) -> None:
        now = _clock()
        with self._lock:
            entries = self._entries
            while entries:
                oldest = next(iter(entries))
                if entries[oldest][0] > now:
                    break
                del entries[oldest]
            entries[key] = (now + ttl, value)

    def take(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None or entry[0] <= _clock():
            return None
        return entry[1]


class _RedisStore:
    """Tickets in Redis: SET with an expiry, redeemed with GETDEL (Redis 6.2), atomic."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    def put(self, key: str, value: str, ttl: int) -> None:
        self._client.set(key, value, ex=ttl)

    def take(self, key: str) -> str | None:
        value = self._client.getdel(key)
        if value is None:
            return None
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class Tickets:
    """Issue and redeem one-time WebSocket tickets.

    ``Tickets(storage="memory://", *, ttl=30, namespace="ws-ticket")``

    - ``storage``: ``"memory://"`` (this process only: one server worker) or a Redis URI
      (``"redis://127.0.0.1:6379/0"``, ``"rediss://..."``, ``"unix://..."``), shared by every
      worker and host that issues or redeems.
    - ``ttl``: how long an unredeemed ticket lives, in whole seconds. Keep it short: the page
      asks for a ticket just before it connects.
    - ``namespace``: keeps the tickets of separate applications on one Redis apart.

    Raises `InvalidCheckError` for a bad option and ``ImportError`` for a Redis URI without
    the ``redis`` package (``pip install 'asgi-ws-deny[ratelimit]'``).
    """

    __slots__ = ("_store", "namespace", "ttl")

    def __init__(
        self, storage: str = "memory://", *, ttl: int = 30, namespace: str = "ws-ticket"
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise InvalidCheckError(f"ttl must be a positive whole number of seconds, got {ttl!r}")
        if not isinstance(namespace, str) or not namespace:
            raise InvalidCheckError(f"namespace must be a non-empty str, got {namespace!r}")
        if not isinstance(storage, str):
            raise InvalidCheckError(f"storage must be a URI, got {type(storage).__name__}")
        self.ttl = ttl
        self.namespace = namespace
        self._store: _MemoryStore | _RedisStore
        if storage == "memory://":
            self._store = _MemoryStore()
        elif storage.startswith(("redis://", "rediss://", "unix://")):
            self._store = _RedisStore(_redis.client(storage))
        else:
            raise InvalidCheckError(
                f"storage must be 'memory://' or a redis://, rediss:// or unix:// URI, got "
                f"{_redis.without_password(storage)!r}"
            )

    def issue(self, subject: str, *, origin: str | None = None) -> str:
        """A new ticket for ``subject``, valid once within ``ttl`` seconds.

        ``origin`` binds it to the page's origin (``"https://app.example.com"``): a handshake
        whose ``Origin`` header is another one is refused, so a ticket that leaks to another
        site is of no use there. Raises `InvalidCheckError` for a subject that is not a
        non-empty str or an origin that is not ``scheme://host[:port]``.
        """
        if not isinstance(subject, str) or not subject:
            raise InvalidCheckError("a ticket's subject is a non-empty str")
        if origin is not None:
            if not isinstance(origin, str):
                raise InvalidCheckError(f"origin must be a str, got {type(origin).__name__}")
            origin = OriginCheck(origin).allowed[0]  # validated and normalised as allowed
            if "*" in origin:
                raise InvalidCheckError("a ticket is bound to one origin, not a pattern")
        ticket = secrets.token_urlsafe(_TICKET_BYTES)
        entry = json.dumps({"subject": subject, "origin": origin}, separators=(",", ":"))
        self._store.put(self._key(ticket), entry, self.ttl)
        return ticket

    def redeem(self, ticket: str) -> Ticket | None:
        """Spend ``ticket``: what it was issued for, or ``None`` when it is unknown, spent or
        expired. Atomic: of concurrent redemptions of one ticket, one gets it."""
        if not isinstance(ticket, str) or not _well_formed(ticket):
            return None
        entry = self._store.take(self._key(ticket))
        if entry is None:
            return None
        data: dict[str, Any] = json.loads(entry)
        return Ticket(data["subject"], data["origin"])

    def _key(self, ticket: str) -> str:
        return f"{self.namespace}:{_digest(ticket)}"

    def __repr__(self) -> str:
        # The store by its kind only: a URI may carry a password.
        kind = "memory" if isinstance(self._store, _MemoryStore) else "redis"
        return f"{type(self).__name__}({kind}, ttl={self.ttl}, namespace={self.namespace!r})"


class TicketCheck:
    """Admit a handshake that presents a valid one-time ticket; refuse others with 401.

    ``TicketCheck(tickets, *, subprotocol="ticket.", query=None)``

    - ``subprotocol``: the prefix of the offered subprotocol that carries the ticket
      (``"ticket.<ticket>"``). The client offers it beside its real subprotocol, and the
      application accepts the real one: a browser fails a connection whose accept names none
      of the subprotocols it offered.
    - ``query``: a query parameter to look in as well (``"ticket"``); off by default because
      servers write query strings to their access logs (the ticket is spent by then).

    The check redeems the ticket (`Tickets.redeem`) and admits with an `Admission` whose scope
    holds the subject under `SUBJECT_KEY`. Refused, each with ``content-type:
    application/json``: no ticket, 401 ``{"error":"missing_ticket"}``; a ticket that is unknown,
    spent, expired or bound to another origin than the handshake's, 401
    ``{"error":"invalid_ticket"}`` (one answer for all, so that a client learns nothing about
    a ticket it does not hold); several different tickets, 400 ``{"error":"invalid_request"}``.
    A ticket bound to an origin is spent by a handshake from another origin too.
    """

    __slots__ = ("_invalid", "_malformed", "_missing", "query", "subprotocol", "tickets")

    def __init__(
        self, tickets: Tickets, *, subprotocol: str | None = "ticket.", query: str | None = None
    ) -> None:
        if not isinstance(tickets, Tickets):
            raise InvalidCheckError(f"tickets must be a Tickets, got {type(tickets).__name__}")
        if subprotocol is not None and (not isinstance(subprotocol, str) or not subprotocol):
            raise InvalidCheckError(f"subprotocol must be None or a prefix, got {subprotocol!r}")
        if query is not None and (not isinstance(query, str) or not query):
            raise InvalidCheckError(f"query must be None or a parameter name, got {query!r}")
        if subprotocol is None and query is None:
            raise InvalidCheckError("TicketCheck needs a subprotocol prefix, a query name or both")
        self.tickets = tickets
        self.subprotocol = subprotocol
        self.query = query
        self._missing = _deny.Denial.json(401, {"error": "missing_ticket"})
        self._invalid = _deny.Denial.json(401, {"error": "invalid_ticket"})
        self._malformed = _deny.Denial.json(400, {"error": "invalid_request"})

    def _presented(self, handshake: Handshake) -> set[str]:
        found: set[str] = set()
        if self.subprotocol is not None:
            prefix = self.subprotocol
            found.update(p[len(prefix) :] for p in handshake.subprotocols if p.startswith(prefix))
        if self.query is not None:
            found.update(value for value in handshake.query.getall(self.query) if value)
        return found

    def __call__(self, handshake: Handshake) -> CheckResult | Awaitable[CheckResult]:
        presented = self._presented(handshake)
        if not presented:
            _logger.debug("WebSocket handshake without a ticket refused on %r", handshake.path)
            return self._missing
        if len(presented) > 1:
            _logger.debug("WebSocket handshake with several tickets refused on %r", handshake.path)
            return self._malformed
        ticket = presented.pop()
        if isinstance(self.tickets._store, _MemoryStore):
            return self._verdict(handshake, self.tickets.redeem(ticket))
        return self._redeem_off_loop(handshake, ticket)

    async def _redeem_off_loop(self, handshake: Handshake, ticket: str) -> CheckResult:
        """Redeem in a worker thread: a Redis that hangs holds a thread, never the event loop
        (a thread left behind by a cancelled check only spends a ticket no one gets)."""
        import anyio.to_thread

        redeemed = await anyio.to_thread.run_sync(
            self.tickets.redeem, ticket, abandon_on_cancel=True
        )
        return self._verdict(handshake, redeemed)

    def _verdict(self, handshake: Handshake, redeemed: Ticket | None) -> CheckResult:
        if redeemed is None:
            _logger.debug("WebSocket ticket unknown, spent or expired on %r", handshake.path)
            return self._invalid
        if redeemed.origin is not None:
            origins = handshake.headers.getall("origin")
            if len(origins) != 1 or not OriginCheck(redeemed.origin).allows(origins[0]):
                _logger.debug(
                    "WebSocket ticket presented from another origin on %r", handshake.path
                )
                return self._invalid
        return Admission(scope={SUBJECT_KEY: redeemed.subject})

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.tickets!r}, subprotocol={self.subprotocol!r}, "
            f"query={self.query!r})"
        )

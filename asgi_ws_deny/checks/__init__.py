"""Ready-made handshake checks for `WebSocketGuard`: origin, bearer token, rate limit,
subprotocol, concurrent connections.

Theory of operation
-------------------
A check is a callable ``Handshake -> Denial | None``, sync or async (`asgi_ws_deny.guard`).
Each check here reads only what the read-only `Handshake` carries (headers, query, cookies,
offered subprotocols, client address) and answers ``None`` to admit or a `Denial` built once,
at construction, to refuse. What each one refuses, and how (every body is compact JSON with
``content-type: application/json``):

- `OriginCheck`: 403, ``{"error":"origin_not_allowed"}``, or ``{"error":"origin_required"}``
  for a missing ``Origin`` when told to refuse it;
- `TokenCheck`: 401 with ``www-authenticate: Bearer ...`` (RFC 6750 section 3) and
  ``{"error":"missing_token"}`` or ``{"error":"invalid_token"}``; 400 with the same header and
  ``{"error":"invalid_request"}`` for a malformed or ambiguous token;
- `RateLimitCheck`: 429, ``retry-after`` in whole seconds (at least 1),
  ``{"error":"rate_limited","retry_after":n}``;
- `SubprotocolCheck`: 400, ``{"error":"unsupported_subprotocol","supported":[...]}``;
- `ConnectionLimit`: 429 for a key at its cap (``{"error":"too_many_connections",...}``), 503
  at the total cap (``{"error":"at_capacity",...}``), both with ``retry-after``. It admits with
  an `Admission` whose release gives its lease back when the connection ends.

`AllOf` composes checks: they run in order (`OriginCheck` first, whatever the order given),
the first refusal wins and the rest do not run, an exception propagates so that the guard fails
closed (500, logged; a `Denied` is answered with its own denial), and a result that is neither
``None`` nor a `Denial` raises `TypeError` naming the check. A chain of sync checks stays sync;
it becomes a coroutine from the first check that returns an awaitable.

Nothing here imports an event loop. `RateLimitCheck` imports the ``limits`` and ``anyio``
packages (the ``ratelimit`` extra) when it is constructed, never when this module is imported
(``limits`` itself imports asyncio, which is harmless under trio; ``anyio`` runs its storage
calls in a worker thread under either loop), and `OriginCheck` imports ``idna`` only for an
allowed origin written with a non-ASCII host. `ConnectionLimit` imports ``redis`` only for a
Redis URI; its leases live in ``asgi_ws_deny/_leases.py``, refreshed by a thread of their own,
never by a task of an event loop.

Origins
-------
A browser sends the origin of the page that opens a WebSocket in the ``Origin`` header, always,
serialised as RFC 6454 section 6.2 says: ``scheme://host[:port]``, scheme and host in lowercase,
a non-ASCII host in its IDNA A-label (``xn--``) form, the default port left out. A page cannot
change it. So an ``Origin`` value is compared after parsing it strictly: anything that is not a
serialised origin (the literal ``null``, a path, user info, whitespace, a non-ASCII character,
two origins in one header, two ``Origin`` headers) is refused, whatever the allow-list says.
Incoming values are never IDNA-mapped, because mapping is what makes look-alikes equal
(``example.com`` spelt with a fullwidth ``e`` maps to the ASCII name, and the Kelvin sign
U+212A lowercases to ``k``).
Allowed origins are normalised once, the way a browser would serialise them.
"""

from __future__ import annotations

from asgi_ws_deny.checks._connections import ConnectionLimit
from asgi_ws_deny.checks._keys import (
    KeyFunction,
    client_host,
    client_network,
    forwarded_client,
    network_key,
)
from asgi_ws_deny.checks._origin import MissingOrigin, OriginCheck
from asgi_ws_deny.checks._ratelimit import (
    STORAGE_SOCKET_TIMEOUT,
    RateLimitCheck,
    RateLimitStrategy,
    StorageFailure,
)
from asgi_ws_deny.checks._subprotocol import SubprotocolCheck
from asgi_ws_deny.checks._token import TokenCheck, TokenSource, TokenValidator, TokenValidatorError
from asgi_ws_deny.handshake import AllOf, CheckError, InvalidCheckError

__all__ = (
    "STORAGE_SOCKET_TIMEOUT",
    "AllOf",
    "CheckError",
    "ConnectionLimit",
    "InvalidCheckError",
    "KeyFunction",
    "MissingOrigin",
    "OriginCheck",
    "RateLimitCheck",
    "RateLimitStrategy",
    "StorageFailure",
    "SubprotocolCheck",
    "TokenCheck",
    "TokenSource",
    "TokenValidator",
    "TokenValidatorError",
    "client_host",
    "client_network",
    "forwarded_client",
    "network_key",
)

"""The Redis client that the checks' stores share: one way to connect, with timeouts, and a URI
that never shows its password in an error.

Imported by ``checks`` and ``tickets`` only; ``redis`` itself (the ``ratelimit`` extra) is
imported when a Redis store is built, never when this module is.
"""

from __future__ import annotations

from typing import Any

from asgi_ws_deny.handshake import InvalidCheckError

__all__ = ("SOCKET_TIMEOUT", "client", "without_password")

#: Seconds a Redis connection and each of its commands may take: a Redis that accepts
#: connections and never answers costs this, not redis-py's own defaults (none, or minutes).
SOCKET_TIMEOUT = 0.5


def without_password(uri: str) -> str:
    """``uri`` with the password of its user information, if any, replaced by ``***``."""
    scheme, sep, rest = uri.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return uri
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{host}"


def client(uri: str) -> Any:
    """A ``redis.Redis`` for ``uri``, with `SOCKET_TIMEOUT` unless the URI sets its own."""
    try:
        import redis
    except ImportError as exc:
        raise ImportError(
            f"a Redis store needs the redis package: pip install 'asgi-ws-deny[ratelimit]' ({exc})"
        ) from exc
    try:
        return redis.Redis.from_url(
            uri, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
        )
    except ValueError as exc:
        raise InvalidCheckError(f"storage: {exc}".replace(uri, without_password(uri))) from None

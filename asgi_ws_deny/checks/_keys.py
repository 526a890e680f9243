"""Keys of a handshake for the rate limit and the connection cap: the client, its network."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

from asgi_ws_deny.handshake import (
    Handshake,
    InvalidCheckError,
)

if TYPE_CHECKING:
    pass


#: The rate-limit key of a handshake; ``None`` exempts the handshake from the limit.
KeyFunction = Callable[[Handshake], "str | None"]


def client_host(handshake: Handshake) -> str:
    """The default rate-limit key: the client's IP address as the server reports it.

    Behind a proxy this is the proxy's address unless the server is told to trust its
    forwarded headers (uvicorn ``--forwarded-allow-ips``, hypercorn ``ProxyFixMiddleware``).
    Without a client address (a unix socket) every handshake shares the key ``"unknown"``.
    """
    client = handshake.client
    return str(client[0]) if client is not None else "unknown"


def client_network(handshake: Handshake) -> str:
    """A rate-limit key for IPv6 clients: their /64 network, else the address (`client_host`).

    One IPv6 client usually holds a whole /64 (RFC 4291 section 2.5.1's interface identifiers)
    and may change address within it at will, so a limit per IPv6 address limits nothing. IPv4
    addresses, and anything that is not an IP address, are keyed as `client_host` keys them.
    For another prefix (/48, /56), use `network_key`.
    """
    return _network(client_host(handshake), 64)


def _prefix(ipv6_prefix: object) -> int:
    if isinstance(ipv6_prefix, bool) or not isinstance(ipv6_prefix, int):
        raise InvalidCheckError(f"ipv6_prefix must be an int, got {type(ipv6_prefix).__name__}")
    if not 1 <= ipv6_prefix <= 128:
        raise InvalidCheckError(f"ipv6_prefix must be 1..128, got {ipv6_prefix}")
    return ipv6_prefix


def _network(host: str, ipv6_prefix: int | None) -> str:
    """``host`` as a key: an IPv6 address as its network of ``ipv6_prefix`` bits (when given),
    anything else as it is."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ipv6_prefix is not None and address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return host


def network_key(ipv6_prefix: int = 64) -> KeyFunction:
    """A key function like `client_network`, keying IPv6 clients on their ``/ipv6_prefix``.

    Providers hand out a /48 or a /56 to one customer as often as a /64: ``network_key(56)``
    gives such a customer one budget. Raises `InvalidCheckError` for a prefix outside 1..128.
    """
    prefix = _prefix(ipv6_prefix)

    def network(handshake: Handshake) -> str:
        return _network(client_host(handshake), prefix)

    network.__qualname__ = f"network_key({prefix})"
    return network


# RFC 7239 section 4: Forwarded = 1#forwarded-element, pairs separated by ";", values tokens or
# quoted strings. A quoted string may hold a comma, so elements are split outside quotes.
_FORWARDED_ELEMENT = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_FORWARDED_FOR = re.compile(r'(?:^|;)\s*for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)', re.IGNORECASE)


def _hops(handshake: Handshake, header: str) -> list[str]:
    """The client addresses a forwarding header lists, leftmost (furthest) first."""
    values = handshake.headers.getall(header)
    if header == "x-forwarded-for":
        return [hop.strip() for value in values for hop in value.split(",") if hop.strip()]
    hops = []
    for value in values:
        for element in _FORWARDED_ELEMENT.findall(value):
            match = _FORWARDED_FOR.search(element.strip())
            if match is not None:
                hops.append(match[1].strip('"'))
    return hops


def _hop_host(hop: str) -> str:
    """One hop without its port: ``1.2.3.4:80`` is ``1.2.3.4``, ``[2001:db8::1]:80`` is
    ``2001:db8::1``; anything else (RFC 7239's ``unknown``, an ``_obfuscated`` name) as is."""
    if hop.startswith("[") and "]" in hop:
        return hop[1 : hop.index("]")]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a proxy reached over a dual-stack socket
    return address


def forwarded_client(
    trusted_proxies: Iterable[str],
    *,
    header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for",
    ipv6_prefix: int | None = None,
) -> KeyFunction:
    """A rate-limit key taken from ``X-Forwarded-For`` or ``Forwarded``, through trusted proxies.

    ``forwarded_client(["10.0.0.0/8", "192.0.2.7"], header="x-forwarded-for",
    ipv6_prefix=None)``: when the handshake comes from one of ``trusted_proxies`` (addresses or
    networks), the header's hops are read from the right, skipping trusted proxies, and the
    first one that is not a proxy is the key: the address the nearest trusted proxy saw. Hops
    left of it were written by the client and are never read. From any other peer the header
    is ignored and the peer's address is the key, as `client_host` gives it; when every hop is
    a trusted proxy, the leftmost is. With ``header="forwarded"`` the ``for=`` parameters of
    RFC 7239 are read; a hop that is no address (``unknown``, an obfuscated ``_name``) is a key
    as it is. ``ipv6_prefix`` keys IPv6 clients on their network, as `network_key` does.

    Use it only where the server itself does not already rewrite the client address from these
    headers (uvicorn does, from 127.0.0.1 and ::1, by default: see ``docs/security.md``).
    Raises `InvalidCheckError` for no proxies, an entry that is not an address or a network,
    another header, or a bad prefix.
    """
    if isinstance(trusted_proxies, str):
        trusted_proxies = [trusted_proxies]
    networks = []
    for entry in trusted_proxies:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except (TypeError, ValueError):
            raise InvalidCheckError(
                f"trusted proxy {entry!r} is not an IP address or network"
            ) from None
    if not networks:
        raise InvalidCheckError("forwarded_client needs the trusted proxies' addresses")
    if header not in ("x-forwarded-for", "forwarded"):
        raise InvalidCheckError(f"header must be 'x-forwarded-for' or 'forwarded', got {header!r}")
    prefix = None if ipv6_prefix is None else _prefix(ipv6_prefix)

    def trusted(host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in network for network in networks)

    def forwarded(handshake: Handshake) -> str:
        peer = client_host(handshake)
        hops = [_hop_host(hop) for hop in _hops(handshake, header)] if trusted(peer) else []
        # From the right: the first hop no trusted proxy wrote about itself is the client.
        client = next((hop for hop in reversed(hops) if not trusted(hop)), None)
        if client is None:
            client = hops[0] if hops else peer
        return _network(client, prefix)

    forwarded.__qualname__ = f"forwarded_client({header})"
    return forwarded

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

import inspect
import ipaddress
import logging
import math
import re
import secrets
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from asgi_ws_deny import _deny, _leases, _redis
from asgi_ws_deny.handshake import (
    Admission,
    AllOf,
    CheckError,
    CheckResult,
    Handshake,
    InvalidCheckError,
    check_name,
    denied_in,
)

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.aio.storage import Storage as AsyncStorage
    from limits.aio.strategies import RateLimiter as AsyncRateLimiter
    from limits.storage import Storage as SyncStorage
    from limits.strategies import RateLimiter as SyncRateLimiter

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

_logger = logging.getLogger("asgi_ws_deny.checks")

#: What `OriginCheck` does with a handshake that has no ``Origin`` header.
MissingOrigin = Literal["allow", "deny"]
#: Decides whether a bearer token is valid: ``True`` admits, ``False`` refuses; sync or async.
TokenValidator = Callable[[str], "bool | Awaitable[bool]"]
#: Where `TokenCheck` found a token, as named in its log lines.
TokenSource = Literal["header", "subprotocol", "cookie", "query"]
#: The rate-limit key of a handshake; ``None`` exempts the handshake from the limit.
KeyFunction = Callable[[Handshake], "str | None"]
#: The ``limits`` strategies: exact (moving window), cheap (fixed window), or in between.
RateLimitStrategy = Literal["moving-window", "fixed-window", "sliding-window-counter"]
#: What `RateLimitCheck` answers while its storage fails: 503 (``"deny"``) or admit.
StorageFailure = Literal["deny", "allow"]


class TokenValidatorError(CheckError):
    """The token validator of a `TokenCheck` raised, or returned something other than a bool.

    It replaces the validator's own exception, whose message may quote the token, so that the
    guard's log never shows it: the message names the exception's type and carries the
    validator's stack frames (file, line, function, source line), never exception text or local
    values. As a `CheckError` it is logged without its traceback, whose frames hold the token
    and the handshake. A `Denied` raised by the validator is not replaced: it is the
    validator's answer.
    """


# RFC 9110 section 5.6.2: token = 1*tchar. Subprotocol names (RFC 6455 section 4.1) and cookie
# names (RFC 6265 section 4.1.1) are tokens.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _json_denial(status: int, data: dict[str, Any], headers: _deny.Headers = ()) -> _deny.Denial:
    return _deny.Denial.json(status, data, headers)


# --- Origins ----------------------------------------------------------------------------------

# RFC 6454 section 6.2 and the WHATWG URL standard: the default port of a scheme is left out of
# a serialised origin, so "https://a.example:443" is "https://a.example".
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# scheme "://" host [":" port], nothing else. The host part is checked further by _host.
_ORIGIN = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://"
    r"(?P<host>\[[^\[\]/]*\]|[^\[\]/?#@:\s]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
# A host name as browsers serialise it: LDH labels (underscore tolerated, as browsers accept
# it), lowercase ASCII, an optional trailing dot (a distinct origin, compared as such).
_HOST_NAME = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*\.?")


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: int | None  # None for the scheme's default port

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}" + ("" if self.port is None else f":{self.port}")


class _Pattern(NamedTuple):
    scheme: str
    suffix: str  # "example.com" for "*.example.com"
    port: int | None

    def matches(self, origin: _Origin) -> bool:
        # One or more labels before the suffix; the bare suffix (the apex) is not matched.
        # Labels are non-empty (checked by _host), so "x.example.com" qualifies and
        # ".example.com" never parses.
        return (
            origin.scheme == self.scheme
            and origin.port == self.port
            and origin.host.endswith("." + self.suffix)
        )

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme}://*.{self.suffix}{port}"


def _ipv6_text(address: ipaddress.IPv6Address) -> str:
    """An IPv6 address as browsers serialise it in an origin (WHATWG URL, "IPv6 serializer").

    Eight lowercase hex pieces, the first longest run of two or more zero pieces written "::".
    Python's own text differs for IPv4-mapped addresses from 3.13 on (``::ffff:127.0.0.1``),
    which no browser sends.
    """
    pieces = [int.from_bytes(address.packed[i : i + 2], "big") for i in range(0, 16, 2)]
    start, length, run = -1, 1, 0
    for index, piece in enumerate(pieces):
        run = run + 1 if piece == 0 else 0
        if run > length:
            start, length = index - run + 1, run
    text = [f"{piece:x}" for piece in pieces]
    if start < 0:
        return ":".join(text)
    return ":".join(text[:start]) + "::" + ":".join(text[start + length :])


def _host(raw: str) -> str:
    """The host of a serialised origin, normalised; ValueError when it is not one."""
    if not raw.isascii():
        # Checked before lowercasing: str.lower() maps some non-ASCII letters to ASCII ones
        # (the Kelvin sign U+212A becomes "k").
        raise ValueError("a serialised origin is ASCII (IDNA A-labels for other names)")
    if raw.startswith("["):
        try:
            address = ipaddress.IPv6Address(raw[1:-1])
        except ValueError:
            raise ValueError(f"{raw!r} is not an IPv6 literal") from None
        if address.scope_id is not None:
            raise ValueError("an origin's IPv6 literal has no zone identifier")
        return f"[{_ipv6_text(address)}]"
    host = raw.lower()
    if _HOST_NAME.fullmatch(host) is None:
        raise ValueError(f"{raw!r} is not a host name")
    if all(label.isdigit() for label in host.split(".")):
        # Dotted numbers are an IPv4 address, in the dotted-quad form browsers serialise.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{raw!r} is not an IPv4 address") from None
    return host


def _port(scheme: str, text: str | None) -> int | None:
    if text is None:
        return None
    if text.startswith("0"):
        # Browsers serialise a port in decimal without leading zeros (WHATWG URL, "URL
        # serializing"): "0443" is written by no browser, so it is no origin.
        raise ValueError(f"port {text} has a leading zero, which no browser sends")
    number = int(text)
    if not 0 < number <= 65535:
        raise ValueError(f"port {text} is out of range")
    return None if number == _DEFAULT_PORTS.get(scheme) else number


def _parse_origin(value: str) -> _Origin:
    """A serialised origin, normalised; ValueError for anything else (``null`` included)."""
    match = _ORIGIN.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a serialised origin (scheme://host[:port])")
    scheme = match["scheme"].lower()
    return _Origin(scheme, _host(match["host"]), _port(scheme, match["port"]))


def _allowed_host(raw: str, entry: str) -> str:
    if raw.isascii():
        return raw
    # Browsers send a non-ASCII host as its A-label, converted with UTS 46 non-transitional
    # processing. Python's own "idna" codec implements IDNA 2003, which maps differently and
    # would name another domain ("faß.de" becomes "fass.de"), so the idna package is used.
    try:
        import idna
    except ImportError:
        raise InvalidCheckError(
            f"allowed origin {entry!r} has a non-ASCII host: install the 'idna' package, or "
            "write the host's A-label form (xn--...), as browsers send it"
        ) from None
    try:
        return idna.encode(raw, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidCheckError(f"allowed origin {entry!r}: invalid host: {exc}") from None


# Wildcards over these would admit every site there: domains under which anyone can register a
# name or get a site (a short list of the public suffixes most often written by mistake, from
# the Public Suffix List, publicsuffix.org; the list itself is not downloaded). Two-label
# suffixes of country codes ("co.uk", "com.au") are caught by the rule in _public_suffix.
_PUBLIC_SUFFIXES = frozenset(
    (
        "github.io",
        "gitlab.io",
        "herokuapp.com",
        "vercel.app",
        "netlify.app",
        "pages.dev",
        "workers.dev",
        "web.app",
        "firebaseapp.com",
        "appspot.com",
        "azurewebsites.net",
        "azurestaticapps.net",
        "cloudfront.net",
        "amplifyapp.com",
        "s3.amazonaws.com",
        "blogspot.com",
        "fly.dev",
        "onrender.com",
        "glitch.me",
        "ngrok.io",
        "ngrok.app",
        "ngrok-free.app",
        "trycloudflare.com",
        "readthedocs.io",
        "surge.sh",
        "deno.dev",
        "replit.app",
        "repl.co",
        "codesandbox.io",
        "stackblitz.io",
    )
)
# The second-level labels that country-code registries open to everyone ("co.uk", "com.au",
# "org.nz", "ne.jp"): with a two-letter top-level label, such a suffix is public.
_OPEN_SECOND_LEVELS = frozenset(
    ("co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "gob", "nom", "ltd", "plc")
)


def _public_suffix(host: str) -> bool:
    """Whether ``host`` (the part after ``*.``) is a suffix under which anyone gets a name."""
    host = host.rstrip(".")
    if host in _PUBLIC_SUFFIXES:
        return True
    labels = host.split(".")
    return len(labels) == 2 and len(labels[1]) == 2 and labels[0] in _OPEN_SECOND_LEVELS


def _parse_allowed(entry: object, public_suffix: bool = False) -> _Origin | _Pattern:
    if not isinstance(entry, str):
        hint = ": pass origins as separate arguments, OriginCheck(*origins)"
        raise InvalidCheckError(
            f"an allowed origin is a str, got {type(entry).__name__}"
            + (hint if isinstance(entry, (list, tuple, set, frozenset)) else "")
        )
    if entry.strip().lower() == "null":
        raise InvalidCheckError(
            "'null' cannot be allowed: sandboxed frames, file: pages and redirected requests "
            "all send it, so it identifies no one"
        )
    if entry.strip() == "*":
        raise InvalidCheckError("'*' would allow every origin; to allow them all, drop the check")
    match = _ORIGIN.fullmatch(entry)
    if match is None:
        scheme, sep, rest = entry.partition("://")
        if sep and "/" in rest:
            hint = f": an origin has no path, write {scheme + sep + rest.split('/')[0]!r}"
        elif sep and "@" in rest:
            hint = ": an origin has no user information"
        else:
            hint = ""
        raise InvalidCheckError(
            f"allowed origin {entry!r} is not scheme://host[:port] or "
            f"scheme://*.domain[:port]{hint}"
        )
    scheme = match["scheme"].lower()
    if scheme in ("ws", "wss"):
        page = "http" if scheme == "ws" else "https"
        raise InvalidCheckError(
            f"allowed origin {entry!r} can never match: Origin names the page that opens the "
            f"socket, never the socket's URL; write {page + entry[len(scheme) :]!r}"
        )
    raw_host = match["host"]
    wildcard = raw_host.startswith("*.")
    if wildcard:
        raw_host = raw_host[2:]
    try:
        host = _host(_allowed_host(raw_host, entry))
        port = _port(scheme, match["port"])
    except ValueError as exc:
        raise InvalidCheckError(f"allowed origin {entry!r}: {exc}") from None
    if not wildcard:
        return _Origin(scheme, host, port)
    labels = host.rstrip(".").split(".")
    if host.startswith("[") or labels[-1].isdigit() or len(labels) < 2:
        raise InvalidCheckError(
            f"allowed origin {entry!r}: '*.' must be followed by a domain of two labels or "
            "more ('*.example.com'); a top-level domain or an address cannot have a wildcard"
        )
    if _public_suffix(host) and not public_suffix:
        raise InvalidCheckError(
            f"allowed origin {entry!r} admits every site under the public suffix "
            f"{host.rstrip('.')!r}, where anyone can get a name; list your own origins, or "
            "pass allow_public_suffix=True if you mean every one of them"
        )
    return _Pattern(scheme, host, port)


class OriginCheck:
    """Refuse handshakes from pages of origins not allowed: the defence against CSWSH.

    ``OriginCheck(*allowed, same_origin=False, missing="allow", denial=None,
    allow_public_suffix=False)``

    - ``allowed``: exact origins (``"https://app.example.com"``, ``"http://[::1]:8000"``) and
      patterns (``"https://*.example.com"``: any subdomain, at any depth, with that scheme and
      port; not ``example.com`` itself, list it too). Scheme and host compare
      case-insensitively, default ports are normalised (``https://a.com:443`` is
      ``https://a.com``), a non-ASCII host is written in Unicode or as its A-label
      (converting Unicode needs the ``idna`` package). A trailing dot makes another origin.
      Refused at construction: a ``ws://`` or ``wss://`` entry (``Origin`` names the page,
      ``http`` or ``https``, so it could never match), a port with a leading zero, and a
      wildcard over a public suffix (``https://*.co.uk``, ``https://*.github.io``), which
      admits every site there, unless ``allow_public_suffix=True`` says it is meant.
    - ``same_origin``: also admit an origin equal to the request's own (``ws`` pairs with
      ``http``, ``wss`` with ``https``, the host and port from the ``Host`` header). Behind a
      TLS-terminating proxy the request scheme must be the public one (trusted forwarded
      headers), or ``wss`` pages will not match. It admits a DNS-rebinding attacker, even
      beside an allow-list: see ``docs/security.md``.
    - ``missing``: what to do without an ``Origin`` header. Browsers always send one on a
      WebSocket handshake, so its absence means a non-browser client, which CSWSH does not
      concern (and which could send any origin it likes): ``"allow"`` (the default) admits it,
      ``"deny"`` refuses it with 403 ``{"error":"origin_required"}``.
    - ``denial``: replaces both refusals.

    Refused, with 403, ``content-type: application/json`` and ``{"error":"origin_not_allowed"}``:
    any origin not allowed; ``null``; a value that is not a serialised origin (a path, user
    information, whitespace, a non-ASCII character, an empty value, several origins in one
    header); several ``Origin`` headers. Raises `InvalidCheckError` for a bad entry, ``null``,
    ``*``, or when nothing at all could be admitted.
    """

    __slots__ = ("_exact", "_missing_denial", "_patterns", "denial", "missing", "same_origin")

    #: `AllOf` (and the guard's list of checks) runs it before every other check, so that all
    #: a page on another origin ever gets is this check's refusal.
    runs_first: ClassVar[bool] = True

    def __init__(
        self,
        *allowed: str,
        same_origin: bool = False,
        missing: MissingOrigin = "allow",
        denial: _deny.Denial | None = None,
        allow_public_suffix: bool = False,
    ) -> None:
        if missing not in ("allow", "deny"):
            raise InvalidCheckError(f"missing must be 'allow' or 'deny', got {missing!r}")
        if denial is not None and not isinstance(denial, _deny.Denial):
            raise InvalidCheckError(f"denial must be a Denial, got {type(denial).__name__}")
        parsed = [_parse_allowed(entry, allow_public_suffix is True) for entry in allowed]
        if not parsed and not same_origin:
            raise InvalidCheckError(
                "OriginCheck needs allowed origins, same_origin=True, or both; "
                "as configured it would refuse every browser"
            )
        self._exact = frozenset(item for item in parsed if isinstance(item, _Origin))
        self._patterns = tuple(item for item in parsed if isinstance(item, _Pattern))
        self.same_origin = bool(same_origin)
        self.missing: MissingOrigin = missing
        self.denial = (
            _json_denial(403, {"error": "origin_not_allowed"}) if denial is None else denial
        )
        self._missing_denial = (
            _json_denial(403, {"error": "origin_required"}) if denial is None else denial
        )

    @property
    def allowed(self) -> tuple[str, ...]:
        """The allowed origins and patterns, normalised."""
        return tuple(sorted(str(item) for item in (*self._exact, *self._patterns)))

    def allows(self, origin: str, host: str | None = None, scheme: str = "wss") -> bool:
        """Whether one ``Origin`` header value is admitted (``host``/``scheme``: the request's)."""
        try:
            parsed = _parse_origin(origin)
        except ValueError:
            return False
        if parsed in self._exact or any(pattern.matches(parsed) for pattern in self._patterns):
            return True
        return self.same_origin and host is not None and parsed == _request_origin(scheme, host)

    def __call__(self, handshake: Handshake) -> CheckResult:
        values = handshake.headers.getall("origin")
        if not values:
            if self.missing == "allow":
                return None
            _logger.debug("WebSocket handshake without Origin refused on %r", handshake.path)
            return self._missing_denial
        # RFC 6454 section 7.3: a user agent sends at most one Origin header, with one origin.
        if len(values) == 1:
            hosts = handshake.headers.getall("host") or handshake.headers.getall(":authority")
            host = hosts[0] if len(hosts) == 1 else None
            if self.allows(values[0], host, handshake.scheme):
                return None
        _logger.debug("WebSocket origin %r refused on %r", values, handshake.path)
        return self.denial

    def __repr__(self) -> str:
        args = [repr(item) for item in self.allowed]
        if self.same_origin:
            args.append("same_origin=True")
        if self.missing != "allow":
            args.append(f"missing={self.missing!r}")
        return f"{type(self).__name__}({', '.join(args)})"


def _request_origin(scheme: str, host: str) -> _Origin | None:
    """The origin a page served by this request's own host would have."""
    page_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    try:
        return _parse_origin(f"{page_scheme}://{host}")
    except ValueError:
        return None


# --- Bearer tokens ----------------------------------------------------------------------------

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 9110 section 5.6.4: a quoted-string holds no DQUOTE or backslash unescaped; keep it simple.
_REALM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


class _Malformed(Exception):
    """The request carries token material that cannot be used (RFC 6750 invalid_request)."""


class TokenCheck:
    """Require a bearer token that ``validate`` accepts; refuse with 401 and ``www-authenticate``.

    ``TokenCheck(validate, *, header=True, subprotocol=None, cookie=None, query=None,
    realm=None)``

    ``validate(token)`` (sync or async) returns ``True`` to admit and ``False`` to refuse. It
    may raise `Denied` to answer otherwise (403 for a valid token without the right scope, say).
    Any other exception, or a result that is not a bool, becomes `TokenValidatorError` and the
    guard fails closed with 500; the validator's exception text is not kept, as it may quote
    the token.

    Where the token is looked for (browsers cannot set headers on a WebSocket handshake, hence
    the other three):

    - ``header``: ``Authorization: Bearer <token>`` (RFC 6750 section 2.1; the scheme is
      case-insensitive).
    - ``subprotocol="bearer."``: an offered subprotocol ``bearer.<token>``; the client offers
      it beside the real one (``new WebSocket(url, ["chat.v1", "bearer." + token])``) and the
      application accepts the real one. Subprotocol names are RFC 9110 tokens, so a JWT (base64url
      and dots) fits.
    - ``cookie="name"``: a cookie. Browsers attach it to cross-site handshakes too: combine
      with `OriginCheck`.
    - ``query="name"``: a query parameter. Servers write request targets, query included,
      to their access logs: prefer the other sources.

    An empty cookie or query value counts as absent (a cleared cookie). Several sources that
    carry *different* tokens are refused rather than one chosen over the other, and so are
    different values of one cookie (a sibling subdomain may set a second cookie of the same
    name), query parameter or subprotocol prefix.

    Refusals, each with ``content-type: application/json`` and a ``www-authenticate`` challenge
    (RFC 6750 section 3):

    - no token, or only another scheme's credentials (``Basic ...``): 401,
      ``Bearer realm="..."``, ``{"error":"missing_token"}``;
    - a token that ``validate`` refuses: 401, ``Bearer realm="...", error="invalid_token"``,
      ``{"error":"invalid_token"}``;
    - a malformed ``Authorization: Bearer`` value, several ``Authorization`` headers, an empty
      subprotocol token, or different tokens in several places: 400 (RFC 6750 section 3.1),
      ``Bearer realm="...", error="invalid_request"``, ``{"error":"invalid_request"}``.

    ``realm`` is left out of the header when ``None``. The check never logs a token: its log
    lines name the source only.
    """

    __slots__ = (
        "_invalid",
        "_malformed",
        "_missing",
        "cookie",
        "header",
        "query",
        "realm",
        "subprotocol",
        "validate",
    )

    def __init__(
        self,
        validate: TokenValidator,
        *,
        header: bool = True,
        subprotocol: str | None = None,
        cookie: str | None = None,
        query: str | None = None,
        realm: str | None = None,
    ) -> None:
        if not callable(validate):
            raise InvalidCheckError(f"validate must be callable, got {type(validate).__name__}")
        for name, value in (("subprotocol", subprotocol), ("cookie", cookie)):
            if value is not None and (not isinstance(value, str) or not _TOKEN.fullmatch(value)):
                raise InvalidCheckError(
                    f"{name} must be None or a non-empty token (RFC 9110 section 5.6.2), "
                    f"got {value!r}"
                )
        if query is not None and (not isinstance(query, str) or not query):
            raise InvalidCheckError(f"query must be None or a non-empty str, got {query!r}")
        if not (header or subprotocol or cookie or query):
            raise InvalidCheckError("TokenCheck needs at least one place to look for the token")
        if realm is not None and (not isinstance(realm, str) or not _REALM.fullmatch(realm)):
            raise InvalidCheckError(
                f"realm must be printable ASCII without '\"' or '\\', got {realm!r}"
            )
        self.validate = validate
        self.header = bool(header)
        self.subprotocol = subprotocol
        self.cookie = cookie
        self.query = query
        self.realm = realm
        self._missing = self._denial(401, None, "missing_token")
        self._invalid = self._denial(401, "invalid_token", "invalid_token")
        self._malformed = self._denial(400, "invalid_request", "invalid_request")

    def _denial(self, status: int, code: str | None, body: str) -> _deny.Denial:
        params = []
        if self.realm is not None:
            params.append(f'realm="{self.realm}"')
        if code is not None:
            params.append(f'error="{code}"')
        challenge = "Bearer " + ", ".join(params) if params else "Bearer"
        return _json_denial(status, {"error": body}, [("www-authenticate", challenge)])

    def _found(self, handshake: Handshake) -> dict[TokenSource, str]:
        found: dict[TokenSource, str] = {}
        if self.header:
            values = handshake.headers.getall("authorization")
            if len(values) > 1:
                raise _Malformed("several Authorization headers")
            if values:
                scheme, _, credentials = values[0].partition(" ")
                # Another scheme (Basic, ...) carries no bearer token: RFC 6750 section 3 treats
                # it as a request without authentication.
                if scheme.lower() == "bearer":
                    token = credentials.lstrip(" ")
                    if _B64TOKEN.fullmatch(token) is None:
                        raise _Malformed("a malformed Authorization: Bearer header")
                    found["header"] = token
        if self.subprotocol is not None:
            prefix = self.subprotocol
            tokens = {p[len(prefix) :] for p in handshake.subprotocols if p.startswith(prefix)}
            if "" in tokens:
                raise _Malformed("an empty subprotocol token")
            if len(tokens) > 1:
                raise _Malformed("several subprotocol tokens")
            if tokens:
                found["subprotocol"] = tokens.pop()
        if self.cookie is not None:
            cookies = {value for value in handshake.cookies.getall(self.cookie) if value}
            if len(cookies) > 1:
                # A sibling subdomain can set a second cookie of the same name (cookie
                # tossing): neither is chosen.
                raise _Malformed("several cookie tokens")
            if cookies:
                found["cookie"] = cookies.pop()
        if self.query is not None:
            given = {value for value in handshake.query.getall(self.query) if value}
            if len(given) > 1:
                raise _Malformed("several query tokens")
            if given:
                found["query"] = given.pop()
        return found

    def __call__(self, handshake: Handshake) -> CheckResult | Awaitable[CheckResult]:
        try:
            found = self._found(handshake)
        except _Malformed as exc:
            _logger.debug("WebSocket token refused on %r: %s", handshake.path, exc)
            return self._malformed
        if not found:
            _logger.debug("WebSocket handshake without a token refused on %r", handshake.path)
            return self._missing
        if len(set(found.values())) > 1:
            _logger.debug(
                "WebSocket handshake with different tokens in %s refused on %r",
                " and ".join(found),
                handshake.path,
            )
            return self._malformed
        source, token = next(iter(found.items()))
        failure: Exception | None
        try:
            verdict = self.validate(token)
        except Exception as exc:
            failure = self._validator_error(exc)
        else:
            failure = None
        if failure is not None:
            # Raised outside the except clause, so that it does not carry the validator's
            # exception (whose text may quote the token) as its context.
            raise failure
        if inspect.isawaitable(verdict):
            return self._finish(handshake, source, verdict)
        return self._verdict(handshake, source, verdict)

    async def _finish(
        self, handshake: Handshake, source: TokenSource, pending: Awaitable[object]
    ) -> CheckResult:
        failure: Exception | None
        try:
            verdict = await pending
        except Exception as exc:
            failure = self._validator_error(exc)
        else:
            failure = None
        if failure is not None:
            raise failure
        return self._verdict(handshake, source, verdict)

    def _verdict(self, handshake: Handshake, source: TokenSource, verdict: object) -> CheckResult:
        if verdict is True:
            return None
        if verdict is False:
            _logger.debug("WebSocket token from %s refused on %r", source, handshake.path)
            return self._invalid
        raise TokenValidatorError(
            f"the token validator {check_name(self.validate)} returned {type(verdict).__name__}; "
            "it returns True to admit or False to refuse"
        )

    def _validator_error(self, exc: Exception) -> Exception:
        denied = denied_in(exc)  # alone in an exception group, it still refuses
        if denied is not None:
            return denied
        # The frames say where it failed; the message, which may quote the token, is dropped.
        frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
        return TokenValidatorError(
            f"the token validator {check_name(self.validate)} raised {type(exc).__qualname__} (its "
            f"message is withheld, as it may quote the token) at:\n{frames}"
        )

    def __repr__(self) -> str:
        sources = ["header=True"] if self.header else ["header=False"]
        for name in ("subprotocol", "cookie", "query"):
            value = getattr(self, name)
            if value is not None:
                sources.append(f"{name}={value!r}")
        return f"{type(self).__name__}({check_name(self.validate)}, {', '.join(sources)})"


# --- Rate limits ------------------------------------------------------------------------------


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


# --- Subprotocols -----------------------------------------------------------------------------


class SubprotocolCheck:
    """Require that the client offers one of ``supported`` subprotocols; refuse with 400.

    ``SubprotocolCheck(*supported, denial=None)``

    Names compare exactly, as the client compares the one the server selects (RFC 6455 section
    4.1: a client fails the connection when the server names a subprotocol it did not offer).
    A handshake that offers none of them is refused with 400, ``content-type:
    application/json`` and ``{"error":"unsupported_subprotocol","supported":[...]}``, or with
    ``denial``. Why 400: the request lacks something the endpoint requires, a client error;
    406 belongs to content negotiation through ``Accept`` fields and 426 to the ``Upgrade``
    mechanism itself, which the client already used correctly. The application still selects
    the subprotocol in its accept. Raises `InvalidCheckError` for no names or a name that is
    not a token (RFC 6455 section 4.1).
    """

    __slots__ = ("denial", "supported")

    def __init__(self, *supported: str, denial: _deny.Denial | None = None) -> None:
        if not supported:
            raise InvalidCheckError("SubprotocolCheck needs at least one subprotocol name")
        for name in supported:
            if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
                raise InvalidCheckError(
                    f"subprotocol names are tokens (RFC 6455 section 4.1), got {name!r}"
                )
        if denial is not None and not isinstance(denial, _deny.Denial):
            raise InvalidCheckError(f"denial must be a Denial, got {type(denial).__name__}")
        self.supported = tuple(dict.fromkeys(supported))
        self.denial = (
            _json_denial(400, {"error": "unsupported_subprotocol", "supported": [*self.supported]})
            if denial is None
            else denial
        )

    def __call__(self, handshake: Handshake) -> CheckResult:
        if any(offered in self.supported for offered in handshake.subprotocols):
            return None
        # How many, never which: a client may offer a token as a subprotocol ("bearer.<token>").
        _logger.debug(
            "WebSocket handshake offering %d subprotocol(s), none of them supported, refused on %r",
            len(handshake.subprotocols),
            handshake.path,
        )
        return self.denial

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.supported))})"


# --- Concurrent connections -------------------------------------------------------------------


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

"""`OriginCheck`: the ``Origin`` header against an allow-list (see the package documentation)."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

from asgi_ws_deny import _deny
from asgi_ws_deny.handshake import (
    CheckResult,
    Handshake,
    InvalidCheckError,
)

if TYPE_CHECKING:
    pass
from asgi_ws_deny.checks._common import _json_denial, _logger

#: What `OriginCheck` does with a handshake that has no ``Origin`` header.
MissingOrigin = Literal["allow", "deny"]


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

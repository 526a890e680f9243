"""`TokenCheck`: a bearer token from a header, a subprotocol, a cookie or the query string."""

from __future__ import annotations

import inspect
import re
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from asgi_ws_deny import _deny
from asgi_ws_deny.handshake import (
    CheckError,
    CheckResult,
    Handshake,
    InvalidCheckError,
    check_name,
    denied_in,
)

if TYPE_CHECKING:
    pass
from asgi_ws_deny.checks._common import _TOKEN, _json_denial, _logger

#: Decides whether a bearer token is valid: ``True`` admits, ``False`` refuses; sync or async.
TokenValidator = Callable[[str], "bool | Awaitable[bool]"]
#: Where `TokenCheck` found a token, as named in its log lines.
TokenSource = Literal["header", "subprotocol", "cookie", "query"]


class TokenValidatorError(CheckError):
    """The token validator of a `TokenCheck` raised, or returned something other than a bool.

    It replaces the validator's own exception, whose message may quote the token, so that the
    guard's log never shows it: the message names the exception's type and carries the
    validator's stack frames (file, line, function, source line), never exception text or local
    values. As a `CheckError` it is logged without its traceback, whose frames hold the token
    and the handshake. A `Denied` raised by the validator is not replaced: it is the
    validator's answer.
    """


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

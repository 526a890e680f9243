"""Deny an ASGI WebSocket handshake with a real HTTP response, portably, on any server.

This module is the vendorable core of asgi-ws-deny. It imports only the standard library, and
never asyncio, so it runs unchanged under asyncio and trio and can be copied into a framework's
tree as a single file.

Theory of operation
-------------------
Before a WebSocket is accepted the connection is still HTTP. The ASGI *WebSocket Denial
Response* extension (asgiref ``docs/extensions.rst``) lets an application answer it with
``websocket.http.response.start`` and ``websocket.http.response.body`` when the server lists
``"websocket.http.response"`` in ``scope["extensions"]``. Without the extension the only
portable path is ``websocket.close`` before ``websocket.accept``, which the server must turn
into ``403 Forbidden`` (ASGI HTTP & WebSocket spec 2.5, "Close - send event").

A denial is three steps, each with one path and one place in this file:

1. *validate*: status, headers and body are checked and normalised once, into a `Denial`;
2. *build*: `Denial.messages` chooses the messages from the scope: one response start and
   one final body where the extension is advertised, else one close (or
   `DenialUnsupportedError`);
3. *send*: `deny` awaits ``send`` for each message; ``receive`` is never called.

Steps 1 and 2 are pure and are done before step 3 begins, so bad input raises before the
first message is sent and a denial never half-happens: once the first message is out, only
``send`` itself can fail. Servers disagree about nearly everything around a denial (chunked
``more_body``, 1xx statuses, header checking, a Content-Length that does not match the body),
so step 2 emits only the one sequence that behaves the same on all of them: a start carrying
every key and a computed ``content-length``, then exactly one body with ``more_body`` false.

A framework's own response (``http.response.start`` and its bodies) takes the same path
through `denial_send`, which keeps the messages until the body ends and then denies with them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, TypedDict, get_args, overload

__all__ = (
    "EXTENSION",
    "FALLBACK_CLOSE_CODE",
    "MAX_BODY_BYTES",
    "MAX_HEADERS",
    "MAX_HEADERS_BYTES",
    "MAX_HEADER_LINE_BYTES",
    "MAX_HEADER_NAME_BYTES",
    "Body",
    "Denial",
    "DenialMessage",
    "DenialSend",
    "DenialUnsupportedError",
    "DenyError",
    "Fallback",
    "HeaderInput",
    "Headers",
    "InvalidDenialError",
    "Outcome",
    "Receive",
    "Scope",
    "Send",
    "WebSocketCloseEvent",
    "WebSocketResponseBodyEvent",
    "WebSocketResponseStartEvent",
    "as_denial",
    "denial_messages",
    "denial_send",
    "deny",
    "supports_denial_response",
)

#: The scope extension a server lists when it accepts denial-response messages.
EXTENSION = "websocket.http.response"

#: The close code of the fallback ``websocket.close``. Before accept the server answers 403
#: and the code never reaches the client (spec 2.5, "Close - send event"); 1008 "policy
#: violation" (RFC 6455 section 7.4.1) is what a server's log, or a broken server that accepts
#: first, should show for a refused connection.
FALLBACK_CLOSE_CODE = 1008


# --- Types -----------------------------------------------------------------------------------
# The three messages a denial can send, as TypedDicts with exactly the keys and value types of
# ``asgiref.typing`` (so they are accepted where ``ASGISendEvent`` is expected) without
# importing asgiref at run time.


class WebSocketResponseStartEvent(TypedDict):
    """``websocket.http.response.start`` of the WebSocket Denial Response extension."""

    type: Literal["websocket.http.response.start"]
    status: int
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketResponseBodyEvent(TypedDict):
    """``websocket.http.response.body`` of the WebSocket Denial Response extension."""

    type: Literal["websocket.http.response.body"]
    body: bytes
    more_body: bool


class WebSocketCloseEvent(TypedDict):
    """``websocket.close``; sent before accept, the server turns it into 403."""

    type: Literal["websocket.close"]
    code: int
    reason: str | None


DenialMessage = WebSocketResponseStartEvent | WebSocketResponseBodyEvent | WebSocketCloseEvent

#: How the denial went: the HTTP response was sent, the fallback close was sent, or the client
#: had already left (``send`` raised ``OSError``, ASGI HTTP & WebSocket spec 2.4).
Outcome = Literal["response", "close", "disconnected"]
#: What to do where the server lacks the extension: send ``websocket.close`` (the server
#: answers 403), or raise `DenialUnsupportedError` before sending anything.
Fallback = Literal["close", "raise"]

Scope = Mapping[str, Any]
Send = Callable[[Any], Awaitable[None]]
Receive = Callable[[], Awaitable[Any]]
HeaderInput = str | bytes
# Mapping keys are invariant, so a dict[str, str] is a Mapping[str, ...] and not a
# Mapping[str | bytes, ...]: the two key types are spelled out.
Headers = (
    Iterable[tuple[HeaderInput, HeaderInput]]
    | Mapping[str, HeaderInput]
    | Mapping[bytes, HeaderInput]
)
Body = bytes | bytearray | memoryview


# --- Errors ----------------------------------------------------------------------------------


class DenyError(Exception):
    """Base class of the errors asgi-ws-deny raises for misuse: invalid input, a server that
    lacks the extension (with ``fallback="raise"``), an out-of-order message."""


class InvalidDenialError(DenyError, ValueError):
    """A status, header, body, fallback or scope that cannot make a valid denial.

    Raised before anything is sent.
    """


class DenialUnsupportedError(DenyError, RuntimeError):
    """The server lacks the denial-response extension and the caller chose ``fallback="raise"``.

    Raised before anything is sent.
    """


# --- Validation (pure) -----------------------------------------------------------------------

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 5.5: a field value is visible characters, obs-text, SP and HTAB. CR, LF
# and NUL are "invalid and dangerous"; the other C0 controls and DEL are not field-vchar.
_VALUE_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# A str value is text: its C1 controls (NEL, U+0085, among them) are line breaks to some
# readers, so they are refused too; as bytes, 0x80-0x9f are ordinary UTF-8 continuation bytes.
_STR_C1_CONTROL = re.compile("[\x80-\x9f]")

# Connection-specific fields: the server frames the response and owns the connection
# (RFC 9110 section 7.6.1, RFC 9113 section 8.2.2), and Sec-WebSocket-* would describe an
# upgrade that is not happening (RFC 6455 section 4.2.2).
_FORBIDDEN_NAMES = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_FORBIDDEN_PREFIX = b"sec-websocket-"
_CONTENT_LENGTH = b"content-length"
_CONTENT_TYPE = b"content-type"
# RFC 9110 sections 15.3.5 and 15.4.5: a 204 or 304 response has no content, and a 204 has no
# Content-Length (section 8.6); 304's would describe another representation, so none is sent.
_NO_CONTENT = frozenset((204, 304))
# RFC 9110 section 15.3.6: "a server MUST NOT generate content in a 205 response"; unlike 204,
# its Content-Length may be sent, and is 0.
_RESET_CONTENT = 205

# What a client can read. The websockets client refuses a header line over 8,192 bytes and more
# than 128 headers, and h11 (wsproto's and httpx's parser) a response head over 16 KiB; a denial
# past those is lost on the client, which reports a protocol error instead of the status. The
# server adds its own status line and headers, hence some room below each limit. No registered
# field name comes near 256 bytes: a longer one is a mistake or smuggled data.
MAX_HEADER_NAME_BYTES = 256
MAX_HEADER_LINE_BYTES = 8190  # name, ": ", value; with CRLF, 8,192
MAX_HEADERS_BYTES = 12 * 1024
MAX_HEADERS = 100
#: The largest body a denial may have. A denial is a status and a short explanation, and a
#: client that never reads it holds the whole body in the server's buffers until it leaves
#: (or blocks the ``send`` that writes it, on servers that wait for the client).
MAX_BODY_BYTES = 64 * 1024


def _check_status(status: object) -> int:
    if type(status) is not int:
        if isinstance(status, bool) or not isinstance(status, int):
            raise InvalidDenialError(
                f"status must be an int, got {type(status).__name__} {status!r}"
            )
        # An int subclass may redefine its comparisons and conversions: its value is what is
        # checked below and what is sent.
        status = int.__int__(status)
    if 100 <= status <= 199:
        raise InvalidDenialError(
            f"status must be 200..599, got {status}: a 1xx status is an interim response "
            "(101 would complete the WebSocket upgrade, the others leave the client waiting "
            "for a final response), so it cannot deny a handshake"
        )
    if not 200 <= status <= 599:
        raise InvalidDenialError(
            f"status must be 200..599, got {status} (RFC 9110 section 15: three digits)"
        )
    return status


def _check_body(body: object) -> bytes:
    if isinstance(body, (bytes, bytearray, memoryview)):
        checked = body if type(body) is bytes else _plain_bytes("body", body)
        if len(checked) > MAX_BODY_BYTES:
            raise InvalidDenialError(
                f"body must be at most MAX_BODY_BYTES ({MAX_BODY_BYTES}) bytes, got "
                f"{len(checked)}: a denial is a status and a short explanation"
            )
        return checked
    if isinstance(body, str):
        raise InvalidDenialError(
            "body must be bytes, bytearray or memoryview, got str: encode it, "
            "or use Denial.text(status, text) which sets the charset"
        )
    raise InvalidDenialError(
        f"body must be bytes, bytearray or memoryview, got {type(body).__name__}"
    )


def _plain_bytes(what: str, data: bytes | bytearray | memoryview) -> bytes:
    """A copy of ``data`` as exact bytes, read through the buffer protocol.

    A subclass of bytes may redefine ``len``, ``lower``, ``strip`` or ``__bytes__``; what is
    checked and sent is its content, never what its methods say.
    """
    try:
        return bytes(memoryview(data))
    except (TypeError, ValueError) as exc:  # a released memoryview, for one
        raise InvalidDenialError(f"{what} cannot be read: {exc}") from None


def _header_name(name: object) -> bytes:
    if isinstance(name, str):
        try:
            raw = str.encode(name, "ascii")
        except UnicodeEncodeError:
            raise InvalidDenialError(
                f"header name {name!r} is not a token (RFC 9110 section 5.6.2): "
                "names are ASCII letters, digits and !#$%&'*+-.^_`|~"
            ) from None
    elif isinstance(name, bytes):
        raw = name if type(name) is bytes else _plain_bytes("header name", name)
    else:
        raise InvalidDenialError(f"header name must be str or bytes, got {type(name).__name__}")
    if _TOKEN.fullmatch(raw) is None:
        raise InvalidDenialError(
            f"header name {name!r} is not a token (RFC 9110 section 5.6.2): "
            "names are ASCII letters, digits and !#$%&'*+-.^_`|~"
        )
    if len(raw) > MAX_HEADER_NAME_BYTES:
        raise InvalidDenialError(
            f"header name of {len(raw)} bytes, at most {MAX_HEADER_NAME_BYTES}: "
            f"{raw[:40]!r}... is no field name"
        )
    raw = raw.lower()
    if raw in _FORBIDDEN_NAMES or raw.startswith(_FORBIDDEN_PREFIX):
        raise InvalidDenialError(
            f"header {raw.decode()!r} cannot be set on a denial: the server frames the "
            "response and owns the connection, and no WebSocket upgrade takes place"
        )
    return raw


def _header_value(name: bytes, value: object) -> bytes:
    if isinstance(value, str):
        if _STR_C1_CONTROL.search(value):
            raise InvalidDenialError(
                f"header {name.decode()!r} value {value!r} contains a C1 control character"
            )
        try:
            raw = str.encode(value, "latin-1")
        except UnicodeEncodeError as exc:
            raise InvalidDenialError(
                f"header {name.decode()!r} value {value!r} is not latin-1 "
                f"(character {value[exc.start]!r}); pass bytes to send another encoding"
            ) from None
    elif isinstance(value, bytes):
        raw = value if type(value) is bytes else _plain_bytes(f"header {name.decode()!r}", value)
    else:
        raise InvalidDenialError(
            f"header {name.decode()!r} value must be str or bytes, got {type(value).__name__}"
        )
    if _VALUE_CONTROL.search(raw):
        raise InvalidDenialError(
            f"header {name.decode()!r} value {value!r} contains CR, LF, NUL or another "
            "control character (RFC 9110 section 5.5), which could split the response"
        )
    if len(name) + 2 + len(raw) > MAX_HEADER_LINE_BYTES:
        raise InvalidDenialError(
            f"header {name.decode()!r} takes {len(name) + 2 + len(raw)} bytes with its value, "
            f"at most {MAX_HEADER_LINE_BYTES}: clients refuse a longer header line"
        )
    if raw != raw.strip(b" \t"):
        raise InvalidDenialError(
            f"header {name.decode()!r} value {value!r} has leading or trailing whitespace "
            "(RFC 9110 section 5.5)"
        )
    return raw


def _check_headers(headers: object) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """The headers as sent, in one pass: checked pairs, and the content-length values among them."""
    checked = []
    lengths = []
    size = 0
    for pair in _header_pairs(headers):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InvalidDenialError(f"each header must be a (name, value) pair, got {pair!r}")
        name = _header_name(pair[0])
        value = _header_value(name, pair[1])
        if name == _CONTENT_LENGTH:
            lengths.append(value)
        size += len(name) + len(value) + 4  # ": " and CRLF
        checked.append((name, value))
    if len(checked) > MAX_HEADERS:
        raise InvalidDenialError(
            f"{len(checked)} headers, at most {MAX_HEADERS}: clients refuse a response with more"
        )
    if size > MAX_HEADERS_BYTES:
        raise InvalidDenialError(
            f"the headers take {size} bytes, at most {MAX_HEADERS_BYTES}: clients refuse a "
            "larger response head"
        )
    return checked, lengths


def _header_pairs(headers: object) -> Iterable[object]:
    if isinstance(headers, (str, bytes, bytearray, memoryview)):
        raise InvalidDenialError(
            f"headers must be an iterable of (name, value) pairs, got {type(headers).__name__}"
        )
    if isinstance(headers, Mapping):
        headers = headers.items()
    try:
        return iter(headers)  # type: ignore[call-overload, no-any-return]
    except TypeError:
        raise InvalidDenialError(
            f"headers must be an iterable of (name, value) pairs, got {type(headers).__name__}"
        ) from None


def _frame_body(
    status: int, headers: list[tuple[bytes, bytes]], lengths: list[bytes], body: bytes
) -> None:
    """Check the caller's content-length against the body, adding one where it is missing."""
    if status in _NO_CONTENT:
        if body:
            raise InvalidDenialError(
                f"status {status} cannot carry a body (RFC 9110 section 15), got {len(body)} bytes"
            )
        if lengths:
            raise InvalidDenialError(
                f"status {status} cannot carry a content-length header (RFC 9110 section 8.6)"
            )
        return
    if status == _RESET_CONTENT and body:
        raise InvalidDenialError(
            f"status 205 cannot carry a body (RFC 9110 section 15.3.6), got {len(body)} bytes"
        )
    expected = str(len(body)).encode("ascii")
    if not lengths:
        headers.append((_CONTENT_LENGTH, expected))
    elif len(lengths) > 1:
        raise InvalidDenialError(
            "content-length given more than once; leave it out and it is computed from the body"
        )
    elif lengths[0] != expected and lengths[0].isdigit() and lengths[0].lstrip(b"0") == expected:
        # RFC 9110 section 8.6 allows leading zeros (1*DIGIT); a denial sends a length the
        # way the package computes it, so no client has to read an unusual form.
        raise InvalidDenialError(
            f"content-length {lengths[0].decode('latin-1')!r} has leading zeros; leave it out "
            "and it is computed from the body"
        )
    elif lengths[0] != expected:
        raise InvalidDenialError(
            f"content-length {lengths[0].decode('latin-1')!r} does not match the body of "
            f"{len(body)} bytes; leave it out and it is computed from the body"
        )


def _check_fallback(fallback: object) -> None:
    if fallback not in get_args(Fallback):
        raise InvalidDenialError(f"fallback must be 'close' or 'raise', got {fallback!r}")


def supports_denial_response(scope: Scope) -> bool:
    """Whether the server accepts ``websocket.http.response.*`` messages for this scope.

    A missing or ``None`` ``extensions`` entry means it does not.
    """
    extensions = scope.get("extensions")
    return isinstance(extensions, Mapping) and EXTENSION in extensions


# --- The denial (validated) and its messages (pure) -------------------------------------------


class Denial:
    """An immutable, validated HTTP response that refuses a WebSocket handshake.

    Validation happens at construction, so a `Denial` that exists can always be sent; its
    body is at most `MAX_BODY_BYTES`. ``headers`` holds what goes on the wire: lowercase byte
    names, byte values, and the ``content-length`` computed from the body. A `Denial` is
    itself an ASGI application: ``await denial(scope, receive, send)`` denies with the
    ``"close"`` fallback, so a framework can return it wherever it accepts an application.
    """

    __slots__ = ("_body", "_headers", "_status")

    _status: int
    _headers: tuple[tuple[bytes, bytes], ...]
    _body: bytes

    def __init__(self, status: int = 403, headers: Headers = (), body: Body = b"") -> None:
        checked_status = _check_status(status)
        checked_body = _check_body(body)
        checked_headers, lengths = _check_headers(headers)
        _frame_body(checked_status, checked_headers, lengths, checked_body)
        object.__setattr__(self, "_status", checked_status)
        object.__setattr__(self, "_headers", tuple(checked_headers))
        object.__setattr__(self, "_body", checked_body)

    @classmethod
    def text(
        cls,
        status: int,
        text: str,
        headers: Headers = (),
        *,
        content_type: str = "text/plain; charset=utf-8",
    ) -> Denial:
        """A denial with a UTF-8 text body; ``content_type`` is added unless headers set one."""
        if not isinstance(text, str):
            raise InvalidDenialError(f"text must be str, got {type(text).__name__}")
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidDenialError(f"text cannot be encoded as UTF-8: {exc.reason}") from None
        return cls(status, _with_content_type(headers, content_type), body)

    @classmethod
    def json(
        cls,
        status: int,
        data: Any,
        headers: Headers = (),
        *,
        content_type: str = "application/json",
    ) -> Denial:
        """A denial with ``data`` as a compact JSON body (RFC 8259: UTF-8, no NaN)."""
        try:
            text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidDenialError(f"data cannot be encoded as JSON: {exc}") from None
        return cls.text(status, text, headers, content_type=content_type)

    @property
    def status(self) -> int:
        """The HTTP status, 200..599."""
        return self._status

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers as sent: lowercase names, byte values, with ``content-length``."""
        return self._headers

    @property
    def body(self) -> bytes:
        """The response body."""
        return self._body

    def messages(self, scope: Scope, *, fallback: Fallback = "close") -> list[DenialMessage]:
        """The exact messages that deny the handshake of ``scope`` (pure; sends nothing)."""
        _check_fallback(fallback)
        if not isinstance(scope, Mapping):
            raise _not_websocket(type(scope).__name__)
        if scope.get("type") != "websocket":
            raise _not_websocket(scope.get("type"))
        if supports_denial_response(scope):
            # RFC 8441 section 5: over HTTP/2 a 2xx answer to the extended CONNECT opens the
            # tunnel, so it would accept the WebSocket; RFC 9220 section 3 does the same over
            # HTTP/3. Only a response can do that: the close fallback below is answered with 403.
            version = scope.get("http_version")
            if 200 <= self._status <= 299 and version in ("2", "3"):
                raise InvalidDenialError(
                    f"status {self._status} would accept the WebSocket over HTTP/{version}, "
                    "where a 2xx answer to the extended CONNECT opens the tunnel "
                    "(RFC 8441 section 5, RFC 9220 section 3)"
                )
            return [
                {
                    "type": "websocket.http.response.start",
                    "status": self._status,
                    "headers": list(self._headers),
                },
                {"type": "websocket.http.response.body", "body": self._body, "more_body": False},
            ]
        if fallback == "raise":
            raise DenialUnsupportedError(
                f"the server does not list {EXTENSION!r} in scope['extensions'], so it cannot "
                f"send a {self._status} response; with fallback='close' it answers 403 instead"
            )
        return [{"type": "websocket.close", "code": FALLBACK_CLOSE_CODE, "reason": ""}]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Deny as an ASGI application, with the ``"close"`` fallback."""
        await deny(scope, send, self)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Denial):
            return NotImplemented
        return (self._status, self._headers, self._body) == (
            other._status,
            other._headers,
            other._body,
        )

    def __hash__(self) -> int:
        return hash((self._status, self._headers, self._body))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._status}, headers={self._headers!r}, body={self._body!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._status, self._headers, self._body))


def _not_websocket(kind: object) -> InvalidDenialError:
    return InvalidDenialError(
        f"a denial answers a 'websocket' scope, got {kind!r}; an 'http' request is answered "
        "with http.response.start and http.response.body"
    )


def _with_content_type(headers: Headers, content_type: str) -> list[tuple[bytes, bytes]]:
    checked, _ = _check_headers(headers)
    if not any(name == _CONTENT_TYPE for name, _ in checked):
        checked.append((_CONTENT_TYPE, _header_value(_CONTENT_TYPE, content_type)))
    return checked


def as_denial(status: int | Denial = 403, headers: Headers = (), body: Body = b"") -> Denial:
    """``status`` when it is a `Denial` given alone, else a new `Denial` of the three."""
    if isinstance(status, Denial):
        if headers or body:
            raise InvalidDenialError(
                "headers and body belong to the Denial; pass them to its constructor instead"
            )
        return status
    return Denial(status, headers, body)


@overload
def denial_messages(
    scope: Scope, status: Denial, *, fallback: Fallback = ...
) -> list[DenialMessage]: ...


@overload
def denial_messages(
    scope: Scope,
    status: int = ...,
    headers: Headers = ...,
    body: Body = ...,
    *,
    fallback: Fallback = ...,
) -> list[DenialMessage]: ...


def denial_messages(
    scope: Scope,
    status: int | Denial = 403,
    headers: Headers = (),
    body: Body = b"",
    *,
    fallback: Fallback = "close",
) -> list[DenialMessage]:
    """The exact messages that deny the handshake of ``scope``; pure, sends nothing.

    Where the server lists the extension: one ``websocket.http.response.start`` and one
    ``websocket.http.response.body`` with ``more_body`` false. Otherwise one
    ``websocket.close`` (the server answers 403), or `DenialUnsupportedError` with
    ``fallback="raise"``. ``status`` may be a `Denial`, given alone. Raises
    `InvalidDenialError` for any input that cannot make a valid denial.
    """
    return as_denial(status, headers, body).messages(scope, fallback=fallback)


# --- Sending (the only step that awaits) ------------------------------------------------------


@overload
async def deny(
    scope: Scope, send: Send, status: Denial, *, fallback: Fallback = ...
) -> Outcome: ...


@overload
async def deny(
    scope: Scope,
    send: Send,
    status: int = ...,
    headers: Headers = ...,
    body: Body = ...,
    *,
    fallback: Fallback = ...,
) -> Outcome: ...


async def deny(
    scope: Scope,
    send: Send,
    status: int | Denial = 403,
    headers: Headers = (),
    body: Body = b"",
    *,
    fallback: Fallback = "close",
) -> Outcome:
    """Deny the WebSocket handshake of ``scope`` and say which way it went.

    Sends the messages of `denial_messages` and nothing else, and never calls ``receive``.
    Returns ``"response"`` when the HTTP response went out, ``"close"`` when the server lacks
    the extension and answers 403 instead, or ``"disconnected"`` when ``send`` raised
    ``OSError`` because the client had left, after which nothing more is sent. Every input
    is validated before the first message, so an error means nothing was sent.
    """
    messages = as_denial(status, headers, body).messages(scope, fallback=fallback)
    try:
        for message in messages:
            await send(message)
    except OSError:
        # ASGI HTTP & WebSocket spec 2.4, "Disconnected Client - send exception": the server
        # raises an OSError subclass once the client has gone. Nothing more can be delivered.
        return "disconnected"
    return "close" if messages[0]["type"] == "websocket.close" else "response"


def denial_send(
    scope: Scope, send: Send, *, fallback: Fallback = "close", max_body: int = MAX_BODY_BYTES
) -> DenialSend:
    """A ``send`` that turns a framework's own HTTP response into a denial of ``scope``.

    Give it to a framework's ``Response`` in place of the server's ``send``: it takes
    ``http.response.start`` and ``http.response.body`` messages (a body streamed with
    ``more_body`` included; the ``websocket.``-prefixed forms that some frameworks send in a
    websocket scope too), keeps them, and when the body ends sends one validated denial
    through `deny` with ``fallback``. Its ``outcome`` is then `deny`'s. It raises
    `InvalidDenialError`, before anything is sent, for anything else: trailers, another message
    type, a body before its start or over ``max_body`` bytes (at most `MAX_BODY_BYTES`), a
    message after the end, or a response that is no valid denial. After an error it refuses
    every later message.
    """
    _check_fallback(fallback)
    if (
        isinstance(max_body, bool)
        or not isinstance(max_body, int)
        or not 0 <= max_body <= MAX_BODY_BYTES
    ):
        raise InvalidDenialError(
            f"max_body must be an int from 0 to MAX_BODY_BYTES ({MAX_BODY_BYTES}), got {max_body!r}"
        )
    return DenialSend(scope, send, fallback, max_body)


class DenialSend:
    """The ``send`` `denial_send` returns: it keeps a response until its body ends, then denies.

    ``outcome`` is ``None`` until the denial is sent, then `deny`'s `Outcome`.
    """

    __slots__ = (
        "_chunks",
        "_ended",
        "_fallback",
        "_max_body",
        "_scope",
        "_send",
        "_size",
        "_start",
        "outcome",
    )

    def __init__(self, scope: Scope, send: Send, fallback: Fallback, max_body: int) -> None:
        self._scope = scope
        self._send = send
        self._fallback: Fallback = fallback
        self._max_body = max_body
        self._start: Mapping[str, Any] | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._ended: str | None = None  # why no message is taken any more
        self.outcome: Outcome | None = None

    async def __call__(self, message: Mapping[str, Any]) -> None:
        if self._ended is not None:
            raise InvalidDenialError(f"{_message_type(message)!r} after {self._ended}")
        try:
            denial = self._take(message)
        except InvalidDenialError as exc:
            self._ended = f"an invalid response ({exc})"
            raise
        if denial is not None:
            self._ended = "the end of the response"
            self.outcome = await deny(self._scope, self._send, denial, fallback=self._fallback)

    def _take(self, message: Mapping[str, Any]) -> Denial | None:
        """Keep one message; the denial when it ended the body."""
        kind = _message_type(message)
        if isinstance(kind, str):
            kind = kind.removeprefix("websocket.")
        if kind == "http.response.start":
            if self._start is not None:
                raise InvalidDenialError("http.response.start sent twice")
            if message.get("trailers", False):
                raise InvalidDenialError(
                    "a denial has no trailers: send http.response.start without trailers=True"
                )
            self._start = message
            return None
        if kind != "http.response.body":
            raise InvalidDenialError(
                f"{kind!r} cannot be part of a denial, which takes http.response.start and "
                "http.response.body only (no trailers, no file or zero-copy sends)"
            )
        if self._start is None:
            raise InvalidDenialError("http.response.body before http.response.start")
        chunk = _check_body(message.get("body", b""))
        self._size += len(chunk)
        if self._size > self._max_body:
            raise InvalidDenialError(
                f"the body exceeds max_body of {self._max_body} bytes: a denial is small, and "
                "the client may never read it"
            )
        self._chunks.append(chunk)
        if message.get("more_body", False):
            return None
        # Validated here, as any denial is: a status or header the framework sends that no
        # denial may carry raises now, before anything is sent.
        start = self._start
        status: Any = start.get("status")
        return Denial(status, start.get("headers", ()), b"".join(self._chunks))


def _message_type(message: object) -> object:
    return message.get("type") if isinstance(message, Mapping) else type(message).__name__

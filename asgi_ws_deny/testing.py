"""An in-memory, spec-strict WebSocket handshake harness for unit-testing any ASGI application.

``result = await handshake(app, "/ws?token=x", headers={"origin": "https://a.example"})`` runs
``app`` against a client that lives in memory and returns what a real client would have seen:
accepted or not, the HTTP status, headers and body of a denial, the close code and reason, the
data messages, and every raw message the application sent.

Theory of operation
-------------------
The harness plays the server's part of the ASGI HTTP & WebSocket spec (asgiref ``specs/www.rst``,
"WebSocket") and of the WebSocket Denial Response extension (asgiref ``docs/extensions.rst``),
and holds the application to every rule a server may rely on. The first ``receive()`` gives
``websocket.connect``; each ``send`` is checked against the state of the connection::

    connecting --websocket.accept----------------------> open --websocket.close--> closed
    connecting --websocket.close-----------------------> denied (the client sees 403)
    connecting --websocket.http.response.start---------> responding
    responding --websocket.http.response.body (last)---> denied (the client sees the response)

Anything else raises `ProtocolViolation`, which names the rule it breaks (the spec section,
RFC or portability rule), and is raised again when the application returns even if it caught
it, so an application cannot hide a violation. It covers: a body before its start, two
starts, a status outside 200..599 (101 among them), headers that are not lowercase byte pairs,
a response start where the extension is not advertised, a 2xx over HTTP/2 or HTTP/3 (which would
open the tunnel), content on a 204, 205 or 304, a body that is not as long as its ``content-length``
(or a ``content-length`` on a 204), a message after the final body or
after a close, a data message before accept, an accept naming a subprotocol the client did not
offer, a close code or reason that cannot be sent, a ``receive()`` that no server answers
portably (again before the handshake is answered, after a denial, after the disconnect), and
returning without a handshake or in the middle of a response.

After an accept, ``receive()`` delivers the ``messages`` given to `handshake`, then
``websocket.disconnect`` with code 1000 as if the client hung up (or, after the application's
own close, with its close code, as the client echoes it). ``send()`` after that disconnect
raises ``ConnectionResetError``, an ``OSError``, as servers do since spec version 2.4.

The harness needs anyio (the ``testing`` extra) for its timeout, and runs under asyncio and
trio alike. It imports nothing else from this package: it judges any ASGI application,
including those that deny by other means.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

try:
    import anyio
    from anyio.lowlevel import checkpoint
except ImportError as error:
    raise ImportError(
        "asgi_ws_deny.testing needs anyio: pip install 'asgi-ws-deny[testing]'"
    ) from error

__all__ = ("HandshakeResult", "ProtocolViolation", "handshake")

_Message = Mapping[str, Any]
# Mapping keys are invariant, so each key type gets its own Mapping.
_RequestHeaders = (
    Mapping[str, str | bytes]
    | Mapping[bytes, str | bytes]
    | Iterable[tuple[str | bytes, str | bytes]]
)
_App = Callable[..., Awaitable[None]]
_State = Literal["connecting", "open", "responding", "denied", "closed", "disconnected"]

_EXTENSION = "websocket.http.response"
_MAX_REASON_BYTES = 123

# Where the rules come from: the ASGI specs (asgiref specs/www.rst and docs/extensions.rst),
# and the RFCs behind them.
_CONNECT = "ASGI WebSocket spec, 'Connect - receive event'"
_ACCEPT_RULE = "ASGI WebSocket spec, 'Accept - send event'"
_SEND_RULE = "ASGI WebSocket spec, 'Send - send event'"
_CLOSE_RULE = "ASGI WebSocket spec, 'Close - send event'"
_DISCONNECT = "ASGI WebSocket spec, 'Disconnect - receive event'"
_DENIAL = "ASGI extensions, 'Websocket Denial Response'"
_START_RULE = f"{_DENIAL} with ASGI HTTP spec, 'Response Start - send event'"
_BODY_RULE = f"{_DENIAL} with ASGI HTTP spec, 'Response Body - send event'"
_STATUS_RULE = "RFC 9110 section 15 (a final status is 200..599; 1xx are interim)"
_CLOSE_CODE_RULE = "RFC 6455 section 7.4 (close codes an endpoint may send)"
_REASON_RULE = "RFC 6455 section 5.5 (a close reason is at most 123 UTF-8 bytes)"
_AFTER_CLOSE = "RFC 6455 section 5.5.1 (nothing follows a close frame)"
_EVENTS = "ASGI spec, 'Applications' (every event is a dict with a 'type' key)"
_SUBPROTOCOL_RULE = "RFC 6455 section 4.2.2 (the server selects one of the client's subprotocols)"
_TUNNEL_RULE = (
    "RFC 8441 section 5, RFC 9220 section 3 (a 2xx answer to an extended CONNECT opens the tunnel)"
)
_NO_CONTENT_RULE = "RFC 9110 sections 15.3.5, 15.3.6 and 15.4.5 (204, 205 and 304 carry no content)"
_LENGTH_RULE = "RFC 9110 section 8.6 (Content-Length is the length of the content)"

# The harness judges the guard among other apps, so it keeps its own copy of the rule rather
# than importing the guard's: a mistake in one is then caught by the other.
_SENDABLE_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))


class ProtocolViolation(AssertionError):
    """The application sent, or waited for, something the ASGI WebSocket protocol rules out.

    ``rule`` names where the rule comes from (a spec section or an RFC), ``detail`` says what was
    expected and what came, and ``messages`` holds what the application had sent until then. An
    `AssertionError`, so a test runner reports it as a failed expectation.
    """

    def __init__(self, rule: str, detail: str, messages: Iterable[_Message] = ()) -> None:
        self.rule = rule
        self.detail = detail
        self.messages = tuple(messages)
        super().__init__(f"{detail} [{rule}]")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.rule, self.detail, self.messages))


@dataclass(frozen=True)
class HandshakeResult:
    """What the client saw, and what the application sent.

    ``status`` is 101 after an accept, the response's status after a denial response, and 403
    after a close before accept (the server's answer, spec "Close - send event"). ``headers``
    and ``body`` are the denial response's, or the accept's headers and no body.
    ``close_code`` and ``close_reason`` are those of the application's close after accept (a
    close before accept never reaches the client); ``data`` holds the text and bytes of its
    data messages; ``messages`` every raw message.
    """

    accepted: bool
    status: int | None
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    subprotocol: str | None
    close_code: int | None
    close_reason: str | None
    data: tuple[str | bytes, ...]
    messages: tuple[_Message, ...]

    @property
    def denied(self) -> bool:
        """Whether the handshake was refused (a denial response, or a close before accept)."""
        return not self.accepted

    def header(self, name: str | bytes) -> bytes | None:
        """The first value of a response header, by case-insensitive name, or ``None``."""
        key = (name.encode("latin-1") if isinstance(name, str) else name).lower()
        return next((value for k, value in self.headers if k.lower() == key), None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _Refused(Exception):
    """A rule broken by one message; `_Connection.send` turns it into a `ProtocolViolation`."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(rule, detail)
        self.rule = rule
        self.detail = detail


def _header_list(rule: str, headers: object) -> tuple[tuple[bytes, bytes], ...]:
    if headers is None:
        return ()
    if isinstance(headers, (str, bytes, Mapping)) or not isinstance(headers, Iterable):
        raise _Refused(rule, f"headers must be an iterable of [name, value] pairs, got {headers!r}")
    checked = []
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise _Refused(rule, f"each header is a [name, value] pair, got {pair!r}") from None
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise _Refused(
                rule,
                f"header names and values must be byte strings, got {pair!r} "
                f"({type(name).__name__}, {type(value).__name__})",
            )
        if name != name.lower():
            raise _Refused(rule, f"header names must be lowercased, got {name!r}")
        checked.append((name, value))
    return tuple(checked)


class _Connection:
    """The server's side of one handshake: the state, the checks, the record."""

    def __init__(
        self,
        subprotocols: tuple[str, ...],
        extension: bool,
        client_messages: Iterable[str | bytes],
        http_version: str = "1.1",
    ) -> None:
        self.state: _State = "connecting"
        self.subprotocols = subprotocols
        self.extension = extension
        # HTTP/2 and HTTP/3 carry the handshake in an extended CONNECT (RFC 8441, RFC 9220).
        self.tunnel = http_version in ("2", "3")
        self.content_length: int | None = None
        self.pending = list(client_messages)
        self.connect_delivered = False
        self.sent: list[_Message] = []
        self.violation: ProtocolViolation | None = None
        self.accepted = False
        self.denied_by_close = False
        self.status: int | None = None
        self.headers: tuple[tuple[bytes, bytes], ...] = ()
        self.body = bytearray()
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.data: list[str | bytes] = []

    def fail(self, rule: str, detail: str) -> ProtocolViolation:
        violation = ProtocolViolation(rule, detail, self.sent)
        if self.violation is None:
            self.violation = violation
        return violation

    # -- receive ---------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        await checkpoint()
        state = self.state
        if state == "connecting":
            if self.connect_delivered:
                raise self.fail(
                    _CONNECT,
                    "receive() was called again before the handshake was answered: the server "
                    "passes no message until websocket.accept or websocket.close, so the "
                    "application would wait forever",
                )
            self.connect_delivered = True
            return {"type": "websocket.connect"}
        if state in ("responding", "denied"):
            raise self.fail(
                _DENIAL,
                f"receive() was called after a denial (state {state}): no message follows a "
                "denial, and servers disagree about this call (one returns "
                "websocket.disconnect at once, another blocks, another never returns)",
            )
        if state == "disconnected":
            raise self.fail(
                _DISCONNECT,
                "receive() was called after websocket.disconnect was delivered: the "
                "connection is gone and no message will come",
            )
        if state == "open" and self.pending:
            item = self.pending.pop(0)
            if isinstance(item, str):
                return {"type": "websocket.receive", "bytes": None, "text": item}
            return {"type": "websocket.receive", "bytes": bytes(item), "text": None}
        # The client hangs up (open), or echoes the application's close (closed).
        code = 1000 if state == "open" or self.close_code is None else self.close_code
        self.state = "disconnected"
        return {"type": "websocket.disconnect", "code": code, "reason": ""}

    # -- send ------------------------------------------------------------------------------

    async def send(self, message: _Message) -> None:
        await checkpoint()
        if self.state == "disconnected":
            raise ConnectionResetError(
                "the client has disconnected (websocket.disconnect was delivered)"
            )
        if not isinstance(message, Mapping) or not isinstance(message.get("type"), str):
            raise self.fail(_EVENTS, f"expected a dict with a str 'type', got {message!r}")
        self.sent.append(dict(message))
        try:
            self._apply(message)
        except _Refused as refused:
            raise self.fail(refused.rule, refused.detail) from None

    def _apply(self, message: _Message) -> None:
        kind = message["type"]
        state = self.state
        if state == "denied":
            raise _Refused(
                _CLOSE_RULE if self.denied_by_close else _DENIAL,
                f"{kind!r} was sent after the handshake was denied: nothing follows a denial",
            )
        if state == "closed":
            raise _Refused(_AFTER_CLOSE, f"{kind!r} was sent after websocket.close")
        if state == "connecting":
            if kind == "websocket.accept":
                self._accept(message)
                return
            if kind == "websocket.close":
                _check_close(message, accepted=False)
                self.state, self.status, self.denied_by_close = "denied", 403, True
                return
            if kind == "websocket.http.response.start":
                self._start(message)
                return
            if kind == "websocket.http.response.body":
                raise _Refused(
                    _BODY_RULE,
                    "websocket.http.response.body was sent before websocket.http.response.start",
                )
            if kind == "websocket.send":
                raise _Refused(
                    _CONNECT,
                    "websocket.send was sent before the handshake was accepted: the connection "
                    "is answered with websocket.accept or websocket.close first",
                )
        elif state == "responding":
            if kind == "websocket.http.response.body":
                self._body(message)
                return
            if kind == "websocket.http.response.start":
                raise _Refused(
                    _START_RULE, "a second websocket.http.response.start was sent: one per response"
                )
            raise _Refused(
                _DENIAL,
                f"{kind!r} was sent while a denial response was under way: only its "
                "websocket.http.response.body messages may follow",
            )
        elif state == "open":
            if kind == "websocket.send":
                self._data(message)
                return
            if kind == "websocket.close":
                _check_close(message, accepted=True)
                self.state = "closed"
                self.close_code = message.get("code", 1000)
                self.close_reason = message.get("reason") or ""
                return
            if kind == "websocket.accept":
                raise _Refused(_ACCEPT_RULE, "websocket.accept was sent twice")
            if kind.startswith("websocket.http.response."):
                raise _Refused(
                    _DENIAL,
                    f"{kind!r} was sent after accept: a denial response answers the "
                    "handshake, before websocket.accept",
                )
        raise _Refused(_EVENTS, f"{kind!r} is not a WebSocket send event (state {state})")

    def _accept(self, message: _Message) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            if not isinstance(subprotocol, str):
                raise _Refused(
                    _ACCEPT_RULE, f"subprotocol must be a str or None, got {subprotocol!r}"
                )
            if subprotocol not in self.subprotocols:
                raise _Refused(
                    _SUBPROTOCOL_RULE,
                    f"subprotocol {subprotocol!r} was not offered by the client "
                    f"(offered: {list(self.subprotocols)!r})",
                )
        headers = _header_list(_ACCEPT_RULE, message.get("headers"))
        if any(name == b"sec-websocket-protocol" for name, _ in headers):
            raise _Refused(
                _ACCEPT_RULE,
                "accept headers must not include sec-websocket-protocol; use the 'subprotocol' key",
            )
        self.state, self.accepted, self.status = "open", True, 101
        self.headers, self.subprotocol = headers, subprotocol

    def _start(self, message: _Message) -> None:
        if not self.extension:
            raise _Refused(
                _DENIAL,
                "websocket.http.response.start was sent but the scope does not list "
                f"{_EXTENSION!r} in its extensions: deny with websocket.close instead",
            )
        status = message.get("status")
        if isinstance(status, bool) or not isinstance(status, int):
            raise _Refused(_START_RULE, f"status must be an int, got {status!r}")
        if not 200 <= status <= 599:
            why = " (101 would switch protocols, completing the upgrade)" if status == 101 else ""
            raise _Refused(
                _STATUS_RULE, f"status must be 200..599 to deny a handshake, got {status}{why}"
            )
        if self.tunnel and status <= 299:
            raise _Refused(
                _TUNNEL_RULE,
                f"status {status} over HTTP/2 or HTTP/3 accepts the extended CONNECT, which "
                "opens the WebSocket tunnel instead of denying it",
            )
        headers = _header_list(_START_RULE, message.get("headers"))
        lengths = [value for name, value in headers if name == b"content-length"]
        if lengths and status == 204:
            raise _Refused(_LENGTH_RULE, "a 204 response cannot carry a content-length header")
        if lengths and status != 304:  # a 304's describes the representation it stands for
            self.content_length = _content_length(lengths)
        self.state, self.status, self.headers = "responding", status, headers

    def _body(self, message: _Message) -> None:
        body = message.get("body", b"")
        if not isinstance(body, bytes):
            raise _Refused(_BODY_RULE, f"body must be a byte string, got {type(body).__name__}")
        more_body = message.get("more_body", False)
        if not isinstance(more_body, bool):
            raise _Refused(_BODY_RULE, f"more_body must be a bool, got {more_body!r}")
        if body and self.status in (204, 205, 304):
            raise _Refused(_NO_CONTENT_RULE, f"a {self.status} response cannot carry a body")
        self.body += body
        expected = self.content_length
        if expected is not None and (
            len(self.body) > expected or (not more_body and len(self.body) != expected)
        ):
            raise _Refused(
                _LENGTH_RULE,
                f"content-length is {expected}, but the body is {len(self.body)} bytes"
                + (" so far" if more_body else ""),
            )
        if not more_body:
            self.state = "denied"

    def _data(self, message: _Message) -> None:
        data, text = message.get("bytes"), message.get("text")
        if (data is None) == (text is None):
            raise _Refused(
                _SEND_RULE,
                f"exactly one of 'bytes' and 'text' must be non-None, got bytes={data!r}, "
                f"text={text!r}",
            )
        if isinstance(text, str):
            self.data.append(text)
            return
        if isinstance(data, bytes):
            self.data.append(data)
            return
        if text is not None:
            raise _Refused(_SEND_RULE, f"text must be a str, got {type(text).__name__}")
        raise _Refused(_SEND_RULE, f"bytes must be a byte string, got {type(data).__name__}")

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> None:
        if self.state == "connecting":
            raise self.fail(
                _CONNECT,
                "the application returned without answering the handshake: "
                "websocket.connect must be answered with websocket.accept or websocket.close "
                "(or, with the extension, a denial response)",
            )
        if self.state == "responding":
            raise self.fail(
                _BODY_RULE,
                "the application returned in the middle of a denial response: the last "
                "websocket.http.response.body must have more_body false",
            )

    def result(self) -> HandshakeResult:
        return HandshakeResult(
            accepted=self.accepted,
            status=self.status,
            headers=self.headers,
            body=bytes(self.body),
            subprotocol=self.subprotocol,
            close_code=self.close_code,
            close_reason=self.close_reason,
            data=tuple(self.data),
            messages=tuple(self.sent),
        )


def _check_close(message: _Message, *, accepted: bool) -> None:
    code = message.get("code", 1000)
    if isinstance(code, bool) or not isinstance(code, int):
        raise _Refused(_CLOSE_RULE, f"code must be an int, got {code!r}")
    reason = message.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise _Refused(_CLOSE_RULE, f"reason must be a str or None, got {reason!r}")
    if accepted:
        # Before accept the code and reason never reach the client: the server answers 403.
        if code not in _SENDABLE_CLOSE_CODES:
            raise _Refused(
                _CLOSE_CODE_RULE,
                f"close code {code} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999",
            )
        try:
            size = len((reason or "").encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise _Refused(
                _REASON_RULE, f"the close reason cannot be encoded as UTF-8: {exc.reason}"
            ) from None
        if size > _MAX_REASON_BYTES:
            raise _Refused(_REASON_RULE, f"the close reason is {size} UTF-8 bytes, more than 123")


def _content_length(values: list[bytes]) -> int:
    """The one length that every ``content-length`` value states (RFC 9110 section 8.6)."""
    lengths = {item.strip(b" \t") for value in values for item in value.split(b",")}
    if len(lengths) == 1:
        (length,) = lengths
        if length.isdigit() and len(length) <= 18:
            return int(length)
    raise _Refused(_LENGTH_RULE, f"content-length must state one length, got {values!r}")


def _header_pairs(headers: object) -> list[tuple[bytes, bytes]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for name, value in items:  # type: ignore[attr-defined]  # a Mapping or pairs, per handshake()
        raw_name = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        raw_value = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        pairs.append((raw_name.lower(), raw_value))
    return pairs


def _scope(
    target: str,
    headers: object,
    subprotocols: tuple[str, ...],
    extension: bool,
    client: tuple[str, int] | None,
    http_version: str,
) -> dict[str, Any]:
    raw_path, _, query = target.partition("?")
    given = _header_pairs(headers)
    names = {name for name, _ in given}
    request: list[tuple[bytes, bytes]] = [
        (name, value)
        for name, value in (
            (b"host", b"testserver"),
            (b"connection", b"Upgrade"),
            (b"upgrade", b"websocket"),
            (b"sec-websocket-version", b"13"),
            # RFC 6455 section 1.3's example key: any 16 random bytes, base64-encoded.
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        )
        if name not in names
    ]
    if subprotocols and b"sec-websocket-protocol" not in names:
        request.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("latin-1")))
    request.extend(given)
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "scheme": "ws",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": request,
        "client": client,
        "server": ("testserver", 80),
        "subprotocols": list(subprotocols),
        "extensions": {_EXTENSION: {}} if extension else {},
    }


async def handshake(
    app: _App,
    path: str = "/",
    *,
    headers: _RequestHeaders = (),
    subprotocols: Iterable[str] = (),
    extension: bool = True,
    messages: Iterable[str | bytes] = (),
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    http_version: Literal["1.1", "2", "3"] = "1.1",
    # A deadline of the harness's own, so that a hanging application fails with its state and
    # messages instead of hanging the test run.
    timeout: float = 5.0,  # noqa: ASYNC109
) -> HandshakeResult:
    """Run one WebSocket handshake of ``app`` in memory and return what the client saw.

    ``path`` may carry a query string (``"/ws?token=x"``). ``headers`` (str or bytes, names
    lowercased) are added to the upgrade request's own, replacing those of the same name;
    ``subprotocols`` are offered in order; ``extension`` says whether the scope lists the
    denial-response extension. After an accept, ``messages`` (str as text, bytes as binary)
    reach the application in order, then the client disconnects with code 1000.

    Raises `ProtocolViolation` when the application breaks a rule, whatever it did with the
    error, and ``TimeoutError`` when it has not returned after ``timeout`` seconds. Any other
    exception of the application propagates unchanged.
    """
    offered = tuple(subprotocols)
    connection = _Connection(offered, extension, messages, http_version)
    scope = _scope(path, headers, offered, extension, client, http_version)
    with anyio.move_on_after(timeout) as deadline:
        try:
            await app(scope, connection.receive, connection.send)
        except Exception as exc:
            if connection.violation is not None and exc is not connection.violation:
                raise connection.violation from exc
            raise
    if deadline.cancelled_caught:
        raise TimeoutError(
            f"the application had not returned after {timeout:g}s "
            f"(connection state: {connection.state}; sent: {connection.sent!r})"
        )
    if connection.violation is not None:
        raise connection.violation
    connection.finish()
    return connection.result()

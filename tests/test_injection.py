"""Header injection: every entry of a corpus of hostile names, values and statuses is refused, by
every entry point, before anything is sent.

The corpus holds what splits or smuggles a response on the wire (CR, LF, NUL, the obs-fold of
RFC 9112 section 5.2), what some reader takes for a line break (VT, FF, NEL, U+2028, U+2029),
what is not a token in a name (RFC 9110 section 5.6.2: separators, spaces, non-ASCII), what is
not a field value (RFC 9110 section 5.5: controls, DEL, edge whitespace, characters beyond
latin-1 in a ``str``), and the framing headers that would let a caller re-frame the response
(``transfer-encoding``, ``content-length`` that disagrees, ``connection``, ``upgrade``,
``sec-websocket-*``). Each entry is tried as ``str`` and, where it has a byte form, as ``bytes``,
in pairs, in a mapping, and through `deny`, `denial_messages`, `Denial`, `Denial.text`,
`Denial.json` and the guard's `Denied`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import Recorder, websocket_scope

SEPARATORS = '()<>@,;:\\"/[]?={} \t'

#: Header names that must be refused, with a benign value.
BAD_NAMES: list[tuple[str, str | bytes]] = [
    ("crlf-response-split", "X-A\r\nSet-Cookie: evil=1"),
    ("crlf-bytes", b"X-A\r\nSet-Cookie: evil=1"),
    ("lf", "X-A\nB"),
    ("cr", "X-A\rB"),
    ("nul", "X-A\x00"),
    ("nul-bytes", b"X-A\x00"),
    ("trailing-crlf", "X-A\r\n"),
    ("header-block-end", "X-A\r\n\r\nHTTP/1.1 200 OK"),
    ("obs-fold-leading-space", " X-A"),
    ("obs-fold-leading-tab", "\tX-A"),
    ("trailing-space", "X-A "),
    ("colon", "X-A: b"),
    ("colon-bytes", b"X-A:"),
    ("empty", ""),
    ("empty-bytes", b""),
    ("vertical-tab", "X-A\x0b"),
    ("form-feed", "X-A\x0c"),
    ("escape", "X-A\x1b[31m"),
    ("del", "X-A\x7f"),
    ("nel", "X-A\x85"),
    ("line-separator", "X-\u2028A"),
    ("paragraph-separator", "X-\u2029A"),
    ("line-separator-utf8", "X-\u2028A".encode()),
    ("non-ascii", "X-\u0130"),
    ("latin-1-byte", b"X-\xe9"),
    ("high-byte", b"X-\xff"),
    ("surrogate", "X-\ud800"),
    ("fullwidth-colon", "X-A\uff1a"),
    ("overlong-257", "x" * 257),
    ("overlong-bytes", b"x" * 257),
    ("overlong-20k", "x" * 20_000),
    *((f"separator-{ord(c):02x}", f"X{c}A") for c in SEPARATORS),
]

#: Header values that must be refused, under a benign name.
BAD_VALUES: list[tuple[str, str | bytes]] = [
    ("crlf-response-split", "a\r\nSet-Cookie: evil=1"),
    ("crlf-bytes", b"a\r\nSet-Cookie: evil=1"),
    ("crlf-second-response", "a\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
    ("lf", "a\nb"),
    ("lf-bytes", b"a\nb"),
    ("cr", "a\rb"),
    ("cr-bytes", b"a\rb"),
    ("nul", "a\x00b"),
    ("nul-bytes", b"a\x00b"),
    ("obs-fold-space", "a\r\n b"),
    ("obs-fold-tab", "a\r\n\tb"),
    ("obs-fold-bytes", b"a\r\n b"),
    ("only-crlf", "\r\n"),
    ("vertical-tab", "a\x0bb"),
    ("form-feed", "a\x0cb"),
    ("escape", "a\x1b[2Jb"),
    ("backspace", "a\x08b"),
    ("del", "a\x7fb"),
    ("del-bytes", b"a\x7fb"),
    ("nel", "a\x85b"),
    ("c1-control", "a\x9bb"),
    ("line-separator", "a\u2028b"),
    ("paragraph-separator", "a\u2029b"),
    ("beyond-latin-1", "a\u0100b"),
    ("emoji", "a\U0001f600b"),
    ("surrogate", "a\ud800b"),
    ("leading-space", " a"),
    ("trailing-space", "a "),
    ("leading-tab", "\ta"),
    ("trailing-tab-bytes", b"a\t"),
    ("overlong-line", "a" * 8_183),
    ("overlong-line-bytes", b"a" * 8_183),
    ("not-str-or-bytes", 1),  # type: ignore[list-item]
    ("none", None),  # type: ignore[list-item]
]

#: Whole headers that would re-frame the response or pretend to upgrade.
BAD_HEADERS: list[tuple[str, tuple[Any, Any]]] = [
    ("transfer-encoding", ("Transfer-Encoding", "chunked")),
    ("transfer-encoding-bytes", (b"transfer-encoding", b"chunked")),
    ("content-length-too-long", ("Content-Length", "9999")),
    ("content-length-too-short", ("Content-Length", "1")),
    ("content-length-list", ("Content-Length", "24, 24")),
    ("content-length-space", ("Content-Length", " 24")),
    ("content-length-plus", ("Content-Length", "+24")),
    ("content-length-hex", ("Content-Length", "0x18")),
    ("content-length-crlf", ("Content-Length", "24\r\n\r\nHTTP/1.1 200 OK")),
    ("connection", ("Connection", "keep-alive")),
    ("keep-alive", ("Keep-Alive", "timeout=5")),
    ("proxy-connection", ("Proxy-Connection", "keep-alive")),
    ("upgrade", ("Upgrade", "websocket")),
    ("sec-websocket-accept", ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")),
    ("sec-websocket-protocol", ("Sec-WebSocket-Protocol", "chat")),
    ("sec-websocket-extensions", ("sec-websocket-extensions", "permessage-deflate")),
]

#: Statuses that are not an int in 200..599, including ones carrying a line break.
BAD_STATUSES: list[tuple[str, Any]] = [
    ("str-crlf", "401\r\nX-Evil: 1"),
    ("str", "401"),
    ("bytes", b"401"),
    ("float", 401.0),
    ("bool", True),
    ("switching-protocols", 101),
    ("interim", 100),
    ("too-small", 99),
    ("too-large", 600),
    ("negative", -401),
    ("none", None),
]

BODY = b'{"error":"unauthorized"}'


#: Header blocks that no client reads whole: too many headers, or too many bytes in all.
BAD_BLOCKS: list[tuple[str, list[tuple[Any, Any]]]] = [
    ("101-headers", [(f"x-{number}", "v") for number in range(101)]),
    ("13k-of-headers", [(f"x-{number}", "v" * 4_000) for number in range(4)]),
]


def corpus() -> list[Any]:
    entries = [pytest.param(block, id=f"block-{id_}") for id_, block in BAD_BLOCKS]
    entries += [
        pytest.param([("x-test", "v"), (name, "v")], id=f"name-{id_}") for id_, name in BAD_NAMES
    ]
    entries += [pytest.param([("x-test", value)], id=f"value-{id_}") for id_, value in BAD_VALUES]
    entries += [pytest.param([header], id=f"header-{id_}") for id_, header in BAD_HEADERS]
    return entries


def entry_points(core: ModuleType) -> dict[str, Callable[[Any], Any]]:
    """Every way a caller hands headers to the package; each must raise before sending."""
    scope = websocket_scope()

    def through_deny(headers: Any) -> None:
        send = Recorder()
        coroutine = core.deny(scope, send, 401, headers, BODY)
        try:
            coroutine.send(None)
        except StopIteration:
            raise AssertionError(f"deny accepted {headers!r}, sent {send.messages}") from None
        except core.InvalidDenialError:
            assert send.calls == 0, f"sent {send.messages} before refusing"
            raise
        finally:
            coroutine.close()
        raise AssertionError("deny suspended although the recording send never does")

    return {
        "deny": through_deny,
        "denial_messages": lambda headers: core.denial_messages(scope, 401, headers, BODY),
        "Denial": lambda headers: core.Denial(401, headers, BODY),
        "Denial.text": lambda headers: core.Denial.text(401, "denied", headers),
        "Denial.json": lambda headers: core.Denial.json(401, {"error": "denied"}, headers),
    }


ENTRY_POINTS = ["deny", "denial_messages", "Denial", "Denial.text", "Denial.json"]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize("headers", corpus())
def test_every_injection_is_refused_before_sending(
    core: ModuleType, entry_point: str, headers: list[tuple[Any, Any]]
) -> None:
    call = entry_points(core)[entry_point]
    with pytest.raises(core.InvalidDenialError):
        call(headers)
    # The same pairs as lists, and (names being unique here) as a mapping.
    with pytest.raises(core.InvalidDenialError):
        call([list(pair) for pair in headers])
    with pytest.raises(core.InvalidDenialError):
        call(dict(headers))


@pytest.mark.parametrize("headers", corpus())
def test_denied_refuses_every_injection(headers: list[tuple[Any, Any]]) -> None:
    from asgi_ws_deny import Denied, InvalidDenialError

    with pytest.raises(InvalidDenialError):
        Denied(401, headers, BODY)


@pytest.mark.parametrize(("status"), [pytest.param(s, id=i) for i, s in BAD_STATUSES])
def test_every_bad_status_is_refused_before_sending(core: ModuleType, status: Any) -> None:
    send = Recorder()
    coroutine = core.deny(websocket_scope(), send, status, [], BODY)
    with pytest.raises(core.InvalidDenialError):
        coroutine.send(None)
    assert send.calls == 0
    with pytest.raises(core.InvalidDenialError):
        core.Denial(status)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain\r\nX-Evil: 1",
        "text/plain\nX-Evil: 1",
        "text/plain\x00",
        "text/plain\u2028X-Evil: 1",
        "text/plain ",
        "application/json\r\n\r\n<script>",
    ],
    ids=["crlf", "lf", "nul", "line-separator", "trailing-space", "header-block-end"],
)
def test_a_content_type_cannot_inject_either(core: ModuleType, content_type: str) -> None:
    with pytest.raises(core.InvalidDenialError):
        core.Denial.text(401, "denied", content_type=content_type)
    with pytest.raises(core.InvalidDenialError):
        core.Denial.json(401, {"error": "denied"}, content_type=content_type)

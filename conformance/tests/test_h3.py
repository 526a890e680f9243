"""The HTTP/3 client (`conformance.h3`) against hypercorn and anycorn over QUIC.

The matrix runs its cases over HTTP/3 on the ``hypercorn-h3``, ``anycorn-h3`` and
``anycorn-h3-trio`` variants through this client; these tests check the client itself on those
servers: the scope is HTTP/3 with the extension, a denial arrives whole and ends the stream, the
browser policy's close frame comes through the tunnel, and a malformed answer is recorded with
the fields the server sent (aioquic rejects it and closes the connection).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import apps
from conformance.client import WireResponse
from conformance.h3 import h3_ws_handshake
from conformance.runner import APP, APP_DIR
from conformance.servers import VARIANTS, RunningServer, run_server

pytestmark = pytest.mark.selftest

#: What the server adds to every response it writes over HTTP/3.
SERVER_HEADERS = {b"date", b"server", b"alt-svc"}


@pytest.fixture(scope="module")
def events_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("h3") / "events.jsonl"


H3_VARIANTS = [name for name, variant in VARIANTS.items() if variant.protocol == "h3"]


@pytest.fixture(scope="module", params=H3_VARIANTS)
def server(request: pytest.FixtureRequest, events_path: Path) -> Iterator[RunningServer]:
    variant = VARIANTS[request.param]
    assert not variant.missing(), "the conformance extra installs hypercorn, anycorn and aioquic"
    env = {apps.EVENTS_ENV: str(events_path)}
    with run_server(variant, APP, app_dir=APP_DIR, env=env) as server:
        yield server


def test_the_matrix_reaches_hypercorn_and_anycorn_over_http_3() -> None:
    assert H3_VARIANTS == ["hypercorn-h3", "anycorn-h3", "anycorn-h3-trio"]
    assert all(VARIANTS[name].tls for name in H3_VARIANTS)


def handshake(
    server: RunningServer, behaviour: str, token: str, headers: tuple[tuple[str, str], ...] = ()
) -> WireResponse:
    return h3_ws_handshake(
        server.host, server.port, f"/{behaviour}?t={token}", headers, timeout=5, wait_close=1
    )


def app_headers(response: WireResponse) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in response.headers if name not in SERVER_HEADERS]


def test_the_scope_is_http_3_with_the_extension(server: RunningServer, events_path: Path) -> None:
    token = f"scope-{server.variant.name}"
    response = handshake(server, "scope", token)
    assert b"SETTINGS" in response.raw, response.raw
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    (scope,) = [e for e in events if e["token"] == token and e["event"] == "scope"]
    assert scope["http_version"] == "3"
    assert "websocket.http.response" in scope["extensions"]


def test_the_server_allows_extended_connect(server: RunningServer) -> None:
    response = handshake(server, "api-deny-single", "settings")
    # SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8) is 1: the client could send the CONNECT at all.
    assert response.error is None, response.error
    assert b"8: 1" in response.raw.split(b"\n")[0], response.raw


@pytest.mark.parametrize(
    ("behaviour", "status", "headers", "body"),
    [
        pytest.param(
            "api-deny-single",
            401,
            [(b"www-authenticate", b"Bearer"), (b"content-length", b"14")],
            apps.JSON_BODY,
            id="deny",
        ),
        pytest.param("api-deny-default", 403, [(b"content-length", b"0")], b"", id="deny-defaults"),
        pytest.param("response", 401, apps.EXACT_HEADERS, apps.JSON_BODY, id="raw-exact"),
        pytest.param(
            "chunked",
            401,
            [(b"content-type", b"text/plain")],
            b"part1,part2,part3",
            id="raw-more-body",
        ),
    ],
)
def test_a_denial_arrives_whole_and_ends_the_stream(
    server: RunningServer,
    behaviour: str,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    response = handshake(server, behaviour, behaviour)
    assert response.status == status, response.raw
    assert app_headers(response) == headers
    assert response.body == body
    assert response.closed, response.raw
    assert not response.reset, response.raw


def test_the_browser_policy_accepts_then_closes_with_code_and_reason(
    server: RunningServer,
) -> None:
    origin = (("origin", "https://example.test"),)
    response = handshake(server, "api-guard-browser-check", "browser", origin)
    assert response.status == 200, response.raw  # the tunnel opens (RFC 9220 section 3)
    # One close frame, unmasked from the server: 4401 and the status phrase.
    assert response.body == b"\x88\x0e" + (4401).to_bytes(2, "big") + b"Unauthorized"
    assert response.closed
    assert not response.reset


@pytest.mark.parametrize(
    ("behaviour", "client_error"),
    [
        # hypercorn's own error responses (websocket.close before accept gives 403, an app that
        # raises gives 500) carry 'connection: close' (protocol/ws_stream.py,
        # _send_error_response). Over HTTP/3 that is a malformed message (RFC 9114 section 4.2),
        # so an aioquic client closes the whole QUIC connection: the fallback 403 never arrives.
        # Over HTTP/2 the h2 library strips the header.
        pytest.param("close", "Header b'connection' is connection-specific", id="close-403"),
        pytest.param("raise-before", "Header b'connection' is connection-specific", id="raise"),
        # Status 101 and 99 are sent as ':status', as over HTTP/2 (matrix 2.10, 2.11).
        pytest.param("status-101", "Pseudo-header b':status' cannot be 101", id="status-101"),
        pytest.param("status-99", "Pseudo-header b':status' has invalid value b'99'", id="99"),
        # A header value with CR LF is sent as is, as over HTTP/2 (matrix 2.13).
        pytest.param("crlf", "Header b'x-injected' value has forbidden characters", id="crlf"),
        # The app's content-length is sent whatever the body, as over HTTP/2 (matrix 2.14).
        pytest.param("length-long", "content-length does not match data size", id="length"),
    ],
)
def test_known_deviations_show_as_malformed_messages(
    server: RunningServer, behaviour: str, client_error: str
) -> None:
    response = handshake(server, behaviour, behaviour)
    # H3_MESSAGE_ERROR (0x10e): the client found the server's message malformed.
    assert f"CONNECTION_CLOSE {0x10E} {client_error!r}" in response.raw.decode(), response.raw
    assert response.malformed
    # The fields as the server sent them, decoded before the client rejected them.
    assert b"HEADERS (rejected) [(b':status'" in response.raw, response.raw
    assert server.alive()


def test_status_600_is_sent_verbatim(server: RunningServer) -> None:
    # As over HTTP/1.1 and HTTP/2 (matrix 2.12).
    response = handshake(server, "status-600", "status-600")
    assert response.status == 600, response.raw

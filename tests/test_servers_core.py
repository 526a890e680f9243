"""What a client really receives when a raw ASGI app calls `deny`, on real servers on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.client import WireResponse, ws_handshake
from conformance.servers import RunningServer, run_server

pytestmark = pytest.mark.servers

APP_DIR = Path(__file__).parent
WITH_EXTENSION = ["uvicorn-sansio", "uvicorn-legacy", "uvicorn-wsproto", "hypercorn-asyncio"]
WITH_EXTENSION += ["hypercorn-trio"]
WITHOUT_EXTENSION = ["daphne"]


@pytest.fixture(scope="module", params=WITH_EXTENSION + WITHOUT_EXTENSION)
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with run_server(request.param, "server_apps:app", app_dir=APP_DIR) as running:
        yield running
        assert "Traceback" not in running.log(), running.log()


def handshake(server: RunningServer, path: str) -> WireResponse:
    response = ws_handshake(server.host, server.port, path, timeout=5.0, wait_close=2.0)
    assert not response.timed_out, response
    assert response.status != 101, response.raw
    assert response.closed, "the server must close the connection after a denial"
    return response


def header_values(response: WireResponse, name: bytes) -> list[bytes]:
    return [value for key, value in response.headers if key.lower() == name]


def logged(server: RunningServer, line: str, within: float = 5.0) -> bool:
    """Whether the server logs ``line`` within ``within`` seconds.

    The app prints its outcome after `deny` returns, which may be just after the client got the
    response; the log is read again until the line is there or the deadline passes.
    """
    deadline = time.monotonic() + within
    while line not in server.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_deny_gives_the_response_or_403(server: RunningServer) -> None:
    response = handshake(server, "/deny")
    if server.variant.name in WITHOUT_EXTENSION:
        assert response.status == 403
        expected_outcome = "close"
    else:
        assert response.status == 401
        assert header_values(response, b"www-authenticate") == [b'Bearer realm="api"']
        assert header_values(response, b"set-cookie") == [b"a=1", b"b=2"]
        assert header_values(response, b"content-length") == [b"24"]
        assert response.body == b'{"error":"unauthorized"}'
        expected_outcome = "response"
    assert logged(server, f"outcome /deny {expected_outcome}")


def test_a_denial_as_an_application(server: RunningServer) -> None:
    response = handshake(server, "/denial")
    if server.variant.name in WITHOUT_EXTENSION:
        assert response.status == 403
    else:
        assert response.status == 429
        assert header_values(response, b"retry-after") == [b"30"]
        assert header_values(response, b"content-type") == [b"application/json"]
        assert response.body == b'{"error":"slow down"}'


def test_fallback_raise_is_raised_where_the_extension_is_missing(server: RunningServer) -> None:
    response = handshake(server, "/strict")
    if server.variant.name in WITHOUT_EXTENSION:
        assert response.status == 403
        assert logged(server, "outcome /strict unsupported")
    else:
        assert response.status == 401
        assert logged(server, "outcome /strict response")

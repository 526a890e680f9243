"""The README's problem statement, measured: FastAPI alone, a dependency's ``HTTPException(401)``
in a websocket route, on each server, read by a raw client on 127.0.0.1.

Where the server lists the denial-response extension (uvicorn, hypercorn) the framework already
answers 401 with its JSON and the challenge; granian adds its upgrade headers and stays open;
gunicorn answers 403; daphne answers nothing and drops the connection when its handshake timeout
ends. If a release changes any of this, this test fails and README.md and docs/index.md say
something that is no longer true.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.client import WireResponse, ws_handshake
from conformance.servers import run_server

pytestmark = pytest.mark.servers

APP = "tests.problem_app:app"
CHALLENGE = b'Bearer realm="chat"'
#: Longer than daphne's handshake timeout (5 s), so that its silence is measured, not assumed.
TIMEOUT = 8.0


def handshake(variant: str) -> WireResponse:
    with run_server(variant, APP, app_dir=Path(__file__).parent.parent) as server:
        return ws_handshake(server.host, server.port, "/ws", timeout=TIMEOUT, wait_close=1.0)


@pytest.mark.parametrize(
    "variant",
    ["uvicorn-sansio", "uvicorn-legacy", "uvicorn-wsproto", "hypercorn-asyncio", "hypercorn-trio"],
)
def test_where_the_extension_is_listed_fastapi_answers_401(variant: str) -> None:
    response = handshake(variant)
    assert response.status == 401, response.summary()
    assert response.first("www-authenticate") == CHALLENGE
    assert json.loads(response.body) == {"detail": "unknown user"}
    assert response.closed
    assert response.first("upgrade") is None


def test_granian_adds_upgrade_headers_and_stays_open() -> None:
    response = handshake("granian")
    assert response.status == 401, response.summary()
    assert json.loads(response.body) == {"detail": "unknown user"}
    assert response.first("upgrade") == b"websocket"
    assert response.first("sec-websocket-accept") is not None
    assert not response.closed


def test_gunicorn_answers_403_without_a_body() -> None:
    response = handshake("gunicorn")
    assert response.status == 403, response.summary()
    assert response.body == b""
    assert response.first("www-authenticate") is None


def test_daphne_answers_nothing() -> None:
    response = handshake("daphne")
    assert response.status is None, response.summary()
    assert response.raw == b""
    # Dropped by daphne, not given up by the client: its handshake timeout is 5 s.
    assert not response.timed_out
    assert response.reset or response.closed
    assert 4.0 < response.elapsed < TIMEOUT

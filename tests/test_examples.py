"""The seed scenario's examples: in memory, and on uvicorn, hypercorn and daphne for real."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from asgi_ws_deny.testing import handshake
from conformance.client import WireResponse, ws_handshake
from conformance.servers import run_server
from examples import seed_denied, seed_guard

ROOT = Path(__file__).parent.parent
EXAMPLES = {"guard": seed_guard, "denied": seed_denied}
NOT_ALLOWED = {"message": "User not allowed"}

Frames = Callable[[bytes], list[tuple[int, bytes]]]


# --- In memory ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("example", EXAMPLES.values(), ids=EXAMPLES.keys())
@pytest.mark.parametrize("extension", [True, False], ids=["extension", "no-extension"])
async def test_a_refused_user_gets_the_404(example: ModuleType, extension: bool) -> None:
    result = await handshake(example.app, "/ws", headers={"x-user": "mallory"}, extension=extension)
    assert not result.accepted
    if extension:
        assert result.status == 404
        assert result.json() == NOT_ALLOWED
        assert result.header("content-type") == b"application/json"
    else:
        assert result.status == 403
        assert result.body == b""


@pytest.mark.anyio
@pytest.mark.parametrize("example", EXAMPLES.values(), ids=EXAMPLES.keys())
async def test_an_allowed_user_is_greeted(example: ModuleType) -> None:
    result = await handshake(example.app, "/ws", headers={"x-user": "alice"})
    assert (result.accepted, result.data, result.close_code) == (True, ("hello alice",), 1000)


def test_the_readme_snippets_run() -> None:
    readme = (ROOT / "examples" / "README.md").read_text()
    snippets = re.findall(r"^```python\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert snippets
    for number, code in enumerate(snippets, 1):
        exec(compile(code, f"examples/README.md python block {number}", "exec"), {})


# --- On real servers ------------------------------------------------------------------------

#: Servers that advertise the denial-response extension, and one that does not.
WITH_EXTENSION = [
    "uvicorn-sansio",
    "uvicorn-legacy",
    "uvicorn-wsproto",
    "hypercorn-asyncio",
    "hypercorn-trio",
]
WITHOUT_EXTENSION = ["daphne"]


@dataclass
class Run:
    """What the clients saw, and what the server logged, for one example on one server."""

    refused: WireResponse
    anonymous: WireResponse
    allowed: WireResponse
    log: str


@pytest.fixture(scope="module", params=WITH_EXTENSION + WITHOUT_EXTENSION)
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=EXAMPLES.keys())
def run(request: pytest.FixtureRequest, variant: str) -> Run:
    """Start the example, make three handshakes, stop the server, keep its whole log."""
    module = f"examples.seed_{request.param}:app"
    with run_server(variant, module, app_dir=ROOT) as server:

        def connect(headers: list[tuple[str, str]]) -> WireResponse:
            return ws_handshake(
                server.host, server.port, "/ws", headers, timeout=5.0, wait_close=1.0
            )

        refused = connect([("X-User", "mallory")])
        anonymous = connect([])
        allowed = connect([("X-User", "alice")])
    # Read after the stop: a traceback logged just after the response is in it by now.
    return Run(refused, anonymous, allowed, server.log())


pytestmark = pytest.mark.servers


def test_the_refused_client_sees_404_with_its_body_or_403(run: Run, variant: str) -> None:
    for response in (run.refused, run.anonymous):
        assert not response.timed_out, response.summary()
        assert response.closed, "the server closes the connection after a denial"
        if variant in WITHOUT_EXTENSION:
            assert response.status == 403
            assert response.body == b""
        else:
            assert response.status == 404
            assert response.first("content-type") == b"application/json"
            assert response.first("content-length") == b"30"
            assert json.loads(response.body) == NOT_ALLOWED


def test_the_allowed_client_is_greeted(run: Run, server_frames: Frames) -> None:
    assert run.allowed.status == 101
    assert server_frames(run.allowed.extra) == [(0x1, b"hello alice"), (0x8, b"\x03\xe8")]


#: Error lines a server logs for a correct denial, by variant. uvicorn 0.54.0's websockets-sansio
#: implementation never marks the handshake complete after a denial response, so it logs this
#: on every one (upstream: Kludex/uvicorn pull request 3138); 0.55.0 no longer does.
SPURIOUS_ERRORS = {
    "uvicorn-sansio": {"ERROR:    ASGI callable returned without completing handshake."},
}


def test_no_traceback_in_the_server_log(run: Run, variant: str) -> None:
    assert "Traceback" not in run.log, run.log
    assert "Exception in ASGI application" not in run.log, run.log
    errors = {line for line in run.log.splitlines() if "ERROR" in line or "Error" in line}
    assert errors <= SPURIOUS_ERRORS.get(variant, set()), run.log

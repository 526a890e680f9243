"""The guard on real servers: what a client sees for each way a handshake can be refused.

The servers run this module's `app` (``test_guard_servers:app``), which routes by path to one
guard per behaviour. One server per variant answers every case; the tests read what the client
saw and the server's whole log, taken after the server stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from asgi_ws_deny import Denial, Denied, Handshake, WebSocketGuard

if TYPE_CHECKING:
    from conformance.client import WireResponse

CHECK_SECRET = "check-secret-7f3a"
APP_SECRET = "app-secret-91c2"


# --- The application the servers run --------------------------------------------------------


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.send", "bytes": None, "text": "ok"})
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


def failing_check(handshake: Handshake) -> None:
    raise KeyError(CHECK_SECRET)


async def app_error(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    raise RuntimeError(APP_SECRET)


async def denied_after_accept(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    raise Denied(403, reason="go away")


async def no_handshake(scope: Any, receive: Any, send: Any) -> None:
    await receive()


ROUTES = {
    "/admitted": WebSocketGuard(hello, lambda handshake: None),
    "/check-error": WebSocketGuard(hello, failing_check),
    "/app-error": WebSocketGuard(app_error),
    "/after-accept": WebSocketGuard(denied_after_accept),
    "/no-handshake": WebSocketGuard(no_handshake),
    "/browser": WebSocketGuard(hello, lambda handshake: Denial(404), browser_policy="always"),
}


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await ROUTES[scope["path"]](scope, receive, send)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


# --- The runs -------------------------------------------------------------------------------

WITH_EXTENSION = [
    "uvicorn-sansio",
    "uvicorn-legacy",
    "uvicorn-wsproto",
    "hypercorn-asyncio",
    "hypercorn-trio",
]
#: daphne lacks the extension: every HTTP denial is its 403. It also sends close frames
#: without their reason (measured with daphne 4.2.3).
WITHOUT_EXTENSION = ["daphne"]

Frames = Callable[[bytes], list[tuple[int, bytes]]]


@dataclass
class Run:
    variant: str
    responses: dict[str, WireResponse]
    log: str


@pytest.fixture(scope="module", params=WITH_EXTENSION + WITHOUT_EXTENSION)
def run(request: pytest.FixtureRequest) -> Run:
    from conformance.client import ws_handshake
    from conformance.servers import run_server

    variant = str(request.param)
    with run_server(variant, "test_guard_servers:app", app_dir=Path(__file__).parent) as server:
        responses = {
            path: ws_handshake(server.host, server.port, path, timeout=5.0, wait_close=1.0)
            for path in ROUTES
        }
        # daphne reports an application's error from a checker that runs once a second, so
        # the re-raised error of /app-error may reach its log after the response: wait for it
        # (bounded) before stopping the server.
        deadline = time.monotonic() + 5.0
        while APP_SECRET not in server.log() and time.monotonic() < deadline:
            time.sleep(0.02)
    return Run(variant, responses, server.log())


pytestmark = pytest.mark.servers


def close_frame(code: int, reason: str) -> tuple[int, bytes]:
    return (0x8, code.to_bytes(2, "big") + reason.encode())


def expected_close(run: Run, code: int, reason: str) -> tuple[int, bytes]:
    return close_frame(code, "" if run.variant in WITHOUT_EXTENSION else reason)


def test_an_admitted_client_is_served(run: Run, server_frames: Frames) -> None:
    response = run.responses["/admitted"]
    assert response.status == 101
    assert server_frames(response.extra) == [(0x1, b"ok"), close_frame(1000, "")]


@pytest.mark.parametrize("path", ["/check-error", "/app-error"])
def test_a_failure_before_accept_is_a_500_without_details(run: Run, path: str) -> None:
    response = run.responses[path]
    assert response.status == (403 if run.variant in WITHOUT_EXTENSION else 500)
    assert response.closed
    for secret in (CHECK_SECRET, APP_SECRET):
        assert secret.encode() not in response.raw


def test_a_failing_check_is_logged_by_the_guard(run: Run) -> None:
    assert "WebSocket check" in run.log
    assert f"KeyError: '{CHECK_SECRET}'" in run.log


def test_an_app_error_before_accept_still_reaches_the_server(run: Run) -> None:
    assert f"RuntimeError: {APP_SECRET}" in run.log


def test_only_the_two_failures_leave_a_traceback(run: Run) -> None:
    assert run.log.count("Traceback (most recent call last)") == 2, run.log


def test_denied_after_accept_closes_with_the_mapped_code(run: Run, server_frames: Frames) -> None:
    response = run.responses["/after-accept"]
    assert response.status == 101
    assert server_frames(response.extra) == [expected_close(run, 4403, "go away")]


def test_an_app_without_a_handshake_gets_a_clean_403(run: Run) -> None:
    response = run.responses["/no-handshake"]
    assert response.status == 403
    assert response.closed


def test_the_browser_policy_accepts_then_closes(run: Run, server_frames: Frames) -> None:
    response = run.responses["/browser"]
    assert response.status == 101
    assert server_frames(response.extra) == [expected_close(run, 4404, "Not Found")]

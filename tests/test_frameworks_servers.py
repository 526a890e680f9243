"""Each framework's example app on real servers: what a client receives on the wire.

Every example in ``examples/frameworks/`` refuses the same way: a client without the
``x-user: alice`` header gets ``401`` with ``www-authenticate`` and a body where the server lists
the denial-response extension (uvicorn, hypercorn), and ``403`` with no body where it does not
(daphne); alice is greeted and the connection closed with 1000. One server per framework and
variant answers every case; the tests read what the clients saw and the server's whole log, taken
after the server stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance.client import WireConnection, WireResponse, ws_handshake
from conformance.servers import RunningServer, run_server

pytestmark = pytest.mark.servers

ROOT = Path(__file__).parent.parent
CHALLENGE = b'Bearer realm="chat"'
JSON = (b"application/json", b'{"error":"unknown user"}')

Frames = Callable[[bytes], list[tuple[int, bytes]]]


@dataclass(frozen=True)
class Example:
    """An example app: its import string, and the (content-type, body) each path denies with."""

    app: str
    denials: dict[str, tuple[bytes, bytes]]
    #: Paths that accept, then close with this code and reason.
    closes: dict[str, tuple[int, bytes | None]] = field(default_factory=dict)
    #: Whether the framework runs under trio (hypercorn -k trio).
    trio: bool = False


EXAMPLES = {
    "starlette": Example(
        "examples.frameworks.starlette_app:app",
        {
            "/ws": JSON,
            "/raise": (b"text/plain; charset=utf-8", b"unknown user"),
            "/denied": JSON,
        },
        closes={"/late": (4403, b"too late to deny")},
        trio=True,
    ),
    "fastapi": Example(
        "examples.frameworks.fastapi_app:app",
        {"/ws": JSON, "/raise": (b"application/json", b'{"detail":"unknown user"}')},
        trio=True,
    ),
    "channels": Example(
        "examples.frameworks.channels_app:application", {"/ws": JSON, "/denied": JSON}
    ),
    "quart": Example("examples.frameworks.quart_app:app", {"/ws": JSON, "/returned": JSON}),
    "falcon": Example("examples.frameworks.falcon_app:app", {"/ws": JSON, "/checked": JSON}),
    "litestar": Example(
        "examples.frameworks.litestar_app:app", {"/ws": JSON, "/checked": JSON}, trio=True
    ),
}

WITH_EXTENSION = ["uvicorn-sansio", "uvicorn-legacy", "uvicorn-wsproto", "hypercorn-asyncio"]
WITHOUT_EXTENSION = ["daphne"]


def variants(example: Example) -> list[str]:
    return [*WITH_EXTENSION, *(["hypercorn-trio"] if example.trio else []), *WITHOUT_EXTENSION]


RUNS = [(name, variant) for name, example in EXAMPLES.items() for variant in variants(example)]


@dataclass
class Run:
    """What the clients saw, and what the server logged, for one example on one server."""

    variant: str
    example: Example
    refused: dict[str, WireResponse]
    #: The bytes written after the 101, up to and including the server's close frame.
    admitted: dict[str, tuple[WireResponse, bytes]]
    log: str


def _close_frame_in(data: bytes) -> bool:
    """Whether ``data`` (unmasked server frames, RFC 6455 section 5.2) holds a close frame."""
    while len(data) >= 2:
        size, start = data[1] & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        elif size == 127:
            size, start = int.from_bytes(data[2:10], "big"), 10
        if data[0] & 0x0F == 0x8:
            return len(data) >= start + size
        data = data[start + size :]
    return False


def greet(server: RunningServer, path: str, timeout: float = 5.0) -> tuple[WireResponse, bytes]:
    """Handshake as alice; read the frames until the server's close frame, then answer it."""
    with WireConnection(server.host, server.port, timeout=timeout) as connection:
        response = connection.handshake(path, [("X-User", "alice")])
        data, deadline = connection.pending, time.monotonic() + timeout
        while response.status == 101 and not _close_frame_in(data):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            connection.sock.settimeout(left)
            try:
                chunk = connection.sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        # A masked close frame with code 1000 (RFC 6455 section 5.5.1), as a client answers.
        connection.send(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
        return response, data


@pytest.fixture(scope="module", params=RUNS, ids=[f"{name}-{variant}" for name, variant in RUNS])
def run(request: pytest.FixtureRequest) -> Run:
    name, variant = request.param
    example = EXAMPLES[name]
    with run_server(variant, example.app, app_dir=ROOT) as server:
        refused = {
            path: ws_handshake(server.host, server.port, path, timeout=5.0, wait_close=2.0)
            for path in example.denials
        }
        admitted = {path: greet(server, path) for path in [*example.denials, *example.closes]}
    # Read after the stop: a traceback logged just after the response is in it by now.
    return Run(variant, example, refused, admitted, server.log())


def test_a_refused_client_gets_the_response_or_403(run: Run) -> None:
    for path, (content_type, body) in run.example.denials.items():
        response = run.refused[path]
        assert not response.timed_out, (path, response.summary())
        assert response.closed, f"{path}: the server closes the connection after a denial"
        if run.variant in WITHOUT_EXTENSION:
            assert (response.status, response.body) == (403, b""), path
        else:
            assert (response.status, response.body) == (401, body), path
            assert response.header("www-authenticate") == [CHALLENGE], path
            assert response.header("content-type") == [content_type], path
            assert response.header("content-length") == [str(len(body)).encode()], path


def test_admitted_clients_get_their_frames(run: Run, server_frames: Frames) -> None:
    """Alice is greeted and closed with 1000; a path that refuses after accept closes with
    ``4000 + status`` and its reason."""
    expected: dict[str, tuple[int, bytes | None]] = dict.fromkeys(run.example.denials, (1000, None))
    expected.update(run.example.closes)
    for path, (code, reason) in expected.items():
        response, data = run.admitted[path]
        assert response.status == 101, (path, response.summary())
        frames = server_frames(data)
        if reason is None:
            assert frames[0] == (0x1, b"hello alice"), path
        assert frames[-1][0] == 0x8, path
        assert frames[-1][1][:2] == code.to_bytes(2, "big"), path
        # daphne sends the code of a close without its reason; Falcon adds the reason "Normal
        # Closure" to its own close where the server passes reasons on.
        if reason is not None and run.variant not in WITHOUT_EXTENSION:
            assert frames[-1][1][2:] == reason, path


def test_no_traceback_in_the_server_log(run: Run) -> None:
    assert "Traceback" not in run.log, run.log
    assert "Exception inside application" not in run.log, run.log
    assert "Exception in ASGI application" not in run.log, run.log
    # No error line either: uvicorn's websockets-sansio logged "ASGI callable returned without
    # completing handshake." after every denial response up to 0.54 (Kludex/uvicorn#3138).
    errors = [line for line in run.log.splitlines() if "ERROR" in line or "Error" in line]
    assert not errors, run.log

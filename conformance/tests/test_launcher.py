"""The launcher starts every variant for real and leaves no process or port behind."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from conformance.client import ws_handshake
from conformance.client_h2 import h2_ws_handshake
from conformance.h3 import h3_ws_handshake
from conformance.servers import (
    VARIANTS,
    RunningServer,
    ServerStartError,
    Variant,
    _listener_is_ours,
    port_answers,
    run_server,
)

pytestmark = pytest.mark.selftest

ROOT = Path(__file__).resolve().parents[2]
APP = "conformance.apps:app"


def _gone(server: RunningServer) -> bool:
    try:
        os.killpg(server.pid, 0)
    except ProcessLookupError:
        return True
    return False


CLIENTS = {"http/1.1": ws_handshake, "h2": h2_ws_handshake, "h3": h3_ws_handshake}


def test_every_variant_starts_answers_and_leaves_nothing_behind() -> None:
    # One test, not one per variant, so that `pytest conformance -k daphne` selects the matrix.
    seen = {}
    for name, variant in VARIANTS.items():
        with run_server(name, APP, app_dir=ROOT, ready_timeout=20) as server:
            handshake = CLIENTS[variant.protocol]
            # deny()'s default 403, through the extension or the fallback close: over HTTP/3
            # the fallback's 403 is malformed (hypercorn-h3 3.1), the extension's is not.
            path = "/api-deny-default?t=launcher"
            response = handshake(server.host, server.port, path, timeout=5)
            assert server.alive(), server.log()
            seen[name] = response.status
        assert not server.alive()
        assert _gone(server), f"{name}: a process of group {server.pid} survived"
        assert not port_answers(server.host, server.port), f"{name}: port still answers"
        assert isinstance(server.log(), str)
    assert seen == dict.fromkeys(VARIANTS, 403)


def test_a_custom_command_is_a_variant() -> None:
    variant = Variant.parse(
        "custom-uvicorn={python} -m uvicorn {app} --host {host} --port {port} --ws wsproto"
    )
    with run_server(variant, APP, app_dir=ROOT) as server:
        response = ws_handshake(server.host, server.port, "/close?t=custom", timeout=5)
    assert response.status == 403
    assert _gone(server)


def test_a_server_that_exits_is_a_start_error_with_its_log() -> None:
    variant = Variant.from_command(
        "exits", [sys.executable, "-c", "print('bye {app} {port}'); raise SystemExit(3)"]
    )
    with pytest.raises(ServerStartError) as caught, run_server(variant, APP):
        pass
    assert "status 3" in caught.value.reason
    assert "bye conformance.apps:app" in caught.value.log


def test_a_missing_package_is_a_start_error() -> None:
    variant = Variant("nothing", ("{python}", "-c", "pass", "{app}", "{port}"))
    variant = Variant("nothing", variant.command, requires=("asgi-ws-deny-no-such-distribution",))
    with pytest.raises(ServerStartError, match="not installed"), run_server(variant, APP):
        pass


@pytest.mark.parametrize("spec", ["", "name", "=cmd {app} {port}", "x=cmd {port}", "x=cmd {app}"])
def test_a_bad_server_spec_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"expected|placeholder"):
        Variant.parse(spec)


def test_a_port_answered_by_another_process_is_not_ready() -> None:
    """Two launches can draw the same free port; readiness must be the server's own listener."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert _listener_is_ours(port, os.getpgid(0))
        assert not _listener_is_ours(port, os.getpgid(1))
    assert not _listener_is_ours(port, os.getpgid(0))

"""What docs/security.md says of uvicorn and X-Forwarded-For, on a real uvicorn.

uvicorn rewrites the scope's client from ``X-Forwarded-For`` when the peer is 127.0.0.1 or ::1,
by default, for WebSocket handshakes too. A client on loopback (the test itself) then names its
own address and gets a fresh rate-limit budget with every handshake; with
``--no-proxy-headers`` the header is ignored and the limit holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.client import ws_handshake
from conformance.servers import Variant, run_server

pytestmark = pytest.mark.servers

TESTS = Path(__file__).parent
UVICORN = "{python} -m uvicorn --host {host} --port {port} --app-dir {app_dir}"
DEFAULTS = Variant.from_command("uvicorn-defaults", UVICORN + " {app}")
NO_PROXY_HEADERS = Variant.from_command(
    "uvicorn-no-proxy-headers", UVICORN + " --no-proxy-headers {app}"
)


@pytest.mark.parametrize(
    ("variant", "statuses"),
    [(DEFAULTS, [101, 101, 101]), (NO_PROXY_HEADERS, [101, 429, 429])],
    ids=["defaults", "no-proxy-headers"],
)
def test_uvicorn_trusts_x_forwarded_for_from_loopback(
    variant: Variant, statuses: list[int]
) -> None:
    with run_server(variant, "forwarded_app:app", app_dir=TESTS) as server:
        seen = [
            ws_handshake(
                server.host, server.port, "/ws", [("X-Forwarded-For", f"203.0.113.{n}")]
            ).status
            for n in range(3)
        ]
    assert seen == statuses

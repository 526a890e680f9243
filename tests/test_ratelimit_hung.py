"""A Redis that accepts connections and never answers must not freeze a server worker.

uvicorn (one worker, one event loop) runs tests/hung_redis_app.py: handshakes go through a
`RateLimitCheck` on a fake Redis that reads every request and answers none, and an HTTP GET
asks the same worker for something unrelated. The GET must be answered at once while the
handshakes wait; the handshakes get 503 at the check's timeout; once the breaker is open, a
handshake is answered without a storage call.
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import pytest

from conformance.client import WireResponse, ws_handshake
from conformance.servers import RunningServer, run_server
from tests.checks_support import hung_redis

pytestmark = pytest.mark.servers

TESTS = Path(__file__).parent
HANDSHAKES = 20
CHECK_TIMEOUT = 3.0  # the RateLimitCheck's timeout; the Redis URI says socket_timeout=30


def get(server: RunningServer) -> WireResponse:
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode("ascii")
    return ws_handshake(server.host, server.port, request=request, timeout=30)


def test_an_unrelated_request_stays_fast_while_handshakes_hang() -> None:
    with hung_redis() as redis:
        env = {
            "CHECKS_STORAGE": redis.url + "?socket_timeout=30&socket_connect_timeout=30",
            "CHECKS_TIMEOUT": str(CHECK_TIMEOUT),
        }
        with (
            run_server("uvicorn-sansio", "hung_redis_app:app", app_dir=TESTS, env=env) as server,
            concurrent.futures.ThreadPoolExecutor(HANDSHAKES) as pool,
        ):
            before = get(server)
            assert before.status == 200, before.summary()
            started = time.monotonic()
            handshakes = [
                pool.submit(ws_handshake, server.host, server.port, "/ws", [], timeout=30)
                for _ in range(HANDSHAKES)
            ]
            assert redis.asked.wait(10), "no handshake reached the fake Redis"
            during = get(server)
            waiting = sum(not future.done() for future in handshakes)
            answers = [future.result() for future in handshakes]
            hung_for = time.monotonic() - started
            asked = redis.requests
            after = ws_handshake(server.host, server.port, "/ws", [], timeout=30)
            print(
                f"GET before {before.elapsed * 1000:.1f} ms, during {during.elapsed * 1000:.1f} "
                f"ms with {waiting} handshakes waiting; {HANDSHAKES} handshakes answered in "
                f"{hung_for:.2f} s; one after the breaker opened in {after.elapsed * 1000:.1f} ms"
            )
    assert during.status == 200, during.summary()
    # Answered while the handshakes still waited on Redis: the event loop was free.
    assert waiting == HANDSHAKES
    assert during.elapsed < CHECK_TIMEOUT / 3
    assert [answer.status for answer in answers] == [503] * HANDSHAKES
    assert all(answer.first("retry-after") is not None for answer in answers)
    assert hung_for >= CHECK_TIMEOUT
    # The breaker: answered without asking Redis.
    assert after.status == 503, after.summary()
    assert redis.requests == asked
    assert after.elapsed < CHECK_TIMEOUT / 3

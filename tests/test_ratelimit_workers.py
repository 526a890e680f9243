"""One rate limit across server workers: uvicorn ``--workers 2`` against one real Redis.

Each worker is its own process with its own ``RateLimitCheck`` and its own connection pool.
Handshakes go out until both workers have answered some (each answer names its worker's pid)
and more than the limit were sent. With Redis, exactly ``LIMIT`` are admitted in all, so a
worker that admitted fewer than ``LIMIT`` itself still refused: it counted the other's. The
control runs the same with the in-memory store, where each worker counts alone and more than
``LIMIT`` get in, so the test can tell the two apart.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance.client import ws_handshake
from conformance.servers import RunningServer, Variant, run_server
from tests.checks_support import RedisServer, redis_server

pytestmark = pytest.mark.servers

# The header tests/checks_ratelimit_app.py stamps on every answer.
PID_HEADER = "x-worker-pid"
LIMIT = 6
EXTRA = 4
MAX_ATTEMPTS = 200
BATCH = 8
TESTS = Path(__file__).parent
UVICORN_TWO_WORKERS = Variant.from_command(
    "uvicorn-2-workers",
    "{python} -m uvicorn --host {host} --port {port} --workers 2 --app-dir {app_dir} {app}",
)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def worker_pids(server: RunningServer, timeout: float = 20.0) -> set[int]:
    """The pids of both workers, once each has completed its startup (read from the log)."""
    deadline = time.monotonic() + timeout
    while True:
        log = server.log()
        if log.count("Application startup complete") >= 2:
            return {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log)}
        if time.monotonic() > deadline or not server.alive():
            pytest.fail(f"two workers did not start:\n{log}")
        time.sleep(0.02)


def hammer(server: RunningServer) -> tuple[Counter[tuple[int, int | None]], int]:
    """Handshakes until both workers answered and more than LIMIT + EXTRA were sent.

    They go out in concurrent batches: one at a time, a worker that answers at once (its storage
    calls run in a thread) can win every accept, and the other would never be asked."""

    def one(_: int) -> tuple[int, int | None]:
        response = ws_handshake(server.host, server.port, "/ws", [], timeout=5)
        pid = response.first(PID_HEADER)
        assert pid is not None, response.summary()
        return int(pid), response.status

    served: Counter[tuple[int, int | None]] = Counter()
    sent = 0
    with ThreadPoolExecutor(BATCH) as pool:
        while sent < LIMIT + EXTRA or len({pid for pid, _ in served}) < 2:
            if sent >= MAX_ATTEMPTS:
                pytest.fail(f"after {sent} handshakes only one worker had answered: {served}")
            served.update(pool.map(one, range(BATCH)))
            sent += BATCH
    return served, sent


@pytest.mark.parametrize("store", ["redis", "memory"])
def test_the_limit_holds_across_two_workers(store: str, request: pytest.FixtureRequest) -> None:
    storage = request.getfixturevalue("redis").url if store == "redis" else "memory://"
    env = {
        "CHECKS_LIMIT": f"{LIMIT}/hour",
        "CHECKS_STORAGE": storage,
        "CHECKS_NAMESPACE": f"workers-{uuid.uuid4().hex}",
    }
    with run_server(UVICORN_TWO_WORKERS, "checks_ratelimit_app:app", app_dir=TESTS, env=env) as srv:
        pids = worker_pids(srv)
        assert len(pids) == 2
        served, sent = hammer(srv)
    assert {pid for pid, _ in served} == pids, "every answer came from one of the two workers"
    assert {status for _, status in served} <= {101, 429}
    admitted = sum(count for (_, status), count in served.items() if status == 101)
    by_worker = {pid: served[(pid, 101)] for pid in pids}
    print(f"{store}: {sent} handshakes, admitted by worker {by_worker}, served {dict(served)}")
    if store == "redis":
        assert admitted == LIMIT
        assert sent - admitted >= EXTRA
        # Some worker refused while it had admitted fewer than LIMIT itself.
        assert any(served[(pid, 429)] and by_worker[pid] < LIMIT for pid in pids)
    else:
        # Each worker counts alone: both admitted, more than LIMIT in all.
        assert admitted > LIMIT

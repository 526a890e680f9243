"""Soak: thousands of denials per server variant at high concurrency; nothing breaks or leaks.

Every variant of the conformance matrix runs ``bench.server_app`` for real on 127.0.0.1 and
takes ``DENIALS`` handshakes on ``/deny`` (``deny(scope, send, 401, headers, body)``),
``CONCURRENCY`` at a time, from the load client of `bench.load`, after a warm-up that brings
the server to its steady state. Then, one test each:

- every client got the whole response: the 401 with its headers and body where the server
  lists the denial-response extension, the 403 of the close fallback where it does not (on
  daphne, but for a rare reset before any byte, its own bug: `SPORADIC_RESETS`);
- the server logged no error other than the lines it is known to write on a denial;
- its open file descriptors are back to the warm baseline once it has closed the
  connections (read from ``/proc``, polled with a deadline: no event announces it);
- its resident memory does not grow with the denials: read after each of `BATCHES` equal
  batches, it grows by at most `STEADY_GROWTH_KIB` from batch to batch (median) and ends within
  `RSS_SLACK_KIB` of the warm baseline.

``make test`` runs a short version; ``make soak`` (``ASGI_WS_DENY_SOAK=1``) the full one:
10,000 denials per variant at concurrency 100.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import proc
from bench.load import LOAD_VARIANTS, Exchange, LoadResult, run_load
from bench.server_app import BODY
from bench.serverlog import unexpected_errors
from conformance.servers import RunningServer, run_server

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent
FULL = os.environ.get("ASGI_WS_DENY_SOAK") == "1"
DENIALS = 10_000 if FULL else 500
CONCURRENCY = 100 if FULL else 50
#: Variants that do not list the denial-response extension: `deny` falls back to a close.
WITHOUT_EXTENSION = {"daphne", "gunicorn"}
#: daphne now and then resets a connection under load before it sends a byte, although its own
#: access log says it answered (docs/benchmarks.md, "Server behaviour"): far more often on
#: admitted connections, and on about one denial in 50,000 at concurrency 100. Those resets,
#: and nothing else, are allowed there, up to this share of the denials (at least one).
SPORADIC_RESETS = {"daphne": 0.001}
#: Handshakes before the baseline is read. Servers grow to a steady size: daphne by about
#: 17 KiB per connection for its first ~2,500 connections, uvicorn's legacy stack by about
#: 5 KiB for its first ~1,700, hypercorn over HTTP/2 by about 8 MiB in all between its 500th
#: and its 1,000th (37 to 45 MiB, with the hand-written messages too), then none of them
#: beyond noise up to 12,000-19,000 (measured with bench.load at concurrency 50); the others
#: within a few hundred.
WARM_UP = {"daphne": 3000, "uvicorn-legacy": 2000, "hypercorn-h2": 2000}
DEFAULT_WARM_UP = 3000 if FULL else 300
#: The soak runs in equal batches, resident memory read after each (connections closed).
BATCHES = 5
#: A leak grows memory batch after batch; a server's allocator moves it in occasional steps
#: (daphne's by ~6 MiB now and then, with or without the helper, measured with bench.load).
#: So the median growth from one batch to the next must stay under this: a leak of half a
#: kilobyte per denial fails the full soak (2,000 denials per batch).
STEADY_GROWTH_KIB = 1024
#: And the end may not be further than this above the warm baseline: two steps of noise.
RSS_SLACK_KIB = 16 * 1024
#: How long a server may take to close the connections of a run once the clients have theirs.
SETTLE_S = 10.0
#: gunicorn's ASGI worker keeps about 18 KiB per handshake: measured with bench.load, 58 MiB
#: after 200 handshakes, 168 MiB after 6,200 and 225 MiB after 10,200 with a bare
#: ``websocket.close`` (no helper involved), and the same with the helper's denial.
SERVER_LEAKS = {
    "gunicorn": "gunicorn -k asgi grows by ~18 KiB per handshake, with a bare websocket.close too",
}


@dataclass
class Soak:
    """One soak run on one variant and what the server looked like around it."""

    server: RunningServer
    exchanges: list[Exchange]
    errors: Counter[str]
    baseline_fds: int
    rss_kib: list[int]
    log: str


@pytest.fixture(scope="module", params=LOAD_VARIANTS)
def soak(request: pytest.FixtureRequest) -> Iterator[Soak]:
    name = request.param
    with run_server(name, "bench.server_app:app", app_dir=ROOT) as server:
        pids = proc.group_pids(server.pid)
        idle_fds = proc.open_fds(pids)
        warm_up = load(server, WARM_UP.get(name, DEFAULT_WARM_UP))
        # The idle count before any connection is the floor; wait for the server to be back at
        # it (or as close as it gets) before taking the baseline.
        assert warm_up.errors == {}, f"the warm-up failed: {warm_up.errors}"
        proc.wait_until(lambda: proc.open_fds(pids) <= idle_fds, SETTLE_S)
        baseline_fds = proc.open_fds(pids)
        rss = [proc.memory(pids).rss_kib]
        mark = server.log_mark()
        exchanges: list[Exchange] = []
        errors: Counter[str] = Counter()
        for _ in range(BATCHES):
            batch = load(server, DENIALS // BATCHES)
            exchanges += batch.exchanges
            errors += batch.errors
            # Memory is read once the connections are closed: open ones hold buffers.
            proc.wait_until(lambda: proc.open_fds(pids) <= baseline_fds, SETTLE_S)
            rss.append(proc.memory(pids).rss_kib)
        yield Soak(server, exchanges, errors, baseline_fds, rss, server.log(mark))


def load(server: RunningServer, count: int) -> LoadResult:
    return run_load(
        server.host,
        server.port,
        "/deny",
        count=count,
        concurrency=CONCURRENCY,
        protocol=server.variant.protocol,
        timeout=30.0,
        budget=300.0,
    )


def test_every_client_got_the_whole_response(soak: Soak) -> None:
    assert len(soak.exchanges) == DENIALS
    errors = dict(soak.errors)
    share = SPORADIC_RESETS.get(soak.server.variant.name)
    if share is not None and "reset" in errors:
        resets = [exchange for exchange in soak.exchanges if exchange.error == "reset"]
        before_any_byte = [e for e in resets if e.status is None and not e.headers and not e.body]
        assert before_any_byte == resets, f"a reset after the answer began: {resets}"
        assert len(resets) <= max(1, math.floor(share * DENIALS)), f"{len(resets)} resets"
        del errors["reset"]
    assert errors == {}, f"failures by reason: {soak.errors}"
    answered = [exchange for exchange in soak.exchanges if exchange.error is None]
    if soak.server.variant.name in WITHOUT_EXTENSION:
        assert {exchange.status for exchange in answered} == {403}
        return
    wrong = [
        exchange
        for exchange in answered
        if exchange.status != 401
        or exchange.body != BODY
        or exchange.header(b"www-authenticate") != [b'Bearer realm="api"']
        or exchange.header(b"content-length") != [str(len(BODY)).encode()]
    ]
    assert not wrong, f"{len(wrong)} incomplete or wrong responses, the first: {wrong[0]}"


def test_no_unexpected_server_error(soak: Soak) -> None:
    assert soak.server.alive()
    assert unexpected_errors(soak.server.variant.name, soak.log) == []


def test_descriptors_are_back_to_the_baseline(soak: Soak) -> None:
    pids = proc.group_pids(soak.server.pid)
    back = proc.wait_until(lambda: proc.open_fds(pids) <= soak.baseline_fds, SETTLE_S)
    assert back, (
        f"{proc.open_fds(pids)} descriptors open {SETTLE_S:g} s after the run, "
        f"{soak.baseline_fds} before it"
    )


def test_memory_does_not_grow_with_denials(soak: Soak, request: pytest.FixtureRequest) -> None:
    name = soak.server.variant.name
    if name in SERVER_LEAKS:
        request.applymarker(pytest.mark.xfail(reason=SERVER_LEAKS[name], strict=True))
    growth = [after - before for before, after in itertools.pairwise(soak.rss_kib)]
    readings = f"RSS in KiB before and after each batch of {DENIALS // BATCHES}: {soak.rss_kib}"
    assert statistics.median(growth) <= STEADY_GROWTH_KIB, readings
    assert soak.rss_kib[-1] <= soak.rss_kib[0] + RSS_SLACK_KIB, readings

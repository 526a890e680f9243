"""The guard under load: many concurrent handshakes, half refused by the check, half admitted.

``bench.guard_app`` runs for real on 127.0.0.1; the load client opens ``HANDSHAKES``
connections at once (``CONCURRENCY``), each naming itself with an id and asking to be admitted
or not, in a shuffled order. Then:

- no admitted connection belonged to a refused check: every connection that was accepted
  asked to be, and the message it got names its own id (the application saw its scope);
- no refused connection reached the application: the ids the application logged are exactly
  the admitted ones, and every refused connection got the 403 naming its own id (or, where the
  server lacks the denial-response extension, the 403 of the close fallback), never a 101.

``make test`` runs a short version; ``make soak`` (``ASGI_WS_DENY_SOAK=1``) 1,000 concurrent
handshakes on every variant.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.load import LOAD_VARIANTS, run_load
from bench.serverlog import unexpected_errors
from conformance.servers import RunningServer, Variant, run_server

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent
FULL = os.environ.get("ASGI_WS_DENY_SOAK") == "1"
HANDSHAKES = 1000 if FULL else 200
CONCURRENCY = HANDSHAKES
SHORT_VARIANTS = ["uvicorn-sansio", "hypercorn-trio", "daphne", "granian"]
WITHOUT_EXTENSION = {"daphne", "gunicorn"}
#: daphne listens with Twisted's default backlog of 50: in a burst of 1,000 connections the
#: kernel drops the handshakes that find the accept queue full, and after its SYN-ACK retries
#: the server forgets them while their clients wait (measured: 115 of 1,000 unanswered after
#: 60 s). That is a deployment setting, not the guard's business: the burst runs against
#: daphne with the backlog of the other servers (uvicorn's and gunicorn's default is 2048).
DAPHNE_BACKLOG = Variant(
    "daphne",
    (
        "{python}",
        "-m",
        "daphne",
        "-e",
        "tcp:port={port}:interface={host}:backlog=2048",
        "{app}",
    ),
    server="daphne",
    requires=("daphne",),
    description="daphne, listen backlog 2048",
)


@pytest.fixture(scope="module", params=LOAD_VARIANTS if FULL else SHORT_VARIANTS)
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    variant = DAPHNE_BACKLOG if request.param == "daphne" else request.param
    with run_server(variant, "bench.guard_app:app", app_dir=ROOT) as running:
        yield running


def test_admitted_and_refused_never_cross(server: RunningServer) -> None:
    allowed = [index % 2 == 0 for index in range(HANDSHAKES)]
    random.Random(6).shuffle(allowed)
    mark = server.log_mark()

    result = run_load(
        server.host,
        server.port,
        lambda index: f"/ws?id={index}&allow={int(allowed[index])}",
        count=HANDSHAKES,
        concurrency=CONCURRENCY,
        protocol=server.variant.protocol,
        timeout=60.0,
        budget=120.0,
        leave_after_message=True,
    )

    failed = [exchange for exchange in result.exchanges if exchange.error is not None]
    assert not failed, f"{len(failed)} failed ({result.errors}), the first: {failed[:3]}"
    accepted_status = 200 if server.variant.protocol == "h2" else 101
    for exchange in result.exchanges:
        index = exchange.index
        if allowed[index]:
            assert exchange.status == accepted_status, exchange
            assert exchange.messages == [f"admitted {index}"], exchange
        elif server.variant.name in WITHOUT_EXTENSION:
            assert exchange.status == 403, exchange
            assert exchange.messages == [], exchange
        else:
            assert exchange.status == 403, exchange
            assert json.loads(exchange.body) == {"denied": str(index)}, exchange
    log = server.log(mark)
    reached = [int(found) for found in re.findall(r"^app (\d+)$", log, re.MULTILINE)]
    assert sorted(reached) == [index for index in range(HANDSHAKES) if allowed[index]]
    assert unexpected_errors(server.variant.name, log) == []

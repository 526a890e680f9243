"""One-time tickets: issued, redeemed once, bound to a subject and an origin, never logged.

In memory and on a real Redis in one process; then the measurement of the issue: uvicorn
``--workers 2`` on one Redis, 20 handshakes racing with one ticket, admitted once in total.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket

from asgi_ws_deny import WebSocketGuard
from asgi_ws_deny import tickets as tickets_module
from asgi_ws_deny.checks import InvalidCheckError
from asgi_ws_deny.contrib.starlette import add_exception_handlers, check_handshake
from asgi_ws_deny.testing import HandshakeResult, handshake
from asgi_ws_deny.tickets import SUBJECT_KEY, Ticket, TicketCheck, Tickets
from tests.checks_support import RedisServer, redis_server

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
def tickets(request: pytest.FixtureRequest) -> Tickets:
    if request.param == "memory":
        return Tickets()
    server: RedisServer = request.getfixturevalue("redis")
    return Tickets(server.url, namespace=f"test-{uuid.uuid4().hex}")


class Greeter:
    """Accepts the ``chat`` subprotocol and sends the subject it found in the scope."""

    def __init__(self) -> None:
        self.subjects: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.subjects.append(scope.get(SUBJECT_KEY))
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "chat", "headers": []})
        await send({"type": "websocket.send", "bytes": None, "text": f"hi {scope[SUBJECT_KEY]}"})
        await send({"type": "websocket.close", "code": 1000, "reason": ""})


async def present(
    check: TicketCheck,
    ticket: str | None,
    *,
    origin: str | None = None,
    path: str = "/ws",
) -> HandshakeResult:
    offered = ["chat"] + ([f"ticket.{ticket}"] if ticket is not None else [])
    headers = {"origin": origin} if origin is not None else {}
    return await handshake(
        WebSocketGuard(Greeter(), check), path, subprotocols=offered, headers=headers
    )


# --- Issue and redeem -------------------------------------------------------------------------


def test_a_ticket_is_redeemed_once(tickets: Tickets) -> None:
    ticket = tickets.issue("alice")
    assert len(ticket) == 43
    other = tickets.issue("alice")
    assert other != ticket
    assert tickets.redeem(ticket) == Ticket("alice", None)
    assert tickets.redeem(ticket) is None
    assert tickets.redeem(other) == Ticket("alice", None)


def test_unknown_and_malformed_tickets_redeem_nothing(tickets: Tickets) -> None:
    issued = tickets.issue("alice")
    for presented in ("x" * 43, "", issued[:-1], issued + "=", "é" * 43, "a b" * 14 + "c"):
        assert tickets.redeem(presented) is None
    assert tickets.redeem(issued) is not None


def test_a_ticket_is_bound_to_a_normalised_origin(tickets: Tickets) -> None:
    ticket = tickets.issue("bob", origin="HTTPS://App.Example.com:443")
    assert tickets.redeem(ticket) == Ticket("bob", "https://app.example.com")


@pytest.mark.parametrize(
    ("subject", "origin"),
    [("", None), (None, None), (5, None), ("a", "https://*.example.com"), ("a", "null"),
     ("a", "https://a.example/path"), ("a", b"https://a.example")],
)  # fmt: skip
def test_bad_issues_are_refused(tickets: Tickets, subject: Any, origin: Any) -> None:
    with pytest.raises(InvalidCheckError):
        tickets.issue(subject, origin=origin)


def test_an_expired_ticket_is_refused_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(tickets_module, "_clock", lambda: now[0])
    tickets = Tickets(ttl=30)
    ticket, later = tickets.issue("alice"), tickets.issue("alice")
    now[0] = 1029.9
    assert tickets.redeem(ticket) is not None
    now[0] = 1030.0
    assert tickets.redeem(later) is None


def test_memory_drops_expired_tickets_as_new_ones_come(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(tickets_module, "_clock", lambda: now[0])
    tickets = Tickets(ttl=10)
    old = [tickets.issue("a") for _ in range(3)]
    now[0] = 5.0
    live = tickets.issue("b")
    now[0] = 10.0  # the first three have expired, the fourth has not
    tickets.issue("c")
    assert len(tickets._store._entries) == 2  # type: ignore[union-attr]
    assert [tickets.redeem(ticket) for ticket in old] == [None] * 3
    assert tickets.redeem(live) == Ticket("b", None)


def test_redis_keeps_each_ticket_for_its_ttl_under_its_digest(redis: RedisServer) -> None:
    import redis as redis_py

    namespace = f"test-{uuid.uuid4().hex}"
    tickets = Tickets(redis.url, ttl=7, namespace=namespace)
    ticket = tickets.issue("alice", origin="https://app.example")
    client = redis_py.Redis.from_url(redis.url)
    keys = client.keys(f"{namespace}:*")
    assert len(keys) == 1
    assert 0 < client.pttl(keys[0]) <= 7000  # Redis drops it when the ttl runs out
    stored = client.get(keys[0])
    assert stored is not None
    # The store holds the ticket's digest, never the ticket: a copy of it yields nothing.
    assert ticket.encode() not in keys[0] + stored
    assert tickets.redeem(ticket) == Ticket("alice", "https://app.example")
    assert client.keys(f"{namespace}:*") == []


@pytest.mark.parametrize(
    "options",
    [{"ttl": 0}, {"ttl": 1.5}, {"ttl": True}, {"namespace": ""}, {"storage": "mongodb://x"},
     {"storage": 5}],
    ids=repr,
)  # fmt: skip
def test_bad_stores_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidCheckError):
        Tickets(**options)


def test_a_uri_password_never_shows() -> None:
    with pytest.raises(InvalidCheckError) as refused:
        Tickets("mongodb://user:hunter2@host")
    assert "hunter2" not in str(refused.value)
    assert "hunter2" not in repr(Tickets("redis://user:hunter2@127.0.0.1:1/0"))


# --- The check ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_ticket_admits_once_and_its_subject_reaches_the_app(
    tickets: Tickets, caplog: pytest.LogCaptureFixture
) -> None:
    check = TicketCheck(tickets)
    ticket = tickets.issue("alice")
    with caplog.at_level(logging.DEBUG):
        admitted = await present(check, ticket)
        reused = await present(check, ticket)
    assert admitted.accepted
    assert admitted.data == ("hi alice",)
    assert (reused.status, reused.json()) == (401, {"error": "invalid_ticket"})
    assert ticket not in caplog.text


@pytest.mark.anyio
async def test_refusals(tickets: Tickets, caplog: pytest.LogCaptureFixture) -> None:
    check = TicketCheck(tickets)
    bound = tickets.issue("bob", origin="https://app.example")
    first, second = tickets.issue("carol"), tickets.issue("carol")
    with caplog.at_level(logging.DEBUG):
        missing = await present(check, None)
        unknown = await present(check, "A" * 43)
        foreign = await present(check, bound, origin="https://evil.example")
        spent_by_foreign = await present(check, bound, origin="https://app.example")
        several = await handshake(
            WebSocketGuard(Greeter(), check),
            "/ws",
            subprotocols=["chat", f"ticket.{first}", f"ticket.{second}"],
        )
    assert (missing.status, missing.json()) == (401, {"error": "missing_ticket"})
    assert (unknown.status, unknown.json()) == (401, {"error": "invalid_ticket"})
    assert (foreign.status, foreign.json()) == (401, {"error": "invalid_ticket"})
    # A foreign page that got hold of a ticket spends it: the real page cannot use it either.
    assert (spent_by_foreign.status, spent_by_foreign.json()) == (401, {"error": "invalid_ticket"})
    assert (several.status, several.json()) == (400, {"error": "invalid_request"})
    for secret in (bound, first, second, "bob", "carol"):
        assert secret not in caplog.text


@pytest.mark.anyio
async def test_an_origin_bound_ticket_admits_its_page(tickets: Tickets) -> None:
    check = TicketCheck(tickets)
    ticket = tickets.issue("dave", origin="https://app.example")
    assert (await present(check, ticket, origin="https://APP.example:443")).data == ("hi dave",)
    no_origin = tickets.issue("dave", origin="https://app.example")
    assert (await present(check, no_origin)).status == 401


@pytest.mark.anyio
async def test_the_query_string_only_when_asked(tickets: Tickets) -> None:
    ticket = tickets.issue("erin")
    refused = await present(TicketCheck(tickets), None, path=f"/ws?ticket={ticket}")
    assert refused.status == 401
    check = TicketCheck(tickets, subprotocol=None, query="ticket")
    assert (await present(check, None, path=f"/ws?ticket={ticket}")).data == ("hi erin",)


def test_bad_check_options_are_refused() -> None:
    tickets = Tickets()
    for options in ({"subprotocol": None}, {"subprotocol": ""}, {"query": ""}):
        with pytest.raises(InvalidCheckError):
            TicketCheck(tickets, **options)
    with pytest.raises(InvalidCheckError):
        TicketCheck("memory://")  # type: ignore[arg-type]


# --- Two workers on one Redis -------------------------------------------------------------------

RACERS = 20
PID_HEADER = "x-worker-pid"


def race(host: str, port: int, ticket: str) -> list[tuple[int | None, int]]:
    """``RACERS`` handshakes with one ticket, released together: (status, worker pid) each."""
    from conformance.client import ws_handshake

    start = threading.Barrier(RACERS)

    def one(_: int) -> tuple[int | None, int]:
        start.wait(timeout=10)
        response = ws_handshake(
            host, port, "/ws", [("sec-websocket-protocol", f"chat, ticket.{ticket}")], timeout=10
        )
        pid = response.first(PID_HEADER)
        assert pid is not None, response.summary()
        return response.status, int(pid)

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


@pytest.mark.servers
def test_two_workers_admit_a_raced_ticket_once_in_all(redis: RedisServer) -> None:
    from conformance.servers import run_server
    from tests.test_ratelimit_workers import UVICORN_TWO_WORKERS, worker_pids

    namespace = f"workers-{uuid.uuid4().hex}"
    env = {"TICKETS_STORAGE": redis.url, "TICKETS_NAMESPACE": namespace}
    issuer = Tickets(redis.url, namespace=namespace)  # the application's HTTP side
    issued: list[str] = []
    served: Counter[tuple[int, int | None]] = Counter()
    with run_server(UVICORN_TWO_WORKERS, "tickets_app:app", app_dir=TESTS, env=env) as server:
        pids = worker_pids(server)
        rounds = 0
        while rounds < 5 or len({pid for pid, _ in served}) < 2:
            assert rounds < 30, f"after {rounds} races one worker answered them all: {served}"
            ticket = issuer.issue(f"user-{rounds}")
            issued.append(ticket)
            answers = race(server.host, server.port, ticket)
            statuses = Counter(status for status, _ in answers)
            assert statuses == {101: 1, 401: RACERS - 1}, answers
            served.update((pid, status) for status, pid in answers)
            rounds += 1
    print(f"{rounds} races of {RACERS}: {dict(served)}")
    assert {pid for pid, _ in served} == pids
    log = server.log()
    assert not [ticket for ticket in issued if ticket in log], "a ticket reached the server log"


# --- The example ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_example_issues_to_signed_in_users_and_admits_once() -> None:
    import httpx

    from examples.tickets import app

    page = {"authorization": "Bearer demo-token", "origin": "https://app.example"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        anonymous = await client.post("/ticket")
        issued = [await client.post("/ticket", headers=page) for _ in range(2)]
    assert anonymous.status_code == 401
    assert [answer.headers["cache-control"] for answer in issued] == ["no-store"] * 2
    stolen, ticket = (answer.json()["ticket"] for answer in issued)

    async def connect(ticket: str, origin: str) -> HandshakeResult:
        offered = ["chat", f"ticket.{ticket}"]
        return await handshake(app, "/ws", subprotocols=offered, headers={"origin": origin})

    assert (await connect(stolen, "https://evil.example")).status == 401
    admitted = await connect(ticket, "https://app.example")
    assert (admitted.accepted, admitted.subprotocol) == (True, "chat")
    assert admitted.data == ("hello alice",)
    assert (await connect(ticket, "https://app.example")).status == 401


def fastapi_app(tickets: Tickets) -> FastAPI:
    app = FastAPI()
    add_exception_handlers(app)

    @app.websocket("/ws", dependencies=[Depends(check_handshake(TicketCheck(tickets)))])
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="chat")
        await websocket.send_text(f"hi {websocket.scope[SUBJECT_KEY]}")
        await websocket.close()

    return app


@pytest.mark.anyio
async def test_a_fastapi_dependency_hands_the_subject_to_the_endpoint() -> None:
    """Outside the guard (`check_handshake`), the admission's scope entries still arrive."""
    tickets = Tickets()
    app = fastapi_app(tickets)
    ticket = tickets.issue("frank")
    offered = ["chat", f"ticket.{ticket}"]
    assert (await handshake(app, "/ws", subprotocols=offered)).data == ("hi frank",)
    assert (await handshake(app, "/ws", subprotocols=offered)).status == 401

"""ConnectionLimit: caps on connections open at once, leases released however a connection
ends, Redis leases shared by workers and freed within their ttl when a worker is killed.

In process with the memory store and a real Redis; then uvicorn ``--workers 2`` on one Redis:
concurrent handshakes never put more than the cap in, and ``kill -9`` of a worker frees its
leases within the ttl.
"""

from __future__ import annotations

import inspect
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_ws_deny import Denial, Denied, Handshake, WebSocketGuard
from asgi_ws_deny.checks import AllOf, ConnectionLimit, InvalidCheckError
from tests.checks_support import RedisServer, redis_server, view
from tests.helpers import Recorder, websocket_scope

TESTS = Path(__file__).parent
ACCEPT = {"type": "websocket.accept", "subprotocol": None, "headers": []}


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def limit(
    request: pytest.FixtureRequest, store: str, *args: Any, **options: Any
) -> ConnectionLimit:
    if store == "redis":
        server: RedisServer = request.getfixturevalue("redis")
        options.setdefault("namespace", f"test-{uuid.uuid4().hex}")
        return ConnectionLimit(*args, storage=server.url, **options)
    return ConnectionLimit(*args, **options)


STORES = ["memory", "redis"]


def decide(check: ConnectionLimit, handshake: Handshake) -> Any:
    """The check's verdict outside an event loop: a Redis store takes its lease in a worker
    thread, so the check answers with an awaitable there."""
    verdict = check(handshake)
    if inspect.isawaitable(verdict):

        async def awaited() -> Any:
            return await verdict

        return anyio.run(awaited)
    return verdict


def by_user(handshake: Handshake) -> str | None:
    return handshake.headers.get("x-user")


def user(name: str) -> Handshake:
    return view([("x-user", name)])


# --- Caps -----------------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_a_key_holds_at_most_its_cap(store: str, request: pytest.FixtureRequest) -> None:
    check = limit(request, store, 2, key=by_user, retry_after=7)
    first, second = decide(check, user("alice")), decide(check, user("alice"))
    refused = decide(check, user("alice"))
    assert isinstance(refused, Denial)
    assert refused.status == 429
    assert dict(refused.headers)[b"retry-after"] == b"7"
    assert refused.body == b'{"error":"too_many_connections","retry_after":7}'
    other = decide(check, user("bob"))  # another key has its own cap
    assert other is not None
    assert not isinstance(other, Denial)
    anyio.run(other.end)
    assert check.open_connections("alice") == 2
    anyio.run(first.end)  # type: ignore[union-attr]
    assert check.open_connections("alice") == 1
    third = decide(check, user("alice"))
    assert third is not None
    assert not isinstance(third, Denial)
    for admission in (second, third):
        anyio.run(admission.end)  # type: ignore[union-attr]
    assert check.open_connections("alice") == 0


@pytest.mark.parametrize("store", STORES)
def test_the_total_cap_refuses_with_503(store: str, request: pytest.FixtureRequest) -> None:
    check = limit(request, store, None, key=by_user, max_total=2)
    admitted = [decide(check, user("a")), decide(check, user("b"))]
    refused = decide(check, user("c"))
    assert isinstance(refused, Denial)
    assert refused.status == 503
    assert refused.body == b'{"error":"at_capacity","retry_after":5}'
    assert check.open_connections() == 2
    for admission in admitted:
        anyio.run(admission.end)  # type: ignore[union-attr]
    assert check.open_connections() == 0


def test_a_key_of_none_is_exempt() -> None:
    check = ConnectionLimit(1, key=lambda handshake: None)
    assert [decide(check, user("a")) for _ in range(3)] == [None, None, None]


@pytest.mark.parametrize(
    "options",
    [{"max_connections": None}, {"max_connections": 0}, {"max_connections": True},
     {"max_connections": 1, "max_total": 0}, {"max_connections": 1, "ttl": 0},
     {"max_connections": 1, "ttl": float("nan")}, {"max_connections": 1, "retry_after": 0},
     {"max_connections": 1, "namespace": ""}, {"max_connections": 1, "key": "x"},
     {"max_connections": 1, "storage": "mongodb://u:hunter2@h"}],
    ids=repr,
)  # fmt: skip
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidCheckError) as refused:
        ConnectionLimit(**options)
    assert "hunter2" not in str(refused.value)


# --- Released however the connection ends ----------------------------------------------------


async def connect() -> dict[str, Any]:
    return {"type": "websocket.connect"}


async def closes(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(ACCEPT)
    await send({"type": "websocket.close", "code": 1000, "reason": ""})


async def client_leaves(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(ACCEPT)
    raise ConnectionResetError("client left")  # as a server's send raises it


async def raises(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(ACCEPT)
    raise LookupError("app error")


async def denies(scope: Any, receive: Any, send: Any) -> None:
    raise Denied(403)


ENDINGS = [
    pytest.param(closes, None, id="close"),
    pytest.param(client_leaves, ConnectionResetError, id="disconnect"),
    pytest.param(raises, LookupError, id="app-error"),
    pytest.param(denies, None, id="denial-after-all"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("app", "raised"), ENDINGS)
@pytest.mark.parametrize("store", STORES)
async def test_the_lease_is_given_back_however_the_connection_ends(
    app: Any, raised: type[Exception] | None, store: str, request: pytest.FixtureRequest
) -> None:
    check = limit(request, store, 1)
    guard = WebSocketGuard(app, check)
    for _ in range(2):  # with a cap of 1, the second connection needs the first one's lease
        if raised is None:
            await guard(websocket_scope(), connect, Recorder())
        else:
            with pytest.raises(raised):
                await guard(websocket_scope(), connect, Recorder())
        assert check.open_connections("127.0.0.1") == 0


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_the_lease_is_given_back_on_cancellation(
    store: str, request: pytest.FixtureRequest
) -> None:
    check = limit(request, store, 1)
    started = anyio.Event()

    async def waits(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        started.set()
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(WebSocketGuard(waits, check), websocket_scope(), connect, Recorder())
        await started.wait()
        assert check.open_connections("127.0.0.1") == 1
        tasks.cancel_scope.cancel()
    assert check.open_connections("127.0.0.1") == 0


@pytest.mark.anyio
async def test_a_later_refusal_gives_the_lease_back() -> None:
    check = ConnectionLimit(1)
    server = Recorder()
    guard = WebSocketGuard(closes, AllOf(check, lambda handshake: Denial(401)))
    await guard(websocket_scope(), connect, server)
    assert server.messages[0]["status"] == 401
    assert check.open_connections("127.0.0.1") == 0


# --- Redis leases: refreshed on a timer, expiring without it -----------------------------------


def test_a_live_lease_outlives_its_ttl_and_a_stopped_one_expires(redis: RedisServer) -> None:
    ttl = 0.6
    check = ConnectionLimit(1, storage=redis.url, ttl=ttl, namespace=f"t-{uuid.uuid4().hex}")
    admission = decide(check, user("a"))
    assert not isinstance(admission, Denial)
    held_until = time.monotonic() + 2.5 * ttl
    while time.monotonic() < held_until:  # refreshed every ttl / 3 by the timer thread
        assert check.open_connections("127.0.0.1") == 1
        assert isinstance(decide(check, user("a")), Denial)
    check._leases.stop()  # type: ignore[union-attr]  # as a killed process's timer stops
    stopped = time.monotonic()
    while check.open_connections("127.0.0.1"):
        assert time.monotonic() - stopped < ttl + 0.5, "the lease did not expire within its ttl"
    again = decide(check, user("a"))
    assert again is not None
    assert not isinstance(again, Denial)
    anyio.run(again.end)


def test_the_timer_runs_only_while_leases_live(redis: RedisServer) -> None:
    check = ConnectionLimit(1, storage=redis.url, ttl=0.3, namespace=f"t-{uuid.uuid4().hex}")
    leases = check._leases
    admission = decide(check, user("a"))
    assert not isinstance(admission, Denial)
    assert admission is not None
    timer = leases._timer  # type: ignore[union-attr]
    assert timer is not None
    assert timer.is_alive()
    anyio.run(admission.end)
    timer.join(timeout=5)  # ends by itself once no lease lives
    assert not timer.is_alive()


# --- Two workers on one Redis ---------------------------------------------------------------

PID_HEADER = "x-worker-pid"
TTL = 2.0


@pytest.fixture(scope="module")
def workers(redis: RedisServer) -> Iterator[tuple[Any, str]]:
    from conformance.servers import run_server
    from tests.test_ratelimit_workers import UVICORN_TWO_WORKERS, worker_pids

    namespace = f"workers-{uuid.uuid4().hex}"
    env = {"CAPS_STORAGE": redis.url, "CAPS_NAMESPACE": namespace, "CAPS_TTL": str(TTL)}
    with run_server(UVICORN_TWO_WORKERS, "connection_limit_app:app", app_dir=TESTS, env=env) as srv:
        assert len(worker_pids(srv)) == 2
        yield srv, namespace


def open_many(host: str, port: int, path: str, count: int) -> list[tuple[Any, int | None, int]]:
    """``count`` handshakes released together; each (open connection, status, worker pid)."""
    from conformance.client import WireConnection

    start = threading.Barrier(count)

    def one(_: int) -> tuple[Any, int | None, int]:
        connection = WireConnection(host, port, timeout=10)
        start.wait(timeout=10)
        response = connection.handshake(path)
        pid = response.first(PID_HEADER)
        assert pid is not None, response.summary()
        return connection, response.status, int(pid)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.servers
def test_no_key_ever_holds_more_than_its_cap(workers: tuple[Any, str], redis: RedisServer) -> None:
    server, namespace = workers
    counter = ConnectionLimit(2, storage=redis.url, namespace=f"{namespace}-two")
    admitted_by: Counter[int] = Counter()
    rounds = 0
    while rounds < 3 or len(admitted_by) < 2:
        assert rounds < 20, f"one worker admitted every connection: {admitted_by}"
        answers = open_many(server.host, server.port, "/two?user=carol", 8)
        try:
            assert Counter(status for _, status, _ in answers) == {101: 2, 429: 6}, answers
            assert counter.open_connections("carol") == 2
            admitted_by.update(pid for _, status, pid in answers if status == 101)
        finally:
            for connection, _, _ in answers:
                connection.close()
        deadline = time.monotonic() + 5
        while counter.open_connections("carol"):  # released as the server sees the closes
            assert time.monotonic() < deadline, "the leases were not given back on close"
        rounds += 1
    print(f"{rounds} rounds of 8 concurrent handshakes, cap 2: admitted by {dict(admitted_by)}")


@pytest.mark.servers
def test_a_killed_workers_leases_are_free_within_the_ttl(workers: tuple[Any, str]) -> None:
    from conformance.client import WireConnection, ws_handshake

    server, _ = workers
    path = f"/one?user=kill-{uuid.uuid4().hex}"
    holder = WireConnection(server.host, server.port, timeout=10)
    with holder:
        response = holder.handshake(path)
        assert response.status == 101, response.summary()
        pid = int(response.first(PID_HEADER) or 0)
        # While its worker lives the lease outlives its ttl: the timer refreshes it.
        alive_until = time.monotonic() + 1.5 * TTL
        while time.monotonic() < alive_until:
            assert ws_handshake(server.host, server.port, path, timeout=5).status == 429
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        assert ws_handshake(server.host, server.port, path, timeout=5).status == 429
        while True:
            status = ws_handshake(server.host, server.port, path, timeout=5).status
            waited = time.monotonic() - killed
            if status == 101:
                break
            assert status == 429
            assert waited < TTL + 1.0, "the killed worker's lease outlived its ttl"
    print(f"the killed worker's lease was free {waited:.2f} s after kill -9 (ttl {TTL} s)")


# --- The example ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_example_allows_one_session_per_user() -> None:
    from asgi_ws_deny.testing import handshake
    from examples.connection_limit import app, one_session_per_user

    lease = one_session_per_user(user("alice"))  # alice already has a connection open
    assert not isinstance(lease, Denial)
    refused = await handshake(app, "/ws", headers={"x-user": "alice"})
    assert (refused.status, refused.header("retry-after")) == (429, b"5")
    served = await handshake(app, "/ws", headers={"x-user": "bob"}, messages=["hi"])
    assert served.data == ("hello bob", "hi")
    assert one_session_per_user.open_connections("bob") == 0  # given back when bob left
    assert lease is not None
    await lease.end()
    assert (await handshake(app, "/ws", headers={"x-user": "alice"})).accepted

"""RateLimitCheck in one process: the in-memory store, a real Redis, asyncio and trio.

The cross-worker test (uvicorn ``--workers 2`` against one Redis) is test_ratelimit_workers.py.
Each test spends its own namespace, so the counts of two tests never meet.
"""

from __future__ import annotations

import gc
import logging
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from asgi_ws_deny import Denial, Handshake, WebSocketGuard
from asgi_ws_deny.checks import (
    InvalidCheckError,
    RateLimitCheck,
    client_host,
    client_network,
    forwarded_client,
    network_key,
)
from asgi_ws_deny.testing import HandshakeResult, handshake
from tests.checks_support import Endpoint, RedisServer, free_port, hung_redis, redis_server, view

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex}"


async def attempt(
    check: Any, client: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> HandshakeResult:
    return await handshake(
        WebSocketGuard(Endpoint(), check), "/ws", headers=headers or {}, client=(client, 50000)
    )


async def statuses(check: Any, count: int, client: str = "127.0.0.1") -> list[int | None]:
    return [(await attempt(check, client)).status for _ in range(count)]


# --- In memory ----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["moving-window", "fixed-window", "sliding-window-counter"])
async def test_the_limit_admits_exactly_n(strategy: Any) -> None:
    check = RateLimitCheck("3/hour", strategy=strategy)
    assert await statuses(check, 5) == [101, 101, 101, 429, 429]


async def test_a_refusal_is_429_with_retry_after() -> None:
    check = RateLimitCheck("1/hour")
    await attempt(check)
    refused = await attempt(check)
    assert refused.status == 429
    retry = refused.header("retry-after")
    assert retry is not None
    # The moving window reopens an hour after the first handshake, which was just now.
    assert 3590 <= int(retry) <= 3600
    assert refused.header("content-type") == b"application/json"
    assert refused.json() == {"error": "rate_limited", "retry_after": int(retry)}


def test_retry_after_is_never_zero() -> None:
    check = RateLimitCheck("1/second")
    handshake_view = view()
    assert check(handshake_view) is None
    # A window that has (all but) reopened still says 1, not 0.
    denial = check._refuse(handshake_view, reset_time=0.0)
    assert isinstance(denial, Denial)
    assert dict(denial.headers)[b"retry-after"] == b"1"


async def test_clients_have_their_own_budgets() -> None:
    check = RateLimitCheck("1/hour")
    assert await statuses(check, 2, "192.0.2.1") == [101, 429]
    assert await statuses(check, 2, "192.0.2.2") == [101, 429]
    assert await statuses(check, 1, "2001:db8::1") == [101]


async def test_a_key_function_chooses_the_budget() -> None:
    def by_user(handshake: Handshake) -> str | None:
        return handshake.headers.get("x-user")

    check = RateLimitCheck("1/hour", key=by_user)
    assert (await attempt(check, headers={"x-user": "ann"})).status == 101
    assert (await attempt(check, headers={"x-user": "ann"}, client="192.0.2.9")).status == 429
    assert (await attempt(check, headers={"x-user": "bob"})).status == 101
    # No key: exempt, however many.
    assert await statuses(check, 3) == [101, 101, 101]


async def test_a_key_that_is_not_a_str_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    check = RateLimitCheck("1/hour", key=lambda handshake: 42)  # type: ignore[arg-type,return-value]
    assert (await attempt(check)).status == 500
    assert "returned int, not str or None" in caplog.text


@pytest.mark.parametrize(
    ("client", "key"),
    [
        (("2001:db8:1:2:aaaa::1", 1234), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb:cccc:dddd:eeee", 1234), "2001:db8:1:2::/64"),
        (("2001:db8:1:3::1", 1234), "2001:db8:1:3::/64"),
        (("198.51.100.7", 1234), "198.51.100.7"),
        (("::ffff:198.51.100.7", 1234), "::ffff:198.51.100.7"),
        (("/run/app.sock", None), "/run/app.sock"),
        (None, "unknown"),
    ],
    ids=["v6", "v6-same-64", "v6-other-64", "v4", "v4-mapped", "unix", "none"],
)
def test_client_network_keys_ipv6_on_its_64(client: Any, key: str) -> None:
    assert client_network(view(client=client)) == key


@pytest.mark.parametrize(
    ("prefix", "client", "key"),
    [
        (48, "2001:db8:1:2::1", "2001:db8:1::/48"),
        (56, "2001:db8:1:2ff::1", "2001:db8:1:200::/56"),
        (64, "2001:db8:1:2::1", "2001:db8:1:2::/64"),
        (128, "2001:db8::1", "2001:db8::1/128"),
        (56, "198.51.100.7", "198.51.100.7"),
        (56, "::ffff:198.51.100.7", "::ffff:198.51.100.7"),
    ],
)
def test_network_key_takes_the_prefix(prefix: int, client: str, key: str) -> None:
    assert network_key(prefix)(view(client=(client, 1))) == key


@pytest.mark.parametrize("prefix", [0, 129, True, "56"])
def test_network_key_refuses_a_bad_prefix(prefix: Any) -> None:
    with pytest.raises(InvalidCheckError, match="ipv6_prefix"):
        network_key(prefix)


PROXIES = ["10.0.0.0/8", "192.0.2.7", "2001:db8:ffff::/48"]

# (id, peer, header, values, key)
FORWARDED: list[tuple[str, str, str, list[str], str]] = [
    ("direct-client-ignored", "198.51.100.1", "x-forwarded-for", ["203.0.113.9"], "198.51.100.1"),
    ("one-proxy", "10.1.1.1", "x-forwarded-for", ["203.0.113.9"], "203.0.113.9"),
    (
        "client-spoofs-left",
        "10.1.1.1",
        "x-forwarded-for",
        ["1.1.1.1, 203.0.113.9"],
        "203.0.113.9",
    ),
    (
        "two-proxies",
        "10.1.1.1",
        "x-forwarded-for",
        ["6.6.6.6, 203.0.113.9, 192.0.2.7"],
        "203.0.113.9",
    ),
    (
        "repeated-headers",
        "10.1.1.1",
        "x-forwarded-for",
        ["6.6.6.6", "203.0.113.9, 10.2.2.2"],
        "203.0.113.9",
    ),
    ("with-port", "10.1.1.1", "x-forwarded-for", ["203.0.113.9:5555"], "203.0.113.9"),
    ("all-trusted", "10.1.1.1", "x-forwarded-for", ["10.3.3.3, 10.4.4.4"], "10.3.3.3"),
    ("no-header", "10.1.1.1", "x-forwarded-for", [], "10.1.1.1"),
    ("v6-proxy", "2001:db8:ffff::1", "x-forwarded-for", ["2001:db8::9"], "2001:db8::9"),
    ("v4-mapped-proxy", "::ffff:10.1.1.1", "x-forwarded-for", ["203.0.113.9"], "203.0.113.9"),
    ("forwarded", "10.1.1.1", "forwarded", ["for=203.0.113.9;proto=https"], "203.0.113.9"),
    (
        "forwarded-chain",
        "10.1.1.1",
        "forwarded",
        ['for=6.6.6.6, for="[2001:db8::9]:4711";by=x, for=192.0.2.7'],
        "2001:db8::9",
    ),
    ("forwarded-case", "10.1.1.1", "forwarded", ['For="203.0.113.9:80"'], "203.0.113.9"),
    ("forwarded-quoted-comma", "10.1.1.1", "forwarded", ['for=9.9.9.9;x="a,b"'], "9.9.9.9"),
    ("forwarded-obfuscated", "10.1.1.1", "forwarded", ["for=_hidden"], "_hidden"),
    ("forwarded-unknown", "10.1.1.1", "forwarded", ["for=unknown"], "unknown"),
    ("forwarded-ignored-from-client", "6.6.6.6", "forwarded", ["for=1.1.1.1"], "6.6.6.6"),
]


@pytest.mark.parametrize(
    ("peer", "header", "values", "key"),
    [case[1:] for case in FORWARDED],
    ids=[case[0] for case in FORWARDED],
)
def test_forwarded_client_reads_only_what_trusted_proxies_wrote(
    peer: str, header: Any, values: list[str], key: str
) -> None:
    headers = [(header, value) for value in values]
    assert forwarded_client(PROXIES, header=header)(view(headers, client=(peer, 1))) == key


def test_forwarded_client_keys_ipv6_on_a_network() -> None:
    key = forwarded_client(PROXIES, ipv6_prefix=56)
    headers = [("x-forwarded-for", "2001:db8:1:2ff::1")]
    assert key(view(headers, client=("10.0.0.1", 1))) == "2001:db8:1:200::/56"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([],), {}, "needs the trusted proxies"),
        ((["proxy.internal"],), {}, "'proxy.internal' is not an IP address"),
        ((["10.0.0.0/8"],), {"header": "x-real-ip"}, "header must be"),
        ((["10.0.0.0/8"],), {"ipv6_prefix": 0}, "ipv6_prefix"),
    ],
)
def test_forwarded_client_configuration(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCheckError, match=message):
        forwarded_client(*args, **kwargs)


async def test_forwarded_client_spends_the_budget_of_the_real_client() -> None:
    check = RateLimitCheck("1/hour", key=forwarded_client(["10.0.0.0/8"]))
    proxy = "10.0.0.1"
    first = await attempt(check, proxy, {"x-forwarded-for": "1.1.1.1, 203.0.113.9"})
    spoofed = await attempt(check, proxy, {"x-forwarded-for": "2.2.2.2, 203.0.113.9"})
    other = await attempt(check, proxy, {"x-forwarded-for": "203.0.113.10"})
    assert (first.status, spoofed.status, other.status) == (101, 429, 101)


async def test_client_network_shares_the_budget_of_a_64(namespace: str) -> None:
    check = RateLimitCheck("1/minute", key=client_network, namespace=namespace)
    first = await attempt(check, "2001:db8:1:2::1")
    second = await attempt(check, "2001:db8:1:2::2")
    other = await attempt(check, "2001:db8:1:3::1")
    assert (first.accepted, second.status, other.accepted) == (True, 429, True)


def test_client_host_is_the_default_key() -> None:
    assert client_host(view(client=("198.51.100.7", 1234))) == "198.51.100.7"
    assert client_host(view(client=None)) == "unknown"


async def test_namespaces_keep_checks_apart() -> None:
    from limits.storage import MemoryStorage

    storage = MemoryStorage()
    chat = RateLimitCheck("1/hour", storage=storage, namespace="chat")
    feed = RateLimitCheck("1/hour", storage=storage, namespace="feed")
    chat_again = RateLimitCheck("1/hour", storage=storage, namespace="chat")
    assert (await attempt(chat)).status == 101
    assert (await attempt(feed)).status == 101
    assert (await attempt(chat_again)).status == 429


async def test_a_limits_item_is_accepted() -> None:
    from limits import RateLimitItemPerHour

    check = RateLimitCheck(RateLimitItemPerHour(2))
    assert await statuses(check, 3) == [101, 101, 429]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("often",), {}, "couldn't parse"),
        (("1/minute;10/hour",), {}, "holds 2 rates"),
        ((10,), {}, "a str or a limits.RateLimitItem"),
        (("1/minute",), {"strategy": "token-bucket"}, "strategy must be one of"),
        (("1/minute",), {"storage": "nowhere://"}, "unknown storage scheme"),
        (("1/minute",), {"storage": object()}, "a URI or a limits storage"),
        (("1/minute",), {"key": "ip"}, "key must be callable"),
        (("1/minute",), {"namespace": ""}, "namespace must be"),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_configuration(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCheckError, match=message):
        RateLimitCheck(*args, **kwargs)


def test_without_limits_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "limits", None)
    with pytest.raises(ImportError, match=r"asgi-ws-deny\[ratelimit\]"):
        RateLimitCheck("1/minute")


@pytest.mark.parametrize(
    "uri",
    ["rediss+x://user:hunter2@db.internal:6379", "nowhere://:hunter2@127.0.0.1:1/0"],
)
def test_a_bad_storage_uri_is_refused_without_its_password(uri: str) -> None:
    with pytest.raises(InvalidCheckError, match="unknown storage scheme") as refused:
        RateLimitCheck("1/minute", storage=uri)
    assert "hunter2" not in str(refused.value)
    assert ":***@" in str(refused.value)


def test_repr_never_shows_the_storage_uri() -> None:
    check = RateLimitCheck("5/minute", storage="redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(check)
    assert (
        repr(check)
        == "RateLimitCheck('5 per 1 minute', storage=RedisStorage, namespace='handshake')"
    )


# --- The async storages of limits ---------------------------------------------------------------


# Under trio, limits leaves behind the expiry coroutine it could not schedule; Python reports it
# as "never awaited" when it is collected, which this test forces before it ends.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_async_storage_works_under_asyncio_only(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    check = RateLimitCheck("2/hour", storage="async+memory://")
    if anyio_backend == "asyncio":
        assert await statuses(check, 3) == [101, 101, 429]
    else:
        # Measured, not assumed: limits builds its async storages on asyncio's locks and tasks,
        # so under trio the check raises and the guard fails closed, naming the way out.
        assert (await attempt(check)).status == 500
        assert "run under asyncio only" in caplog.text
        assert "sync storage" in caplog.text
        caplog.clear()
        del check
        gc.collect()


# redis-py's asyncio client is asyncio-only; the trio side is the test above.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_redis_under_asyncio(redis: RedisServer, namespace: str) -> None:
    from limits.storage import storage_from_string

    # limits' default async Redis client is coredis; redis-py's asyncio client is chosen here.
    storage: Any = storage_from_string(
        "async+" + redis.url, implementation="redispy", socket_timeout=2
    )
    check = RateLimitCheck("2/hour", storage=storage, namespace=namespace)
    try:
        if check._async_limiter is None:
            pytest.fail("an async storage must give an async check")
        result = check(view())
        assert result is not None
        assert not isinstance(result, Denial)  # an awaitable
        assert await result is None
        assert await statuses(check, 2) == [101, 429]
    finally:
        # The client's connections belong to this test's event loop.
        await storage.bridge.storage.aclose()


# --- A real Redis, through the sync storage (asyncio and trio alike) ---------------------------


async def test_redis_admits_exactly_n(redis: RedisServer, namespace: str) -> None:
    check = RateLimitCheck("3/hour", storage=redis.url, namespace=namespace)
    assert await statuses(check, 5) == [101, 101, 101, 429, 429]
    refused = await attempt(check)
    retry = refused.header("retry-after")
    assert retry is not None
    assert 3590 <= int(retry) <= 3600


@pytest.mark.parametrize("strategy", ["moving-window", "fixed-window", "sliding-window-counter"])
async def test_two_checks_on_one_redis_share_the_count(
    redis: RedisServer, namespace: str, strategy: Any
) -> None:
    # Two storages, two connection pools: what two workers would have.
    first = RateLimitCheck("4/hour", storage=redis.url, namespace=namespace, strategy=strategy)
    second = RateLimitCheck("4/hour", storage=redis.url, namespace=namespace, strategy=strategy)
    seen = []
    for check in (first, second, first, second, first, second):
        seen.append((await attempt(check)).status)
    assert seen == [101, 101, 101, 101, 429, 429]


async def test_memory_storages_do_not_share(namespace: str) -> None:
    # The control for the test above: what each worker would count alone.
    first = RateLimitCheck("2/hour", namespace=namespace)
    second = RateLimitCheck("2/hour", namespace=namespace)
    seen = [(await attempt(check)).status for check in (first, second, first, second)]
    assert seen == [101, 101, 101, 101]


async def test_redis_down_is_answered_503_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    url = f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=1&socket_timeout=1"
    check = RateLimitCheck("3/hour", storage=url)
    result = await attempt(check)
    assert result.status == 503
    assert result.header("retry-after") == b"5"  # the breaker's cooldown
    assert result.json() == {"error": "rate_limit_unavailable", "retry_after": 5}
    assert "ConnectionError" in caplog.text


async def test_on_error_allow_admits_while_the_storage_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from conformance.servers import free_port

    caplog.set_level(logging.WARNING)
    url = f"redis://127.0.0.1:{free_port()}/0"
    check = RateLimitCheck("1/hour", storage=url, on_error="allow")
    assert await statuses(check, 3) == [101, 101, 101]
    # Logged once, when the breaker opened; the two after it made no storage call.
    assert caplog.text.count("admitting handshakes without it") == 1


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("redis://127.0.0.1:1/0", (0.5, 0.5)),
        ("redis://127.0.0.1:1/0?socket_timeout=2", (2.0, 0.5)),
        ("redis://127.0.0.1:1/0?socket_timeout=2&socket_connect_timeout=3", (2.0, 3.0)),
    ],
    ids=["none-given", "one-given", "both-given"],
)
def test_a_redis_uri_always_has_socket_timeouts(uri: str, expected: tuple[float, float]) -> None:
    check = RateLimitCheck("1/hour", storage=uri)
    options = check.storage.storage.connection_pool.connection_kwargs  # type: ignore[union-attr]
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout must be"),
        ({"cooldown": -1}, "cooldown must be"),
        ({"timeout": True}, "timeout must be"),
        ({"on_error": "ignore"}, "on_error must be"),
    ],
    ids=["timeout-0", "cooldown-negative", "timeout-bool", "on-error"],
)
def test_failure_options_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCheckError, match=message):
        RateLimitCheck("1/hour", **kwargs)


# --- A Redis that accepts and never answers ------------------------------------------------------


async def test_a_hung_redis_never_blocks_the_event_loop(caplog: pytest.LogCaptureFixture) -> None:
    """While a handshake waits on a Redis that never answers, another one is served at once;
    the waiting one gets 503 at the check's timeout, and the breaker then spares the storage."""
    import anyio

    caplog.set_level(logging.WARNING)
    results: dict[str, HandshakeResult] = {}
    with hung_redis() as server:
        # socket_timeout 30 s: only the check's own timeout can end the wait.
        check = RateLimitCheck(
            "5/hour", storage=server.url + "?socket_timeout=30", timeout=2, cooldown=60
        )

        async def hung() -> None:
            results["hung"] = await attempt(check)

        async with anyio.create_task_group() as group:
            group.start_soon(hung)
            assert await anyio.to_thread.run_sync(server.asked.wait, 10)
            other = await attempt(RateLimitCheck("5/hour"))
            # Served while the first handshake still waits on Redis: the loop was free.
            assert other.accepted
            assert "hung" not in results
        assert results["hung"].status == 503
        assert results["hung"].header("retry-after") is not None
        assert "TimeoutError" in caplog.text
        # The breaker is open: an answer without asking Redis again.
        asked = server.requests
        again = await attempt(check)
        assert again.status == 503
        assert server.requests == asked


def test_the_breaker_probes_once_per_cooldown(monkeypatch: pytest.MonkeyPatch) -> None:
    from asgi_ws_deny.checks import _ratelimit

    now = [1000.0]
    monkeypatch.setattr(_ratelimit.time, "monotonic", lambda: now[0])
    breaker = _ratelimit._Breaker(5.0)
    assert breaker.closed()
    assert breaker.failed()  # newly open: reported
    assert not breaker.closed()
    assert breaker.remaining() == 5.0
    assert not breaker.failed()  # a handshake that was waiting beside it: not reported again
    now[0] += 5.0
    assert breaker.closed()  # the probe
    assert not breaker.closed()  # the others fail fast while it runs
    assert breaker.failed()  # the probe failed: reported, open for another cooldown
    now[0] += 5.0
    assert breaker.closed()
    breaker.succeeded()
    assert breaker.closed()
    assert breaker.closed()

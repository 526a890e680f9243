"""The checks that keep state in Redis never block the event loop: a Redis that accepts and
never answers holds a worker thread, while other handshakes are served at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from asgi_ws_deny import WebSocketGuard
from asgi_ws_deny.checks import ConnectionLimit
from asgi_ws_deny.testing import HandshakeResult, handshake
from asgi_ws_deny.tickets import TicketCheck, Tickets
from tests.checks_support import Endpoint, hung_redis

pytestmark = pytest.mark.anyio


def connection_limit(url: str) -> Any:
    return ConnectionLimit(1, storage=url)


def ticket_check(url: str) -> Any:
    return TicketCheck(Tickets(storage=url))


@pytest.mark.parametrize(
    "make_check",
    [
        pytest.param(connection_limit, id="connection-limit"),
        pytest.param(ticket_check, id="ticket"),
    ],
)
async def test_a_hung_redis_holds_a_thread_not_the_loop(make_check: Callable[[str], Any]) -> None:
    results: dict[str, HandshakeResult] = {}
    with hung_redis() as server:
        guard = WebSocketGuard(Endpoint(), make_check(server.url), check_timeout=5)
        # A ticket check only asks the store for a ticket it was shown.
        subprotocols = ["ticket.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]

        async def hung() -> None:
            results["hung"] = await handshake(guard, "/ws", subprotocols=subprotocols)

        async with anyio.create_task_group() as group:
            group.start_soon(hung)
            assert await anyio.to_thread.run_sync(server.asked.wait, 10)
            other = await handshake(WebSocketGuard(Endpoint()), "/ws")
            # Served while the first handshake still waits on Redis: the loop was free.
            assert other.accepted
            assert "hung" not in results
        # The store's own timeout ended the wait: the check failed closed.
        assert results["hung"].status == 500

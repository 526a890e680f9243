"""The guard's fail-closed rule as a property: admitted only when the check returned None."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_ws_deny import Denial, Denied, Handshake, WebSocketGuard
from asgi_ws_deny.testing import handshake

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Outcome:
    """What a generated check does: return ``value`` or raise it, synchronously or not."""

    value: Any
    raises: bool
    is_async: bool

    def check(self) -> Any:
        def sync_check(handshake: Handshake) -> Any:
            if self.raises:
                raise self.value
            return self.value

        async def async_check(handshake: Handshake) -> Any:
            return sync_check(handshake)

        return async_check if self.is_async else sync_check

    @property
    def admits(self) -> bool:
        return self.value is None and not self.raises


statuses = st.integers(200, 599).filter(lambda s: s not in (204, 205, 304))
denials = st.builds(Denial, statuses, body=st.binary(max_size=8))
# Returned values: None, denials, and everything a careless check might return instead.
returned = st.one_of(
    st.none(),
    denials,
    st.booleans(),
    st.integers(),
    st.text(max_size=3),
    st.just(()),
    st.builds(Denied, statuses),
    st.builds(object),
)
raised = st.one_of(
    st.builds(Denied, statuses),
    st.builds(RuntimeError, st.text(max_size=5)),
    st.builds(KeyError, st.text(max_size=5)),
    st.builds(ValueError),
    st.builds(AssertionError),
)
outcomes = st.one_of(
    st.builds(Outcome, returned, st.just(False), st.booleans()),
    st.builds(Outcome, raised, st.just(True), st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(
    outcome=outcomes,
    extension=st.booleans(),
    policy=st.sampled_from(["never", "origin", "always"]),
    origin=st.booleans(),
)
async def test_admitted_only_when_the_check_returned_none(
    outcome: Outcome, extension: bool, policy: Any, origin: bool
) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append("called")
        await receive()
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        await send({"type": "websocket.send", "bytes": None, "text": "secret data"})

    guard = WebSocketGuard(app, outcome.check(), browser_policy=policy)
    headers = [("origin", "http://127.0.0.1")] if origin else []
    result = await handshake(guard, extension=extension, headers=headers)

    assert bool(calls) is outcome.admits
    assert ("secret data" in result.data) is outcome.admits
    if outcome.admits:
        assert (result.accepted, result.close_code) == (True, None)
    elif policy == "always" or (policy == "origin" and origin):
        # Browser-visible: accepted only to be closed at once, with a 4xxx code or 1008.
        assert result.accepted
        assert result.data == ()
        assert result.close_code is not None
        assert result.close_code == 1008 or 4200 <= result.close_code <= 4599
    else:
        assert not result.accepted
        assert result.status is not None
        assert result.status >= 200

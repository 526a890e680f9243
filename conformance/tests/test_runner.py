"""A crashed server is a result, and is started again for the next case."""

from __future__ import annotations

import os

import pytest

from conformance.cases import case_by_id
from conformance.runner import ServerHandle
from conformance.servers import VARIANTS, Variant

pytestmark = pytest.mark.selftest


def test_a_crash_is_reported_and_the_next_case_gets_a_fresh_server() -> None:
    variant = VARIANTS["granian"]
    if variant.missing():
        pytest.skip("granian is not installed")
    handle = ServerHandle(variant)
    try:
        crashed = handle.run(case_by_id("2.3"))  # two set-cookie headers panic granian 2.8
        after = handle.run(case_by_id("3.1"))
    finally:
        handle.close()
    assert crashed.observation.cell == "crash"
    assert "panicked" in crashed.log
    assert after.observation.cell == "403"
    assert after.restarted
    assert "restarted" in after.observation.detail
    assert (handle.starts, handle.crashes) == (2, 1)


def test_a_missing_package_is_a_result() -> None:
    ghost = Variant("ghost", ("{python}", "{app}", "{port}"), requires=("no-such-dist-x",))
    handle = ServerHandle(ghost)
    try:
        result = handle.run(case_by_id("3.1"))
    finally:
        handle.close()
    assert result.observation.cell == "missing"
    assert "no-such-dist-x" in result.observation.detail


def test_closing_leaves_no_process_and_no_file() -> None:
    handle = ServerHandle(VARIANTS["uvicorn-wsproto"])
    result = handle.run(case_by_id("3.1"))
    server = handle._server
    assert server is not None
    handle.close()
    assert result.observation.cell == "403"
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)
    assert not handle.events_path.exists()

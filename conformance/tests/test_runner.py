"""A crashed server is a result, and is started again for the next case."""

from __future__ import annotations

import os

import pytest

from conformance.cases import FRAMEWORK_APPS, case_by_id
from conformance.runner import APP, ServerHandle
from conformance.servers import VARIANTS, Variant

pytestmark = pytest.mark.selftest


def test_a_crash_is_reported_and_the_next_case_gets_a_fresh_server() -> None:
    variant = VARIANTS["granian"]
    if variant.missing():
        pytest.skip("granian is not installed")
    handle = ServerHandle(variant)
    try:
        # Status 99 panics granian's worker (2.8.9; two set-cookie headers did up to 2.8.7).
        crashed = handle.run(case_by_id("2.11"))
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


def _gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_framework_case_gets_a_server_of_its_own_and_the_next_app_replaces_it() -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("litestar")
    handle = ServerHandle(VARIANTS["uvicorn-wsproto"])
    try:
        starlette = handle.run(case_by_id("7.1"))
        starlette_server = handle._apps[FRAMEWORK_APPS["starlette"].app].server
        litestar = handle.run(case_by_id("7.13"))
        apps = set(handle._apps)
        default = handle._server
    finally:
        handle.close()
    assert (starlette.observation.cell, litestar.observation.cell) == ("401 ok", "401 ok")
    assert apps == {APP, FRAMEWORK_APPS["litestar"].app}
    assert handle.starts == 3
    assert starlette_server is not None
    assert default is not None
    assert _gone(starlette_server.pid)
    assert _gone(default.pid)


def test_an_asyncio_only_app_is_not_applicable_under_trio_and_not_started() -> None:
    handle = ServerHandle(VARIANTS["hypercorn-trio"])
    try:
        result = handle.run(case_by_id("7.7"))  # Django Channels
    finally:
        handle.close()
    assert result.observation.cell == "n/a"
    assert "asyncio" in result.observation.detail
    assert set(handle._apps) == {APP}

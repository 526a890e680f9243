"""A crashed server is a result, and is started again for the next case."""

from __future__ import annotations

import os
from pathlib import Path

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


#: A server that answers its first two handshakes with 403 (the readiness check's, the case's),
#: then accepts and never answers again.
STOPS_ANSWERING = """
import socket, sys
listener = socket.create_server((sys.argv[1], int(sys.argv[2])))
held, answered = [], 0
while True:
    connection, _ = listener.accept()
    connection.settimeout(5)
    head = b""
    try:
        while b"\\r\\n\\r\\n" not in head:
            chunk = connection.recv(4096)
            if not chunk:
                break
            head += chunk
    except OSError:
        pass
    if b"\\r\\n\\r\\n" not in head:
        connection.close()  # the launcher's readiness check: a connection without a request
    elif answered < 2:
        answered += 1
        connection.sendall(b"HTTP/1.1 403 Forbidden\\r\\ncontent-length: 0\\r\\n\\r\\n")
        connection.close()
    else:
        held.append(connection)
"""


def test_a_server_that_stops_answering_is_a_hang_and_is_started_again(tmp_path: Path) -> None:
    script = tmp_path / "stops_answering.py"
    script.write_text(STOPS_ANSWERING)
    variant = Variant("stuck", ("{python}", str(script), "{host}", "{port}"))
    handle = ServerHandle(variant)
    try:
        first = handle.run(case_by_id("3.1"))
        first_server = handle._apps[APP].server
        second = handle.run(case_by_id("3.1"))
    finally:
        handle.close()
    assert first_server is None  # stopped at once, not left for the next case
    assert first.observation.cell == "403, then hang"
    assert first.observation.conforms is False
    assert "answered no fresh handshake" in first.observation.detail
    # A fresh server for the next case, which answers once and stops answering again.
    assert second.observation.cell == "403, then hang"
    assert second.restarted
    assert (handle.starts, handle.hangs, handle.crashes) == (2, 2, 0)


def test_a_server_that_serves_on_is_left_running() -> None:
    handle = ServerHandle(VARIANTS["uvicorn-wsproto"])
    try:
        results = [handle.run(case_by_id(case_id)) for case_id in ("3.3", "3.1")]
    finally:
        handle.close()
    assert [result.observation.cell for result in results] == ["500", "403"]
    assert (handle.starts, handle.hangs) == (1, 0)


def test_the_readiness_and_survival_checks_leave_nothing_in_a_framework_log() -> None:
    """Channels logs a traceback for a path it has no route for: the checks use one it has."""
    pytest.importorskip("channels")
    handle = ServerHandle(VARIANTS["uvicorn-wsproto"])
    try:
        results = [handle.run(case_by_id("7.7")), handle.run(case_by_id("7.8"))]
        server = handle._apps[FRAMEWORK_APPS["channels"].app].server
        assert server is not None
        log = server.log()
    finally:
        handle.close()
    assert [result.observation.cell for result in results] == ["401 ok", "401 ok"]
    assert "Traceback" not in log
    assert "No route found" not in log

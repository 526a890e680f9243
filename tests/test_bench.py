"""How `make bench` judges what it measured: the verdicts follow the figures, never the reverse.

The benchmarks themselves are never timed tests (docs/benchmarks.md); these run the judging and
accounting code on figures given here, where the right verdict is known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from bench.in_process import Comparison
from bench.load import Exchange, LoadResult, _Connection, _h2_frame
from bench.on_servers import VariantResult, _mode_run
from bench.results import _server_guard_json, _statuses, in_process_json
from bench.tables import in_process_table, target_lines
from bench.targets import (
    DENY_DENIAL_VS_RAW_TARGET,
    DENY_VS_RAW_TARGET,
    GUARD_CPU_TARGET,
    GUARD_TARGET,
    _answered_as_designed,
    server_targets,
    targets_json,
)

ARMS = ("raw", "floor", "deny", "deny_denial", "denial_app")


def comparison(ns: Mapping[str, float]) -> Comparison:
    """Three rounds of the same figures, so every per-round ratio is the ratio of ``ns``."""
    return Comparison("raw", {arm: [ns[arm]] * 3 for arm in ARMS})


def results(wire: Mapping[str, float], noop: Mapping[str, float]) -> dict[str, Comparison]:
    validation = {"denial": [2100.0] * 3, "denial_json": [4200.0] * 3, "messages": [600.0] * 3}
    return {
        "denial_wire": comparison(wire),
        "denial_noop": comparison(noop),
        "validation": Comparison("denial", validation),
    }


NOOP = {"raw": 500, "floor": 590, "deny": 850, "deny_denial": 820, "denial_app": 800}


@pytest.mark.parametrize("deny_ns", [2100, 5000], ids=["close", "far-above"])
def test_in_process_ratios_are_information_never_a_verdict(deny_ns: int) -> None:
    wire = {"raw": 1750, "floor": 1830, "deny": deny_ns, "deny_denial": 2070, "denial_app": 2020}
    table = in_process_table(results(wire, NOOP))
    assert not [line for line in table if "MISSED" in line or ": met" in line]
    assert any("information" in line for line in table)
    figures = in_process_json(results(wire, NOOP))
    assert figures["deny_cost_vs_raw"] == pytest.approx(deny_ns / 1750, abs=1e-3)
    assert figures["noop_send"]["deny_cost_vs_raw"] == pytest.approx(850 / 500, abs=1e-3)
    assert figures["baseline_disturbed"] is False


def test_validating_a_typical_denial_is_reported_in_microseconds() -> None:
    wire = {"raw": 1750, "floor": 1830, "deny": 2100, "deny_denial": 2070, "denial_app": 2020}
    validation = in_process_json(results(wire, NOOP))["validation"]
    assert validation["denial_us"] == pytest.approx(2.1)
    assert validation["denial_json_us"] == pytest.approx(4.2)
    assert validation["messages_us"] == pytest.approx(0.6)
    (line,) = [line for line in in_process_table(results(wire, NOOP)) if "Denial.json" in line]
    for figure in ("2.10 us", "4.20 us", "0.60 us"):
        assert figure in line


def test_a_baseline_slower_than_itself_plus_a_call_is_flagged() -> None:
    """A disturbed hand-written arm would flatter every helper: the table says so."""
    wire = {"raw": 2300, "floor": 1800, "deny": 2100, "deny_denial": 2050, "denial_app": 2000}
    table = in_process_table(results(wire, NOOP))
    assert any("serializing send's ratios are not to be read" in line for line in table)
    assert in_process_json(results(wire, NOOP))["baseline_disturbed"] is True


def run_of(handshakes: int, status: int = 401) -> LoadResult:
    exchanges = [Exchange(index, status=status, latency=0.01) for index in range(handshakes)]
    return LoadResult(exchanges, elapsed=1.0, client_cpu=0.2, concurrency=50)


def test_full_collections_are_taken_out_of_the_judged_cpu_figure() -> None:
    # 1,000 handshakes on 0.35 s of server CPU, 0.19 s of it in one full collection.
    run = _mode_run("deny", run_of(1000), 0.35, 0.0, 1.0, 3.0, [1, 190_000_000, 200_000_000])
    assert run.cpu_per_s == pytest.approx(1000 / 0.35)
    assert run.net_cpu_per_s == pytest.approx(1000 / 0.16)
    assert run.gc_full == 1
    assert run.gc_us == pytest.approx(200.0)


def test_without_a_full_collection_both_cpu_figures_agree() -> None:
    run = _mode_run("deny", run_of(1000), 0.16, 0.0, 1.0, 3.0, [0, 0, 12_000_000])
    assert run.net_cpu_per_s == run.cpu_per_s == pytest.approx(1000 / 0.16)


def test_the_guard_on_a_server_is_reported_as_a_cost_over_the_bare_app() -> None:
    # Three rounds: the bare app costs 300 us of server CPU per handshake, the guarded 330 us;
    # by the application's own clock 15 us against 18 us (the guard adds 3 us).
    result = VariantResult("server", "1.0")
    for _ in range(3):
        result.runs.append(_mode_run("admit", run_of(1000), 0.300, 0.0, 1.0, 15.0))
        result.runs.append(_mode_run("admit_guarded", run_of(1000), 0.330, 0.0, 1.0, 18.0))
    guard = _server_guard_json(result)
    assert guard["server_cpu_us_per_handshake"] == {"bare": 300.0, "guarded": 330.0}
    assert guard["guard_cost_vs_bare"] == pytest.approx(1.1, abs=1e-3)
    assert guard["guard_added_us"] == pytest.approx(3.0)
    assert guard["app_clock_cost_vs_bare"] == pytest.approx(303 / 300, abs=1e-4)
    assert guard["admitted"] is False  # these handshakes were answered 401, not admitted


@pytest.mark.parametrize("status", [101, 200])
def test_admitted_handshakes_are_recognised(status: int) -> None:
    result = VariantResult("server", "1.0")
    for mode in ("admit", "admit_guarded"):
        result.runs.append(_mode_run(mode, run_of(100, status), 0.03, 0.0, 1.0, 15.0))
    assert _server_guard_json(result)["admitted"] is True


LISTED = {"deny": 401, "deny_denial": 401, "raw": 401, "close": 403, "accept_close": 101}
FALLBACK = {**LISTED, "deny": 403, "deny_denial": 403, "raw": 403}


@pytest.mark.parametrize(
    ("designed", "wrong", "as_designed"),
    [
        (LISTED, {}, True),
        (FALLBACK, {}, True),
        ({**LISTED, "accept_close": 200}, {}, True),  # HTTP/2
        (LISTED, {"deny": 500}, False),  # one round of server errors
        (LISTED, {"close": 401}, False),
        (LISTED, {"accept_close": 403}, False),
        ({**LISTED, "raw": 403}, {}, False),  # the denial paths disagree
    ],
    ids=["listed", "fallback", "h2", "deny-500", "close-401", "accept-refused", "disagree"],
)
def test_every_answer_must_be_the_designed_one(
    designed: dict[str, int], wrong: dict[str, int], as_designed: bool
) -> None:
    result = VariantResult("server", "1.0")
    for round_number in range(3):
        for mode, status in designed.items():
            if round_number == 2 and mode in wrong:
                status = wrong[mode]
            result.runs.append(_mode_run(mode, run_of(100, status), 0.03, 0.0, 1.0, 5.0))
    statuses = _statuses(result, designed)
    assert _answered_as_designed(statuses) is as_designed
    if wrong:
        ((mode, status),) = wrong.items()
        assert statuses[mode] == {designed[mode]: 200, status: 100}  # every round counted


def test_an_h2_answer_is_whole_only_with_its_whole_header_block() -> None:
    """A HEADERS frame may end the stream while CONTINUATION frames still carry its block."""
    import hpack

    block = hpack.Encoder().encode([(":status", "403"), ("content-length", "0")])
    settings = _h2_frame(0x4, 0, 0, (0x8).to_bytes(2, "big") + (1).to_bytes(4, "big"))
    connection = _Connection(None, Exchange(0), b"request", "h2")  # type: ignore[arg-type]
    connection.feed(settings)
    connection.feed(_h2_frame(0x1, 0x1, 1, block[:2]))  # HEADERS, END_STREAM, no END_HEADERS
    assert not connection.done
    connection.feed(_h2_frame(0x9, 0x4, 1, block[2:]))  # CONTINUATION, END_HEADERS
    assert connection.done
    assert (connection.exchange.status, connection.exchange.error) == (403, None)


def test_the_echo_figures_are_per_message_differences() -> None:
    from bench.in_process import ECHO_MESSAGES, echo_figures

    ns = {"bare": 50_000.0, "guard": 60_000.0, "wrapped": 65_000.0, "limits": 75_000.0}
    figures = echo_figures(Comparison("bare", {arm: [value] * 3 for arm, value in ns.items()}))
    assert figures["messages"] == ECHO_MESSAGES == 100
    assert figures["guard_added_ns_per_message"] == 100.0  # (60,000 - 50,000) / 100
    assert figures["limits_added_ns_per_message"] == 150.0  # limits against the guard
    assert figures["counting_added_ns_per_message"] == 100.0  # limits against the wrapped floor
    assert figures["limits_cost_vs_bare"] == 1.5
    wire = {"raw": 1750, "floor": 1830, "deny": 2100, "deny_denial": 2070, "denial_app": 2020}
    echo = Comparison("bare", {arm: [value] * 3 for arm, value in ns.items()})
    table = "\n".join(in_process_table({**results(wire, NOOP), "guard_echo": echo}))
    assert "guard 60,000 (+100.0 per message), with message limits 75,000" in table
    assert "(+150.0 per message, of which counting itself +100.0)" in table


# --- the targets on the servers -------------------------------------------------------------

DENY = f"deny_vs_raw_at_least_{DENY_VS_RAW_TARGET}"
DENIAL = f"deny_denial_vs_raw_at_least_{DENY_DENIAL_VS_RAW_TARGET}"
GUARD_CLOCK = f"guard_app_clock_at_most_{GUARD_TARGET}"
GUARD_CPU = f"guard_cpu_at_most_{GUARD_CPU_TARGET}"
DESIGNED = {
    "deny": {401: 10},
    "deny_denial": {401: 10},
    "raw": {401: 10},
    "close": {403: 10},
    "accept_close": {101: 10},
}


def server_row(
    deny: float = 0.998,
    deny_denial: float = 0.999,
    guard_clock: float = 1.005,
    guard_cpu: float = 1.02,
    admitted: bool = True,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "app_clock": {"deny_vs_raw": deny, "deny_denial_vs_raw": deny_denial},
        "deny_vs_accept_close": 1.1,
        "deny_denial_vs_accept_close": 1.1,
        "statuses": DESIGNED,
        "guard": {
            "app_clock_cost_vs_bare": guard_clock,
            "guard_cost_vs_bare": guard_cpu,
            "admitted": admitted,
        },
    }
    row["targets"] = server_targets(row)
    return row


def test_the_targets_are_the_issue_s() -> None:
    assert (DENY_VS_RAW_TARGET, DENY_DENIAL_VS_RAW_TARGET) == (0.97, 0.99)
    assert (GUARD_TARGET, GUARD_CPU_TARGET) == (1.01, 1.05)


@pytest.mark.parametrize(
    ("figures", "missed"),
    [
        ({}, set()),
        ({"deny": 0.97, "deny_denial": 0.99, "guard_clock": 1.01, "guard_cpu": 1.05}, set()),
        ({"deny": 0.969}, {DENY}),
        ({"deny": 0.98, "deny_denial": 0.989}, {DENIAL}),
        ({"guard_clock": 1.0101}, {GUARD_CLOCK}),
        ({"guard_cpu": 1.051}, {GUARD_CPU}),
        ({"admitted": False}, {GUARD_CLOCK, GUARD_CPU}),
    ],
    ids=["well-within", "at-the-bounds", "deny", "denial", "guard-clock", "guard-cpu", "refused"],
)
def test_each_server_target_is_judged_on_its_own_figure(
    figures: dict[str, Any], missed: set[str]
) -> None:
    row = server_row(**figures)
    assert {key for key, met in row["targets"].items() if not met} == missed


def test_a_miss_is_named_with_its_server_and_figure() -> None:
    servers: dict[str, dict[str, Any]] = {
        "quiet": server_row(),
        "loud": server_row(deny=0.962, guard_cpu=1.07),
        "broken": {"failure": "OSError: no port"},
    }
    summary = targets_json(servers)
    assert summary[DENY]["missed"] == ["loud", "broken"]
    assert summary[DENIAL]["missed"] == ["broken"]
    assert summary[GUARD_CPU]["missed"] == ["loud", "broken"]
    lines = target_lines(servers)
    (deny_line,) = [line for line in lines if "deny/raw >=" in line]
    assert "MISSED on loud 0.962x, broken (did not run)" in deny_line
    (quiet,) = [line for line in target_lines({"quiet": server_row()}) if "deny/raw" in line]
    assert quiet.endswith(": met")


# --- the application's clocks inside a server -----------------------------------------------


@pytest.mark.anyio
async def test_the_application_clocks_each_path_by_cpu_and_wall() -> None:
    """Each handshake is counted once per path, by both clocks, none of them on another
    thread, and ``/stats`` starts the counts again."""
    from bench import server_app

    scope = {
        "type": "websocket",
        "path": "/raw",
        "headers": [],
        "extensions": {"websocket.http.response": {}},
    }
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def stats() -> dict[str, Any]:
        sent.clear()
        await server_app.app({"type": "http", "path": "/stats"}, receive, send)
        return dict(json.loads(sent[1]["body"]))

    await stats()
    for _ in range(3):
        await server_app.app(dict(scope), receive, send)
    handshakes, cpu_ns, wall_ns, moved = (await stats())["/raw"]
    assert (handshakes, moved) == (3, 0)
    assert cpu_ns > 0
    assert wall_ns > 0
    assert "/raw" not in await stats()


def test_the_helper_s_cost_is_taken_by_either_clock() -> None:
    result = VariantResult("server", "1.0")
    for _ in range(3):
        for mode, cpu, wall in (("deny", 5.0, 9.0), ("raw", 3.0, 4.0)):
            result.runs.append(
                _mode_run(mode, run_of(100), 0.03, 0.0, 1.0, cpu, (0, 0, 0), wall, 0)
            )
    assert result.added_us("deny", "raw") == pytest.approx(2.0)
    assert result.added_us("deny", "raw", "app_wall_us") == pytest.approx(5.0)

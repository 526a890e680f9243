"""What ``bench/results.json`` holds: the figures of a run, from what was measured.

`in_process_json` turns the in-process comparisons (`bench.in_process`) into ratios and
nanoseconds, `server_json` one server variant's rounds (`bench.on_servers`) into rates, costs,
ratios and the verdicts of `bench.targets`; `DEFINITIONS` says what each figure means.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

from bench.in_process import Comparison, echo_figures
from bench.on_servers import GUARD_MODES, MODES, VariantResult
from bench.targets import (
    DENY_DENIAL_VS_RAW_TARGET,
    DENY_VS_RAW_TARGET,
    GUARD_CPU_TARGET,
    GUARD_TARGET,
    server_targets,
)

__all__ = (
    "DEFINITIONS",
    "DISTURBED",
    "NOTES",
    "RATIOS",
    "disturbed",
    "in_process_json",
    "server_json",
)

#: What a server does on these paths that explains a figure, verified by the conformance
#: suite and by this benchmark's own run (the server log and the client's view).
NOTES = {
    "daphne": (
        "no denial-response extension: /deny and /raw fall back to websocket.close (403), the "
        "same path as /close; close 1008 after accept raises in the server (autobahn allows "
        "only 1000 and 3000-4999) and the client gets close 1011 about 1 s later; with 50 "
        "connections at a time a few admitted ones (under 1%, bare and guarded alike) are reset "
        "before any response, while its refusals are not"
    ),
    "gunicorn": (
        "no denial-response extension: /deny and /raw fall back to websocket.close (403), "
        "the same path as /close; the worker grows by ~18 KiB per handshake on every path (the "
        "control grows alike), so each full garbage collection walks a larger heap: a run with "
        "one costs ~350 us of CPU per handshake instead of ~160, on every path alike (the "
        "judged CPU figures leave full collections out; the wall-clock ones keep them)"
    ),
    "granian": (
        "a denial carries the server's upgrade headers and the connection stays open after it "
        "(the client closes); a denial with two headers of one name panics the worker, so the "
        "benchmark denial has none"
    ),
    "uvicorn-sansio": "logs 'ASGI callable returned without completing handshake' (ERROR) "
    "after every denial response, though the client got it whole",
    "hypercorn-h2": "accept-then-close over HTTP/2: the server logs a KeyError traceback when "
    "the client answers the close frame (the stream is already gone); a connection closed "
    "without GOAWAY stays open for the 5 s keep-alive timeout (the client sends GOAWAY)",
}


def _round(value: float, digits: int = 3) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, digits)


# --- in process -----------------------------------------------------------------------------


def _denial_ratios(comparison: Comparison) -> dict[str, Any]:
    # Four digits, so the docs' two agree with the printed table's (no rounding twice).
    return {
        "deny_cost_vs_raw": _round(comparison.ratio("deny"), 4),
        "denial_app_cost_vs_raw": _round(comparison.ratio("denial_app"), 4),
        "deny_prebuilt_cost_vs_raw": _round(comparison.ratio("deny_denial"), 4),
        "call_floor_cost_vs_raw": _round(comparison.ratio("floor"), 4),
        "ns_per_call": {arm: round(comparison.median_ns(arm)) for arm in comparison.samples},
        "added_ns": {arm: round(comparison.added_ns(arm)) for arm in comparison.samples},
    }


#: The floor arm runs the hand-written code and a call more: where it measures cheaper, something
#: else slowed the baseline down, and ratios against it would flatter the helpers.
DISTURBED = (
    "the hand-written arm measured slower than the same code plus a call (the floor), so"
    " something disturbed this run's baseline; run it again"
)


def disturbed(comparison: Comparison) -> bool:
    return comparison.ratio("floor") < 1.0


def _validation_json(comparison: Comparison) -> dict[str, Any]:
    us = {arm: _round(comparison.median_ns(arm) / 1000, 3) for arm in comparison.samples}
    return {
        "denial_us": us["denial"],
        "denial_json_us": us["denial_json"],
        "messages_us": us["messages"],
        "calls": {
            "denial": "Denial(401, headers, body): two headers, a 24-byte JSON body",
            "denial_json": "Denial.json(401, data, [www-authenticate]): the same denial",
            "messages": "DENIAL.messages(scope): the two messages from a valid Denial",
        },
    }


def in_process_json(results: dict[str, Comparison]) -> dict[str, Any]:
    noop, wire = results["denial_noop"], results["denial_wire"]
    out: dict[str, Any] = {
        **_denial_ratios(wire),
        "noop_send": _denial_ratios(noop),
        "repeats": len(wire.samples["raw"]),
        "baseline_disturbed": disturbed(wire) or disturbed(noop),
        "send": (
            "the ratios at the top: a send that serializes the messages into a buffer, the "
            "least an HTTP/1.1 server does; noop_send: a send that returns at once, where a "
            "coroutine call alone costs call_floor_cost_vs_raw; information, not targets"
        ),
    }
    validation = results.get("validation")
    out["validation"] = None if validation is None else _validation_json(validation)
    for kind, key in (("http", "guard_http_cost_vs_bare"), ("websocket", "guard_ws_cost_vs_bare")):
        comparison = results.get(f"guard_{kind}")
        if comparison is None:
            out[key] = None
            continue
        out[key] = _round(comparison.ratio("guard"), 4)
        out[f"guard_{kind}"] = {
            "bare_ns": round(comparison.median_ns("bare")),
            "guard_ns": round(comparison.median_ns("guard")),
            "added_ns": round(comparison.added_ns("guard")),
            # A middleware that only passes the call on: the floor under any middleware.
            "layer_ns": round(comparison.median_ns("layer")),
            "layer_added_ns": round(comparison.added_ns("layer")),
            # One that also hands the application a send of its own, which passes every
            # message on: the floor under any middleware that sees what the application sends.
            "observe_ns": round(comparison.median_ns("observe")),
            "observe_added_ns": round(comparison.added_ns("observe")),
            # And one that also builds the check's Handshake and calls the check: the least any
            # guard with a check does for a websocket.
            "least_ns": round(comparison.median_ns("least")),
            "least_added_ns": round(comparison.added_ns("least")),
            "least_cost_vs_bare": _round(comparison.ratio("least"), 4),
            # The guard without a check: following the handshake state alone.
            "unchecked_ns": round(comparison.median_ns("unchecked")),
            "unchecked_added_ns": round(comparison.added_ns("unchecked")),
            "unchecked_cost_vs_bare": _round(comparison.ratio("unchecked"), 4),
        }
    echo = results.get("guard_echo")
    out["guard_echo"] = None if echo is None else echo_figures(echo)
    return out


# --- servers --------------------------------------------------------------------------------


RATIOS = {
    "deny_vs_raw": ("deny", "raw"),
    "deny_vs_close": ("deny", "close"),
    "deny_vs_accept_close": ("deny", "accept_close"),
    "deny_denial_vs_raw": ("deny_denial", "raw"),
    "deny_denial_vs_accept_close": ("deny_denial", "accept_close"),
}


def server_json(result: VariantResult) -> dict[str, Any]:
    if result.failure is not None:
        return {"failure": result.failure, "version": result.version}
    out: dict[str, Any] = {"version": result.version}
    for mode in MODES:
        out[f"{mode}_per_s"] = round(result.median(mode, "rate"), 1)
    # The judged ratios: of server CPU time per handshake, full garbage collections taken out
    # (see bench/on_servers.py).
    for key, (mode, other) in RATIOS.items():
        out[key] = _round(result.ratio(mode, other, "net_cpu_per_s"))
    # The helper's cost measured inside the server by the application's own clock, and the
    # deny/raw ratio it implies for the whole handshake (judged: far finer than whole-server
    # CPU, whose noise between rounds is a few percent).
    raw_cost = 1e6 / result.median("raw", "net_cpu_per_s")
    out["app_us_per_handshake"] = {mode: _round(result.median(mode, "app_us"), 2) for mode in MODES}
    out["app_wall_us_per_handshake"] = {
        mode: _round(result.median(mode, "app_wall_us"), 2) for mode in MODES
    }
    # Handshakes whose code resumed on another thread, where the thread's CPU clock misses it.
    out["app_clock_moved"] = sum(run.moved for run in result.runs)
    out["helper_added_us"] = {
        "deny": _round(result.added_us("deny", "raw"), 2),
        "deny_denial": _round(result.added_us("deny_denial", "raw"), 2),
    }
    out["helper_added_wall_us"] = {
        mode: _round(result.added_us(mode, "raw", "app_wall_us"), 2)
        for mode in ("deny", "deny_denial")
    }
    out["app_clock"] = {
        f"{mode}_vs_raw": _round(raw_cost / (raw_cost + out["helper_added_us"][mode]))
        for mode in ("deny", "deny_denial")
    }
    out["p50_ms"] = _round(result.median("deny", "p50_ms"), 2)
    out["p99_ms"] = _round(result.median("deny", "p99_ms"), 2)
    out["rss_growth_ratio"] = _round(result.memory["rss_growth_ratio"], 4)
    out["rss_growth_ratio_control"] = _round(result.memory_control["rss_growth_ratio"], 4)
    out["wall"] = {key: _round(result.ratio(*modes)) for key, modes in RATIOS.items()}
    # Ratios of the least disturbed run of each mode (other work can only add CPU time).
    best = {mode: max(run.net_cpu_per_s for run in result.of(mode)) for mode in MODES}
    out["best_of"] = {
        key: _round(best[mode] / best[other]) if best[other] else None
        for key, (mode, other) in RATIOS.items()
    }
    out["cpu_per_s"] = {mode: round(result.median(mode, "net_cpu_per_s"), 1) for mode in MODES}
    out["server_cpu_us_per_handshake"] = {
        mode: round(1e6 / result.median(mode, "net_cpu_per_s"), 1) for mode in MODES
    }
    out["gross"] = {
        "cpu_per_s": {mode: round(result.median(mode, "cpu_per_s"), 1) for mode in MODES},
        **{key: _round(result.ratio(*modes, "cpu_per_s")) for key, modes in RATIOS.items()},
    }
    handshakes = sum(run.completed for run in result.runs)
    out["gc"] = {
        "full_collections": sum(run.gc_full for run in result.runs),
        "runs_with_a_full_collection": sum(1 for run in result.runs if run.gc_full),
        "runs": len(result.runs),
        "full_us_per_handshake": _round(
            sum(run.gc_full_s for run in result.runs) * 1e6 / handshakes
            if handshakes
            else math.nan,
            1,
        ),
        "us_per_handshake": _round(result.median("deny", "gc_us"), 1),
    }
    out["latency_ms"] = {
        mode: {
            "p50": _round(result.median(mode, "p50_ms"), 2),
            "p99": _round(result.median(mode, "p99_ms"), 2),
        }
        for mode in MODES
    }
    out["memory"] = result.memory
    out["memory_control"] = result.memory_control
    out["client_cpu_share_max"] = _round(max(run.client_cpu_share for run in result.runs))
    out["server_cpu_share_median"] = _round(
        statistics.median(run.server_cpu_share for run in result.runs)
    )
    out["server_wait_share_median"] = _round(
        statistics.median(run.server_wait_share for run in result.runs)
    )
    failures: dict[str, int] = {}
    for run in result.runs:
        for reason, number in run.errors.items():
            key = f"{run.mode}:{reason}"
            failures[key] = failures.get(key, 0) + number
    out["client_failures"] = failures
    out["statuses"] = _statuses(result, MODES)
    out["server_tracebacks"] = result.tracebacks
    out["server_error_lines"] = result.error_lines
    out["guard"] = _server_guard_json(result)
    out["targets"] = server_targets(out)
    if result.variant in NOTES:
        out["note"] = NOTES[result.variant]
    out["runs"] = [run.__dict__ for run in result.runs]
    return out


def _server_guard_json(result: VariantResult) -> dict[str, Any]:
    """The guard on a real server: admitted handshakes of one Starlette app, bare and guarded."""
    bare_cost = 1e6 / result.median("admit", "net_cpu_per_s")
    added = result.added_us("admit_guarded", "admit")
    return {
        "bare_per_s": round(result.median("admit", "rate"), 1),
        "guarded_per_s": round(result.median("admit_guarded", "rate"), 1),
        "server_cpu_us_per_handshake": {
            "bare": round(bare_cost, 1),
            "guarded": round(1e6 / result.median("admit_guarded", "net_cpu_per_s"), 1),
        },
        # Cost ratios (guarded over bare, above 1 = the guard costs more), of whole-server CPU
        # and of wall-clock rates, median of the per-round ratios.
        "guard_cost_vs_bare": _round(result.ratio("admit", "admit_guarded", "net_cpu_per_s")),
        "wall": _round(result.ratio("admit", "admit_guarded")),
        "app_us_per_handshake": {
            "bare": _round(result.median("admit", "app_us"), 2),
            "guarded": _round(result.median("admit_guarded", "app_us"), 2),
        },
        "guard_added_us": _round(added, 2),
        "guard_added_wall_us": _round(result.added_us("admit_guarded", "admit", "app_wall_us"), 2),
        # What the guard's cost, measured by the application's clock, makes of a whole
        # admitted handshake on this server.
        "app_clock_cost_vs_bare": _round((bare_cost + added) / bare_cost, 4),
        # Both paths must have admitted (101, or 200 over HTTP/2), or they compare nothing.
        "admitted": all(
            status in (101, 200)
            for run in result.runs
            if run.mode in GUARD_MODES
            for status in run.statuses
        ),
        "statuses": _statuses(result, GUARD_MODES),
    }


def _statuses(result: VariantResult, modes: Iterable[str]) -> dict[str, dict[int, int]]:
    """Every status each mode got, counted over all its rounds."""
    counted: dict[str, dict[int, int]] = {}
    for mode in modes:
        total: Counter[int] = Counter()
        for run in result.of(mode):
            total.update(run.statuses)
        counted[mode] = dict(sorted(total.items()))
    return counted


#: What each key of ``bench/results.json`` means, written into the file itself.
DEFINITIONS = {
    "<mode>_per_s": "handshakes completed per second of wall-clock time, as the clients "
    "saw them (median over rounds)",
    "deny_vs_raw, deny_vs_close, deny_vs_accept_close, deny_denial_vs_raw": "median over "
    "rounds of the ratio of server CPU time per handshake (other / mode): above 1 means "
    "the first path is cheaper; 'faster than accept-then-close' is judged on these",
    "app_us_per_handshake, helper_added_us": "the application's own time per handshake "
    "inside the server, by the CPU clock of the thread that runs it (the server's send "
    "and receive and full garbage collections excluded), and what deny adds to the "
    "hand-written messages there (median over rounds of the per-round difference); "
    "app_wall_us_per_handshake, helper_added_wall_us: the same by the wall clock, which "
    "also counts the moments the process waited for a CPU; app_clock_moved: handshakes "
    "whose code resumed on another thread (the thread clock would not follow them)",
    "app_clock": "raw CPU per handshake / (that + helper_added_us): the deny/raw ratio "
    "the helper's measured cost makes of a whole handshake; the targets 'deny at least "
    f"{DENY_VS_RAW_TARGET}x' and 'DENIAL at least {DENY_DENIAL_VS_RAW_TARGET}x' are "
    "judged on these",
    "wall": "the same ratios of wall-clock rates",
    "best_of": "the same ratios of each path's least disturbed round",
    "cpu_per_s": "handshakes per second of the server's CPU time, less the time the "
    "application's process spent in full garbage collections during the run (median): "
    "a full collection walks all the process holds, so its cost is set by the server's "
    "heap, not by the path of the run it falls in; gross: the same and the ratios with "
    "that time left in",
    "gc": "Python's garbage collector in the application's process over the rounds "
    "(CPU time of the collecting thread): "
    "full collections, the runs that had one, their time spread over every handshake, "
    "and the median time per handshake in any collection on /deny",
    "p50_ms, p99_ms": "latency of /deny from connect to the whole answer (median of the "
    "rounds' percentiles)",
    "rss_growth_ratio": "peak RSS (VmHWM, summed over the server's processes) after "
    "10,000 denials / after 10, on a fresh server; _control: the same with the "
    "hand-written messages on another fresh server",
    "guard": "per server: admitted handshakes of the in-process benchmark's Starlette "
    "app, bare and in WebSocketGuard with a check that admits; guard_cost_vs_bare: median "
    "over rounds of guarded / bare server CPU per handshake (wall: of the rates); "
    "guard_added_us: what the guard adds by the application's clock (guard_added_wall_us: "
    "by the wall clock); "
    "app_clock_cost_vs_bare: (bare CPU per handshake + that) / bare CPU per handshake; "
    f"targets: app_clock_cost_vs_bare at most {GUARD_TARGET}x and guard_cost_vs_bare at "
    f"most {GUARD_CPU_TARGET}x",
    "targets": "per target: the figure it is judged on, on every server variant, and "
    "the variants that missed it; per server the same verdicts under 'targets'",
    "in_process": "information, no targets: ratios to the hand-written messages with a "
    "send that serializes the messages (noop_send: a send that returns at once); "
    "validation: microseconds to validate a typical denial (401, two headers, a 24-byte "
    "JSON body) as Denial(...) and as Denial.json(...), and to build its messages; "
    "guard_*: WebSocketGuard over a minimal Starlette app against the bare app, with "
    "floors beside it",
}

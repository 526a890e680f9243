"""``python -m bench`` (``make bench``): run every benchmark, print the table, write the files.

Writes ``bench/results.json``, the chart ``bench/results.png`` (copied to
``docs/benchmarks.png``) and the generated part of ``docs/benchmarks.md``. ``--quick`` runs
small counts (a smoke run, not figures to quote).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.in_process import Comparison, echo_figures, run_in_process
from bench.on_servers import GUARD_MODES, MODES, VariantResult, bench_variant, client_ceiling
from conformance.servers import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
CHART = ROOT / "bench" / "results.png"
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"
DOCS_CHART = ROOT / "docs" / "benchmarks.png"
START_MARK = "<!-- bench:start -->"
END_MARK = "<!-- bench:end -->"

#: The targets, judged on every server variant (issue 13, "Performance, judged on servers"). The
#: helper's: `deny` over the hand-written messages by the application's clock, at least this,
#: validating on every call (``deny(scope, send, 401, headers, body)``) and with a `Denial`
#: built once (``deny(scope, send, DENIAL)``).
DENY_VS_RAW_TARGET = 0.97
DENY_DENIAL_VS_RAW_TARGET = 0.99
#: The guard's, on an admitted handshake, guarded over bare: at most this by the application's
#: clock, and at most `GUARD_CPU_TARGET` by the server's CPU. In process every figure is
#: information: there the interpreter's floor for any guard with a check is above 1.05x.
GUARD_TARGET = 1.01
GUARD_CPU_TARGET = 1.05
DISTRIBUTIONS = (
    "asgi-ws-deny",
    "uvicorn",
    "websockets",
    "wsproto",
    "hypercorn",
    "h2",
    "daphne",
    "granian",
    "gunicorn",
    "starlette",
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


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _guard_available() -> bool:
    try:
        from asgi_ws_deny.guard import WebSocketGuard  # noqa: F401
    except ImportError:
        return False
    return True


def _round(value: float, digits: int = 3) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, digits)


def _pair(row: dict[str, Any], key: str) -> str:
    """A ratio of server CPU with the same ratio of wall-clock rates in brackets."""
    return f"{_x(row[key], '.2f', 'x')} ({_x(row['wall'][key], '.2f')})"


def _x(value: float | None, spec: str, unit: str = "") -> str:
    """``value`` formatted by ``spec``, then ``unit``; "n/a" where a run gave no figure (a zero
    or missing time makes a ratio infinite, which results.json stores as null)."""
    return "n/a" if value is None else format(value, spec) + unit


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


def _disturbed(comparison: Comparison) -> bool:
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


def _in_process_json(results: dict[str, Comparison]) -> dict[str, Any]:
    noop, wire = results["denial_noop"], results["denial_wire"]
    out: dict[str, Any] = {
        **_denial_ratios(wire),
        "noop_send": _denial_ratios(noop),
        "repeats": len(wire.samples["raw"]),
        "baseline_disturbed": _disturbed(wire) or _disturbed(noop),
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


def _in_process_table(results: dict[str, Comparison]) -> list[str]:
    noop, wire = results["denial_noop"], results["denial_wire"]
    labels = {
        "raw": "hand-written messages",
        "floor": "the same inside a function (any call)",
        "deny": "deny(scope, send, 401, headers, body)",
        "deny_denial": "deny(scope, send, DENIAL)",
        "denial_app": "DENIAL(scope, receive, send)",
    }
    lines = [
        f"In process: one denial, ns per call (median of {len(wire.samples['raw'])} interleaved "
        "rounds; ratio = median of per-round ratios to hand-written; information)",
        f"  {'':40} {'serializing send':>22}   {'no-op send':>22}",
    ]
    for arm, label in labels.items():
        lines.append(
            f"  {label:40} {wire.median_ns(arm):>9,.0f} ns {wire.ratio(arm):>6.2f}x"
            f"{'':4} {noop.median_ns(arm):>9,.0f} ns {noop.ratio(arm):>6.2f}x"
        )
    lines.append(
        f"  information, not a target (added ns with the serializing send: deny"
        f" {wire.added_ns('deny'):,.0f}, deny(DENIAL) {wire.added_ns('deny_denial'):,.0f},"
        f" the application {wire.added_ns('denial_app'):,.0f}); with the no-op send a coroutine"
        f" call alone costs {noop.ratio('floor'):.2f}x"
    )
    for arms, which in ((wire, "serializing"), (noop, "no-op")):
        if _disturbed(arms):
            lines.append(f"  the {which} send's ratios are not to be read: " + DISTURBED)
    validation = results.get("validation")
    if validation is not None:
        lines.append(
            "In process: validating a typical denial (401, two headers, a 24-byte JSON body),"
            " us per call (median)"
        )
        lines.append(
            f"  Denial(401, headers, body) {validation.median_ns('denial') / 1000:.2f} us;"
            f" Denial.json(401, data, headers) {validation.median_ns('denial_json') / 1000:.2f}"
            f" us; building its messages, DENIAL.messages(scope),"
            f" {validation.median_ns('messages') / 1000:.2f} us"
        )
    guard = [(kind, results.get(f"guard_{kind}")) for kind in ("http", "websocket")]
    if any(comparison is not None for _, comparison in guard):
        lines.append(
            "Guard pass-through on a minimal Starlette app (ns per call; information: the guard"
            " is judged on the servers)"
        )
        for kind, comparison in guard:
            if comparison is None:
                continue
            lines.append(
                f"  {kind:10} bare {comparison.median_ns('bare'):>9,.0f} ns   guard "
                f"{comparison.median_ns('guard'):>9,.0f} ns   {comparison.ratio('guard'):.3f}x"
                f"   +{comparison.added_ns('guard'):,.0f} ns per call"
                f" (a pass-through middleware: +{comparison.added_ns('layer'):,.0f}; one that"
                f" passes send through a function: +{comparison.added_ns('observe'):,.0f};"
                f" the least a guard with a check does: +{comparison.added_ns('least'):,.0f}"
                f" ({comparison.ratio('least'):.3f}x);"
                f" the guard without a check: +{comparison.added_ns('unchecked'):,.0f})"
            )
    else:
        lines.append("Guard pass-through: pending (asgi_ws_deny.guard is not there yet)")
    echo = results.get("guard_echo")
    if echo is not None:
        figures = echo_figures(echo)
        lines.append(
            f"Admitted echo connection, {figures['messages']} messages (ns per connection):"
            f" bare {figures['bare_ns']:,}, guard {figures['guard_ns']:,}"
            f" (+{figures['guard_added_ns_per_message']:,} per message), with message limits"
            f" {figures['limits_ns']:,} (+{figures['limits_added_ns_per_message']:,} per"
            f" message, of which counting itself +{figures['counting_added_ns_per_message']:,})"
        )
    return lines


# --- servers --------------------------------------------------------------------------------


RATIOS = {
    "deny_vs_raw": ("deny", "raw"),
    "deny_vs_close": ("deny", "close"),
    "deny_vs_accept_close": ("deny", "accept_close"),
    "deny_denial_vs_raw": ("deny_denial", "raw"),
    "deny_denial_vs_accept_close": ("deny_denial", "accept_close"),
}


def _server_json(result: VariantResult) -> dict[str, Any]:
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
    out["targets"] = _server_targets(out)
    if result.variant in NOTES:
        out["note"] = NOTES[result.variant]
    out["runs"] = [run.__dict__ for run in result.runs]
    return out


def _server_targets(row: dict[str, Any]) -> dict[str, bool]:
    """Each target of one server variant, met or not, by the figures of ``row``."""
    guard = row["guard"]
    return {
        # The helper's cost by the application's clock, over a whole handshake of the
        # hand-written path: whole-server CPU moves by a few percent from round to round.
        f"deny_vs_raw_at_least_{DENY_VS_RAW_TARGET}": _at_least(
            row["app_clock"]["deny_vs_raw"], DENY_VS_RAW_TARGET
        ),
        f"deny_denial_vs_raw_at_least_{DENY_DENIAL_VS_RAW_TARGET}": _at_least(
            row["app_clock"]["deny_denial_vs_raw"], DENY_DENIAL_VS_RAW_TARGET
        ),
        "deny_faster_than_accept_close": _at_least(row["deny_vs_accept_close"], 1.0, strict=True),
        "deny_denial_faster_than_accept_close": _at_least(
            row["deny_denial_vs_accept_close"], 1.0, strict=True
        ),
        # A rate of wrong answers is no rate: every handshake of every round must have got
        # the answer its path is built to give.
        "answered_as_designed": _answered_as_designed(row["statuses"]),
        # The guard on an admitted handshake; only where both paths were admitted.
        f"guard_app_clock_at_most_{GUARD_TARGET}": guard["admitted"]
        and _at_most(guard["app_clock_cost_vs_bare"], GUARD_TARGET),
        f"guard_cpu_at_most_{GUARD_CPU_TARGET}": guard["admitted"]
        and _at_most(guard["guard_cost_vs_bare"], GUARD_CPU_TARGET),
    }


def _targets_json(servers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The targets, what each is judged on, and the variants that missed it."""
    judged_on = {
        f"deny_vs_raw_at_least_{DENY_VS_RAW_TARGET}": "app_clock.deny_vs_raw",
        f"deny_denial_vs_raw_at_least_{DENY_DENIAL_VS_RAW_TARGET}": "app_clock.deny_denial_vs_raw",
        "deny_faster_than_accept_close": "deny_vs_accept_close (server CPU)",
        "deny_denial_faster_than_accept_close": "deny_denial_vs_accept_close (server CPU)",
        "answered_as_designed": "statuses",
        f"guard_app_clock_at_most_{GUARD_TARGET}": "guard.app_clock_cost_vs_bare",
        f"guard_cpu_at_most_{GUARD_CPU_TARGET}": "guard.guard_cost_vs_bare (server CPU)",
    }
    out: dict[str, Any] = {}
    for target, figure in judged_on.items():
        missed = [
            name
            for name, row in servers.items()
            if "failure" in row or not row["targets"].get(target, False)
        ]
        out[target] = {"judged_on": figure, "on": "every server variant", "missed": missed}
    out["in_process"] = "information only: no in-process figure is a target"
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


#: The statuses each path is built to answer with: the denial's 401 where the server lists the
#: extension, else the fallback's 403 (the same on the three denial paths); 403 for a close
#: before accept; 101 (200 over HTTP/2) for accept-then-close.
DESIGNED_STATUSES = {
    "deny": (401, 403),
    "deny_denial": (401, 403),
    "raw": (401, 403),
    "close": (403,),
    "accept_close": (101, 200),
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


def _answered_as_designed(statuses: dict[str, dict[int, int]]) -> bool:
    """Whether every mode got only its designed statuses, the denial paths one and the same."""
    for mode, designed in DESIGNED_STATUSES.items():
        got = statuses.get(mode, {})
        if not got or any(status not in designed for status in got):
            return False
    denials = {status for mode in ("deny", "deny_denial", "raw") for status in statuses[mode]}
    return len(denials) == 1


def _at_least(value: float | None, floor: float, *, strict: bool = False) -> bool:
    if value is None:
        return False
    return value > floor if strict else value >= floor


def _at_most(value: float | None, ceiling: float) -> bool:
    return value is not None and value <= ceiling


#: Per target: how the verdict lines name it, and the figure of a row it is judged on.
TARGET_LABELS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    f"deny_vs_raw_at_least_{DENY_VS_RAW_TARGET}": (
        f"deny/raw >= {DENY_VS_RAW_TARGET}x by the application's clock",
        lambda row: _x(row["app_clock"]["deny_vs_raw"], ".3f", "x"),
    ),
    f"deny_denial_vs_raw_at_least_{DENY_DENIAL_VS_RAW_TARGET}": (
        f"DENIAL/raw >= {DENY_DENIAL_VS_RAW_TARGET}x by the application's clock",
        lambda row: _x(row["app_clock"]["deny_denial_vs_raw"], ".3f", "x"),
    ),
    "deny_faster_than_accept_close": (
        "deny cheaper than accept-then-close by server CPU",
        lambda row: _x(row["deny_vs_accept_close"], ".2f", "x"),
    ),
    "deny_denial_faster_than_accept_close": (
        "DENIAL cheaper than accept-then-close by server CPU",
        lambda row: _x(row["deny_denial_vs_accept_close"], ".2f", "x"),
    ),
    "answered_as_designed": (
        "every handshake answered as its path is built to",
        lambda row: str(row["statuses"]),
    ),
    f"guard_app_clock_at_most_{GUARD_TARGET}": (
        f"guarded/bare admitted handshake <= {GUARD_TARGET}x by the application's clock",
        lambda row: (
            _x(row["guard"]["app_clock_cost_vs_bare"], ".4f", "x")
            + ("" if row["guard"]["admitted"] else " (not all admitted)")
        ),
    ),
    f"guard_cpu_at_most_{GUARD_CPU_TARGET}": (
        f"guarded/bare admitted handshake <= {GUARD_CPU_TARGET}x by server CPU",
        lambda row: (
            _x(row["guard"]["guard_cost_vs_bare"], ".3f", "x")
            + ("" if row["guard"]["admitted"] else " (not all admitted)")
        ),
    ),
}


def _target_lines(servers: dict[str, dict[str, Any]]) -> list[str]:
    """One verdict per target over every server variant, naming the figure of each miss."""
    lines = ["  targets, on every server variant:"]
    for key, (label, figure) in TARGET_LABELS.items():
        missed = []
        for name, row in servers.items():
            if "failure" in row:
                missed.append(f"{name} (did not run)")
            elif not row["targets"].get(key, False):
                missed.append(f"{name} {figure(row)}")
        verdict = "met" if not missed else "MISSED on " + ", ".join(missed)
        lines.append(f"    {label}: {verdict}")
    return lines


def _server_table(servers: dict[str, dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    ok = {name: row for name, row in servers.items() if "failure" not in row}
    lines = [
        f"On real servers: {settings['repeats']} interleaved rounds of {settings['count']:,} "
        f"handshakes per mode, {settings['concurrency']} at a time (medians)",
        "  handshakes refused per second, as the clients saw them; latency of /deny",
        f"  {'variant':18} {'deny/s':>7} {'DENIAL/s':>8} {'raw/s':>7} {'close/s':>7}"
        f" {'acc+cl/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cli cpu':>7} {'srv cpu':>7}"
        f" {'srv wait':>8}",
    ]
    for name, row in servers.items():
        if "failure" in row:
            lines.append(f"  {name:18} did not run: {row['failure']}")
            continue
        lines.append(
            f"  {name:18} {row['deny_per_s']:>7,.0f} {row['deny_denial_per_s']:>8,.0f}"
            f" {row['raw_per_s']:>7,.0f} {row['close_per_s']:>7,.0f}"
            f" {row['accept_close_per_s']:>8,.0f} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f}"
            f" {row['client_cpu_share_max']:>7.0%} {row['server_cpu_share_median']:>7.0%}"
            f" {row['server_wait_share_median']:>8.0%}"
        )
    lines += [
        "  server CPU per handshake, microseconds, full garbage collections left out, and the"
        " ratios (median of per-round ratios of server CPU, wall-clock in brackets); RSS growth"
        " after 10,000 vs after 10; full GC = runs with a full collection, and its cost spread"
        " over every handshake; targets: every target of the variant (listed below the"
        " tables)",
        f"  {'variant':18} {'deny':>5} {'DENIAL':>6} {'raw':>5} {'close':>5} {'acc+cl':>6}"
        f"  {'deny/raw':>13} {'DENIAL/raw':>13} {'deny/close':>13} {'deny/acc+cl':>13}"
        f" {'RSS x':>6} {'ctrl x':>6} {'full GC':>13}  targets",
    ]
    for name, row in ok.items():
        cost = row["server_cpu_us_per_handshake"]
        missed = [key for key, met in row["targets"].items() if not met]
        verdict = "ok" if not missed else "MISSED " + ", ".join(missed)
        gc = row["gc"]
        collections = (
            f"{gc['runs_with_a_full_collection']}/{gc['runs']} {gc['full_us_per_handshake']:.0f}us"
        )
        lines.append(
            f"  {name:18} {cost['deny']:>5.0f} {cost['deny_denial']:>6.0f} {cost['raw']:>5.0f}"
            f" {cost['close']:>5.0f} {cost['accept_close']:>6.0f}"
            f"  {_pair(row, 'deny_vs_raw'):>13} {_pair(row, 'deny_denial_vs_raw'):>13}"
            f" {_pair(row, 'deny_vs_close'):>13} {_pair(row, 'deny_vs_accept_close'):>13}"
            f" {row['rss_growth_ratio']:>6.3f} {row['rss_growth_ratio_control']:>6.3f}"
            f" {collections:>13}  {verdict}"
        )
    lines += [
        "  inside the server: the application's own time per handshake, the server's send"
        " excluded (us), what the helper adds, and the deny/raw it makes of a whole handshake",
        f"  {'variant':18} {'deny':>6} {'DENIAL':>6} {'raw':>6} {'deny adds':>9}"
        f" {'DENIAL adds':>11} {'deny/raw':>8} {'DENIAL/raw':>10}",
    ]
    for name, row in ok.items():
        app = row["app_us_per_handshake"]
        added = row["helper_added_us"]
        clock = row["app_clock"]
        lines.append(
            f"  {name:18} {app['deny']:>6.1f} {app['deny_denial']:>6.1f} {app['raw']:>6.1f}"
            f" {added['deny']:>+9.1f} {added['deny_denial']:>+11.1f}"
            f" {_x(clock['deny_vs_raw'], '.3f', 'x'):>8}"
            f" {_x(clock['deny_denial_vs_raw'], '.3f', 'x'):>10}"
        )
    lines += [
        "  the guard on the server: admitted handshakes (accept, close) of a minimal Starlette"
        " app, bare and in WebSocketGuard with a check that admits; CPU per handshake (us),"
        " the cost ratio (wall-clock in brackets), the app's own time (us) and what the guard"
        " adds there, and the cost that makes of a whole admitted handshake",
        f"  {'variant':18} {'bare/s':>7} {'guarded/s':>9} {'bare':>5} {'guarded':>7}"
        f" {'guarded/bare':>14} {'app bare':>8} {'guarded':>7} {'adds':>5} {'of a handshake':>14}",
    ]
    for name, row in ok.items():
        guard = row["guard"]
        cost = guard["server_cpu_us_per_handshake"]
        app = guard["app_us_per_handshake"]
        ratio = f"{_x(guard['guard_cost_vs_bare'], '.3f', 'x')} ({_x(guard['wall'], '.2f')})"
        lines.append(
            f"  {name:18} {guard['bare_per_s']:>7,.0f} {guard['guarded_per_s']:>9,.0f}"
            f" {cost['bare']:>5.0f} {cost['guarded']:>7.0f} {ratio:>14}"
            f" {app['bare']:>8.1f} {app['guarded']:>7.1f} {guard['guard_added_us']:>+5.1f}"
            f" {_x(guard['app_clock_cost_vs_bare'], '.4f', 'x'):>14}"
            + ("" if guard["admitted"] else f"  NOT ALL ADMITTED: {guard['statuses']}")
        )
    lines += [
        "  deny = deny(scope, send, 401, headers, body), validated on every call; DENIAL ="
        " deny(scope, send, DENIAL), a Denial built once;",
        "  raw = the same messages by hand; close = a bare websocket.close before accept;"
        " acc+cl = accept, send a text, close 1008.",
        "  cli cpu = the most of a core the client used in a run; srv cpu = the server's median"
        " use of a core; srv wait = the share of a run its threads waited for a CPU held by",
        "  other work on the machine. ctrl x = RSS growth of a fresh server over 10,000"
        " hand-written denials (the control).",
    ]
    lines += _target_lines(servers)
    for name, row in servers.items():
        if "note" in row:
            lines.append(f"  note {name}: {row['note']}")
        failures = row.get("client_failures") or {}
        cut = sorted({key.split(":")[0] for key in failures if key.endswith(":budget")})
        failed = {key: number for key, number in failures.items() if not key.endswith(":budget")}
        if cut:
            lines.append(
                f"  {name}: {', '.join(cut)} runs were cut at the time budget of a run "
                "(their rate counts the handshakes completed in it)"
            )
        if failed:
            lines.append(f"  CLIENT FAILURES {name}: {failed}")
    return lines


# --- chart and docs -------------------------------------------------------------------------


MODE_LABELS = {
    "deny": "deny(scope, send, status, headers, body)",
    "deny_denial": "deny(scope, send, DENIAL)",
    "raw": "the same messages by hand",
    "close": "bare close before accept (403)",
    "accept_close": "accept, send, close 1008",
}
MODE_COLORS = {
    "deny": "#1f77b4",
    "deny_denial": "#6baed6",
    "raw": "#c6dbef",
    "close": "#7f7f7f",
    "accept_close": "#d62728",
}


def _chart(servers: dict[str, dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("chart: matplotlib is not installed (pip install -e '.[bench]'); no chart written")
        return False
    names = [name for name, row in servers.items() if "failure" not in row]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8.5), dpi=110, sharex=True)
    width = 0.16
    for offset, mode in enumerate(MODES):
        xs = [i + (offset - 2) * width for i in range(len(names))]
        top.bar(
            xs,
            [servers[name][f"{mode}_per_s"] for name in names],
            width,
            label=MODE_LABELS[mode],
            color=MODE_COLORS[mode],
        )
        bottom.bar(
            xs,
            [servers[name]["server_cpu_us_per_handshake"][mode] for name in names],
            width,
            color=MODE_COLORS[mode],
        )
    top.set_ylabel("handshakes refused per second")
    top.set_title("Refusing a WebSocket handshake, per server (medians of interleaved rounds)")
    top.legend(fontsize="small", ncol=2)
    bottom.set_ylabel("server CPU per handshake (µs)")
    bottom.set_title("What each refusal costs the server (lower is cheaper)")
    bottom.set_xticks(range(len(names)))
    bottom.set_xticklabels(names, rotation=20, ha="right")
    for axis in (top, bottom):
        axis.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _docs_section(payload: dict[str, Any], chart: bool) -> str:
    settings = payload["settings"]
    ip = payload["in_process"]
    machine = payload["machine"]
    lines = [
        START_MARK,
        "",
        f"Measured on {payload['date']} with Python {payload['python']} on {machine['cpus']} "
        f"cores (load average {machine['loadavg_start'][0]} at the start, "
        f"{machine['loadavg_end'][0]} at the end): {settings['repeats']} interleaved rounds of "
        f"{settings['count']:,} handshakes, {settings['concurrency']} at a time, per mode and "
        f"server; `make bench` took {payload['wall_s']:.0f} s.",
        "",
    ]
    lines += [
        "The targets, judged on every server variant (the figures are in the tables below):",
        "",
        "| target | verdict |",
        "| --- | --- |",
    ]
    for target, (label, figure) in TARGET_LABELS.items():
        missed = [
            f"{name} ({'did not run' if 'failure' in row else figure(row)})"
            for name, row in payload["servers"].items()
            if "failure" in row or not row["targets"].get(target, False)
        ]
        verdict = "met on every server" if not missed else "**missed** on " + ", ".join(missed)
        lines.append(f"| {label} | {verdict} |")
    lines.append("")
    if chart:
        lines += ["![Handshakes refused per second, per server](benchmarks.png)", ""]
    lines += [
        "Handshakes refused per second, as the clients saw them, and the latency of `/deny`:",
        "",
        "| server | deny/s | DENIAL/s | raw/s | close/s | accept+close/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in payload["servers"].items():
        if "failure" in row:
            lines.append(f"| {name} | did not run: {row['failure']} |" + " |" * 6)
            continue
        lines.append(
            f"| {name} | {row['deny_per_s']:,.0f} | {row['deny_denial_per_s']:,.0f} "
            f"| {row['raw_per_s']:,.0f} | {row['close_per_s']:,.0f} "
            f"| {row['accept_close_per_s']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
        )
    lines += [
        "",
        "Server CPU per handshake (µs, full garbage collections left out) and the ratios, "
        "judged on CPU (wall-clock in brackets); RSS growth after 10,000 denials against after "
        "10, with the helper and (control) by hand; the runs that had a full collection, and "
        "what those cost per handshake over all runs:",
        "",
        "| server | deny µs | DENIAL µs | raw µs | close µs | accept+close µs | deny/raw "
        "| DENIAL/raw | deny/close | deny/accept+close | RSS growth | control | full GC |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for name, row in payload["servers"].items():
        if "failure" in row:
            continue
        cost = row["server_cpu_us_per_handshake"]
        lines.append(
            f"| {name} | {cost['deny']:.0f} | {cost['deny_denial']:.0f} | {cost['raw']:.0f} "
            f"| {cost['close']:.0f} | {cost['accept_close']:.0f} | "
            + " | ".join(
                _pair(row, key) for key in ("deny_vs_raw", "deny_denial_vs_raw", "deny_vs_close")
            )
            + f" | {_pair(row, 'deny_vs_accept_close')} "
            f"| {row['rss_growth_ratio']:.3f} | {row['rss_growth_ratio_control']:.3f} "
            f"| {row['gc']['runs_with_a_full_collection']}/{row['gc']['runs']}, "
            f"{row['gc']['full_us_per_handshake']:.0f} µs |"
        )
    lines += [
        "",
        "Inside each server, the application's own time per handshake (the server's `send` "
        "excluded), what the helper adds to the hand-written messages, and the `deny/raw` that "
        f"makes of a whole handshake (the judged figures: at least {DENY_VS_RAW_TARGET}x for "
        f"`deny`, {DENY_DENIAL_VS_RAW_TARGET}x for `DENIAL`):",
        "",
        "| server | deny µs | DENIAL µs | raw µs | deny adds µs | DENIAL adds µs | deny/raw "
        "| DENIAL/raw |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in payload["servers"].items():
        if "failure" in row:
            continue
        app = row["app_us_per_handshake"]
        added = row["helper_added_us"]
        clock = row["app_clock"]
        lines.append(
            f"| {name} | {app['deny']:.1f} | {app['deny_denial']:.1f} | {app['raw']:.1f} "
            f"| {added['deny']:+.1f} | {added['deny_denial']:+.1f} "
            f"| {_x(clock['deny_vs_raw'], '.3f', 'x')} "
            f"| {_x(clock['deny_denial_vs_raw'], '.3f', 'x')} |"
        )
    lines += [
        "",
        "The guard on each server: admitted handshakes (accept, then close) of the minimal "
        "Starlette app of the in-process benchmark, bare and inside `WebSocketGuard` with a "
        "check that admits: server CPU per handshake and the cost ratio (wall-clock in "
        "brackets; judged: at most "
        f"{GUARD_CPU_TARGET}x), the application's own time and what the guard adds there, and "
        f"the cost that makes of a whole admitted handshake (judged: at most {GUARD_TARGET}x):",
        "",
        "| server | bare µs | guarded µs | guarded/bare | app bare µs | app guarded µs "
        "| guard adds µs | of a handshake |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in payload["servers"].items():
        if "failure" in row:
            continue
        guard = row["guard"]
        cost = guard["server_cpu_us_per_handshake"]
        app = guard["app_us_per_handshake"]
        lines.append(
            f"| {name} | {cost['bare']:.0f} | {cost['guarded']:.0f} "
            f"| {_x(guard['guard_cost_vs_bare'], '.3f', 'x')} ({_x(guard['wall'], '.2f')}) "
            f"| {app['bare']:.1f} | {app['guarded']:.1f} | {guard['guard_added_us']:+.1f} "
            f"| {_x(guard['app_clock_cost_vs_bare'], '.4f', 'x')} |"
        )
    lines += [
        "",
        "In process, as information (no target): one denial, ns per call; ratio to the "
        f"hand-written messages, median of {ip['repeats']} interleaved rounds:",
        "",
        "| call | serializing `send` | ratio | no-op `send` | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    ratio_keys = {
        "raw": None,
        "floor": "call_floor_cost_vs_raw",
        "deny": "deny_cost_vs_raw",
        "deny_denial": "deny_prebuilt_cost_vs_raw",
        "denial_app": "denial_app_cost_vs_raw",
    }
    labels = {
        "raw": "hand-written messages",
        "floor": "the same, moved into a coroutine function (what any call costs)",
        "deny": "`deny(scope, send, 401, headers, body)`",
        "deny_denial": "`deny(scope, send, DENIAL)`",
        "denial_app": "`DENIAL(scope, receive, send)`",
    }
    noop = ip["noop_send"]
    for arm, key in ratio_keys.items():
        wire_ratio = 1.0 if key is None else ip[key]
        noop_ratio = 1.0 if key is None else noop[key]
        lines.append(
            f"| {labels[arm]} | {ip['ns_per_call'][arm]:,} | {wire_ratio:.2f}x "
            f"| {noop['ns_per_call'][arm]:,} | {noop_ratio:.2f}x |"
        )
    validation = ip.get("validation")
    if validation is not None:
        lines += [
            "",
            "Validating a typical denial (401, two headers, a 24-byte JSON body), µs per call "
            "(median of the same rounds):",
            "",
            "| call | µs |",
            "| --- | ---: |",
            f"| `Denial(401, headers, body)` | {validation['denial_us']:.2f} |",
            f"| `Denial.json(401, data, headers)` | {validation['denial_json_us']:.2f} |",
            f"| its messages, `DENIAL.messages(scope)` | {validation['messages_us']:.2f} |",
        ]
    if ip.get("guard_http_cost_vs_bare") is not None:
        lines += [
            "",
            "| guard pass-through (Starlette app) | bare ns | guarded ns | ratio | added ns "
            "| added by a pass-through middleware | by one that passes `send` through a function "
            "| by the least a guard with a check does | by the guard without a check |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for kind, key in (
            ("http", "guard_http_cost_vs_bare"),
            ("websocket", "guard_ws_cost_vs_bare"),
        ):
            detail = ip[f"guard_{kind}"]
            lines.append(
                f"| {kind} | {detail['bare_ns']:,} | {detail['guard_ns']:,} | {ip[key]:.3f}x "
                f"| {detail['added_ns']:,} | {detail['layer_added_ns']:,} "
                f"| {detail['observe_added_ns']:,} | {detail['least_added_ns']:,} "
                f"| {detail['unchecked_added_ns']:,} |"
            )
    ceiling = payload["client"]
    lines += [
        "",
        f"Client ceiling, against a canned-response server: {ceiling['rate']:,.0f} "
        f"handshakes/s (client at {ceiling['client_cpu_share']:.0%} of a core).",
        "",
        END_MARK,
    ]
    return "\n".join(lines)


def _write_docs(section: str) -> None:
    if not DOCS_PAGE.exists():
        return
    text = DOCS_PAGE.read_text()
    pattern = re.compile(re.escape(START_MARK) + ".*?" + re.escape(END_MARK), re.DOTALL)
    if pattern.search(text) is None:
        print(f"docs: no {START_MARK} ... {END_MARK} section in {DOCS_PAGE}; not updated")
        return
    DOCS_PAGE.write_text(pattern.sub(lambda _: section, text))


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500, help="connections per run")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per server")
    parser.add_argument("--memory-count", type=int, default=10_000)
    parser.add_argument("--budget", type=float, default=4.0, help="seconds at most per run")
    parser.add_argument("--in-process-repeats", type=int, default=21)
    parser.add_argument("--variant", action="append", help="only these variants (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-docs", action="store_true", help="leave docs/ untouched")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.repeats, args.memory_count = 200, 2, 400
        args.in_process_repeats, args.budget = 5, 4.0
    variants = args.variant or list(VARIANTS)
    started = time.monotonic()
    loadavg_start = [round(x, 2) for x in os.getloadavg()]

    print(f"bench: in process ({args.in_process_repeats} rounds)", flush=True)
    guard = _guard_available()
    in_process = run_in_process(repeats=args.in_process_repeats, guard=guard)

    print("bench: client ceiling against a canned-response server", flush=True)
    ceiling = client_ceiling(
        count=max(args.count * 2, 1000),
        concurrency=args.concurrency,
        repeats=3,
        budget=args.budget,
    )
    print(
        f"  {ceiling['rate']:,.0f} handshakes/s, client {ceiling['client_cpu_share']:.0%} "
        f"of a core, canned server {ceiling['server_cpu_share']:.0%}",
        flush=True,
    )

    servers: dict[str, dict[str, Any]] = {}
    for name in variants:
        print(f"bench: {name}", flush=True)
        result = bench_variant(
            name,
            count=args.count,
            concurrency=args.concurrency,
            repeats=args.repeats,
            memory_count=args.memory_count,
            budget=args.budget,
            progress=lambda line: print(line, flush=True),
        )
        servers[name] = _server_json(result)

    settings = {
        "count": args.count,
        "concurrency": args.concurrency,
        "repeats": args.repeats,
        "memory_count": args.memory_count,
        "budget_s": args.budget,
        "quick": args.quick,
    }
    payload: dict[str, Any] = {
        "targets": _targets_json(servers),
        "in_process": _in_process_json(in_process),
        "servers": servers,
        "client": ceiling,
        "python": platform.python_version(),
        "versions": _versions(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": loadavg_start,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": settings,
        "definitions": {
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
        },
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": None,
    }
    payload["wall_s"] = round(time.monotonic() - started, 1)

    print()
    for line in _in_process_table(in_process):
        print(line)
    print()
    for line in _server_table(servers, settings):
        print(line)
    print(
        f"Client: ceiling {ceiling['rate']:,.0f} handshakes/s against a canned-response server "
        f"(client at {ceiling['client_cpu_share']:.0%} of a core); load average "
        f"{loadavg_start} -> {payload['machine']['loadavg_end']}"
    )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    chart_path = args.output.with_suffix(".png")
    chart = _chart(servers, chart_path)
    if not args.no_docs:
        if chart:
            shutil.copyfile(chart_path, DOCS_CHART)
        _write_docs(_docs_section(payload, chart))
    print(f"wrote {args.output}" + (f" and {chart_path}" if chart else ""))
    print(f"bench: {payload['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

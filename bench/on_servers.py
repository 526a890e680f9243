"""Benchmarks on real servers: handshakes refused per second, latency, memory, per variant.

For each variant one server is started (`conformance.servers.run_server`, 127.0.0.1, stopped by
its pid) with `bench.server_app`, and, in order:

1. *memory*: 10 denials, then the server group's peak RSS (VmHWM); then denials up to 10,000
   in all, and the peak again. The ratio is the growth; the 10,000 also warm the server up. The
   same is measured on a second, fresh server with the hand-written messages (``/raw``): where
   a server grows by itself, that control shows it grows as much without the helper.
2. *modes*: ``repeats`` rounds; each round makes ``count`` handshakes, ``concurrency`` at a
   time, on each path of `ALL_MODES` (`bench.server_app` says what each does), in an order that
   rotates from round to round, so that a slow phase of the machine falls on every mode alike.
   Every run records completed handshakes per second, p50 and p99 latency, failures, the CPU
   seconds of the client (this process) and of the server's process group, so a reader can see
   which of the two set the pace, and how long the server's threads waited for a CPU that
   something else on the machine held.

After each run the application's own clock is read from ``GET /stats`` (`bench.server_app`):
the CPU time its thread spent per handshake outside the server's ``send`` and ``receive``
(and the wall-clock time, kept beside it). The difference between two paths there is what the
helper adds inside the real server, far below what the whole-server figures can resolve, and
in the same unit as the server CPU time it is set against: a process waiting for a CPU that
other work holds adds to neither.

Ratios between modes are taken within each round and their median is reported, twice: of the
rates the clients saw, and of the server CPU time per handshake (``cpu_per_s`` is its inverse:
handshakes per second of server CPU). The first is what a client sees; the second is what the
helper can change (it only adds work inside the server) and is far less disturbed by other work
on a shared machine, which takes wall time from a run but not CPU time per handshake. The CPU
time leaves out the full garbage collections of the application's process (``/stats`` reports
them): their cost is set by everything the server holds, not by the run they fall in, and on a
server whose heap grows they double the cost of whichever run has one.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import proc
from bench.load import LoadResult, run_load
from conformance.servers import RunningServer, Variant, run_server

__all__ = (
    "ALL_MODES",
    "GUARD_MODES",
    "MODES",
    "ModeRun",
    "VariantResult",
    "bench_variant",
    "client_ceiling",
)

ROOT = Path(__file__).resolve().parent.parent
APP = "bench.server_app:app"
#: Mode name -> request path of `bench.server_app`.
MODES = {
    "deny": "/deny",
    "deny_denial": "/deny-denial",
    "raw": "/raw",
    "close": "/close",
    "accept_close": "/accept-close",
}
#: The guard's modes: the same minimal Starlette application admitting, bare and guarded.
GUARD_MODES = {
    "admit": "/admit",
    "admit_guarded": "/admit-guarded",
}
#: Every mode a round runs.
ALL_MODES = {**MODES, **GUARD_MODES}


@dataclass
class ModeRun:
    """One run of one mode."""

    mode: str
    rate: float
    p50_ms: float
    p99_ms: float
    completed: int
    errors: dict[str, int]
    client_cpu_share: float
    server_cpu_share: float
    server_wait_share: float
    cpu_per_s: float
    app_us: float
    elapsed: float
    statuses: dict[int, int]
    #: Python's garbage collector in the application's process during the run
    #: (`bench.server_app` ``/stats``): full collections, the seconds they took, and the
    #: microseconds per handshake of every collection.
    gc_full: int = 0
    gc_full_s: float = 0.0
    gc_us: float = math.nan
    #: `cpu_per_s` with the full collections' time taken out (see `_mode_run`).
    net_cpu_per_s: float = 0.0
    #: `app_us` by the wall clock, and the handshakes whose code resumed on another thread
    #: (where the thread's CPU clock would not have followed it).
    app_wall_us: float = math.nan
    moved: int = 0


@dataclass
class VariantResult:
    """Everything measured on one variant."""

    variant: str
    version: str | None
    runs: list[ModeRun] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    memory_control: dict[str, Any] = field(default_factory=dict)
    tracebacks: int = 0
    error_lines: int = 0
    failure: str | None = None

    def of(self, mode: str) -> list[ModeRun]:
        return [run for run in self.runs if run.mode == mode]

    def median(self, mode: str, attribute: str) -> float:
        return float(statistics.median(getattr(run, attribute) for run in self.of(mode)))

    def added_us(self, mode: str, other: str, clock: str = "app_us") -> float:
        """Median over rounds of how much longer the application itself took on ``mode``."""
        pairs = zip(self.of(mode), self.of(other), strict=True)
        return float(statistics.median(getattr(a, clock) - getattr(b, clock) for a, b in pairs))

    def ratio(self, mode: str, other: str, attribute: str = "rate") -> float:
        """Median over rounds of ``attribute`` (a rate) of ``mode`` over that of ``other``."""
        pairs = zip(self.of(mode), self.of(other), strict=True)
        return statistics.median(
            getattr(a, attribute) / getattr(b, attribute) if getattr(b, attribute) else math.inf
            for a, b in pairs
        )


def _mode_run(
    mode: str,
    result: LoadResult,
    server_cpu: float,
    server_wait: float,
    elapsed_total: float,
    app_us: float = math.nan,
    gc: tuple[int, int, int] | list[int] = (0, 0, 0),
    app_wall_us: float = math.nan,
    moved: int = 0,
) -> ModeRun:
    completed = result.completed
    full, full_ns, every_ns = gc
    # A full collection walks everything the process holds, so what it costs is set by the
    # server's heap (which grows on a leaking server), not by the path of the run it falls in;
    # `net_cpu_per_s` leaves it out, and the judged ratios use it.
    net_cpu = server_cpu - full_ns / 1e9
    return ModeRun(
        mode=mode,
        rate=result.rate,
        p50_ms=result.latency(0.50) * 1000,
        p99_ms=result.latency(0.99) * 1000,
        completed=len(completed),
        errors=dict(result.errors),
        client_cpu_share=result.client_cpu / elapsed_total,
        server_cpu_share=server_cpu / elapsed_total,
        server_wait_share=server_wait / elapsed_total,
        cpu_per_s=len(completed) / server_cpu if server_cpu > 0 else 0.0,
        app_us=app_us,
        elapsed=result.elapsed,
        statuses=dict(Counter(exchange.status for exchange in completed if exchange.status)),
        gc_full=full,
        gc_full_s=full_ns / 1e9,
        gc_us=every_ns / len(completed) / 1000 if completed else math.nan,
        net_cpu_per_s=len(completed) / net_cpu if net_cpu > 0 else 0.0,
        app_wall_us=app_wall_us,
        moved=moved,
    )


def _load(
    server: RunningServer, path: str, count: int, concurrency: int, budget: float
) -> tuple[LoadResult, float, float, float]:
    """One run, with the server group's CPU and CPU-wait seconds and the wall time around it."""
    pids = proc.group_pids(server.pid)
    cpu_before = proc.cpu_seconds(pids)
    protocol = server.variant.protocol
    if protocol == "h3":
        raise ValueError(f"{server.variant.name}: the load client has no HTTP/3")
    wait_before = proc.wait_seconds(pids)
    started = time.perf_counter()
    result = run_load(
        server.host,
        server.port,
        path,
        count=count,
        concurrency=concurrency,
        protocol=protocol,
        timeout=min(10.0, budget),
        budget=budget,
    )
    elapsed = time.perf_counter() - started
    cpu = proc.cpu_seconds(pids) - cpu_before
    wait = proc.wait_seconds(pids) - wait_before
    return result, cpu, wait, elapsed


def _app_stats(server: RunningServer) -> dict[str, list[int]]:
    """The application's clocks per path since the last call (`bench.server_app` ``/stats``)."""
    url = f"http://{server.host}:{server.port}/stats"
    with urllib.request.urlopen(url, timeout=10) as response:
        stats: dict[str, list[int]] = json.loads(response.read() or b"{}")
    return stats


def _memory_phase(
    server: RunningServer, path: str, total: int, concurrency: int, budget: float
) -> dict[str, Any]:
    first, *_ = _load(server, path, 10, 10, budget)
    after_10 = proc.memory(proc.group_pids(server.pid))
    rest, *_ = _load(server, path, total - 10, concurrency, budget)
    after_total = proc.memory(proc.group_pids(server.pid))
    return {
        "path": path,
        "denials": len(first.completed) + len(rest.completed),
        "attempted": total,
        "peak_kib_after_10": after_10.peak_kib,
        "peak_kib_after_all": after_total.peak_kib,
        "rss_kib_after_10": after_10.rss_kib,
        "rss_kib_after_all": after_total.rss_kib,
        "rss_growth_ratio": after_total.peak_kib / after_10.peak_kib,
        "processes": len(proc.group_pids(server.pid)),
    }


def bench_variant(
    variant: str | Variant,
    *,
    count: int,
    concurrency: int,
    repeats: int,
    memory_count: int,
    budget: float,
    progress: Any = print,
) -> VariantResult:
    """Every measurement of one variant (see the module documentation)."""
    name = variant if isinstance(variant, str) else variant.name
    # The 10,000 denials of the memory phase may take far longer than one run of the rounds.
    memory_budget = max(budget * 10, 60.0)
    try:
        with run_server(variant, APP, app_dir=ROOT) as server:
            result = VariantResult(name, server.variant.version())
            progress(f"  {name}: memory, {memory_count} denials")
            result.memory = _memory_phase(
                server, MODES["deny"], memory_count, concurrency, memory_budget
            )
            modes = list(ALL_MODES)
            for mode in modes:  # a short warm-up of every path
                _load(server, ALL_MODES[mode], max(20, count // 20), concurrency, budget)
            for repeat in range(repeats):
                shift = repeat % len(modes)
                for mode in modes[shift:] + modes[:shift]:
                    _app_stats(server)  # starts the application's clock again
                    load, cpu, wait, elapsed = _load(
                        server, ALL_MODES[mode], count, concurrency, budget
                    )
                    stats = _app_stats(server)
                    handshakes, app_ns, wall_ns, moved = stats.get(ALL_MODES[mode], [0, 0, 0, 0])
                    app_us = app_ns / handshakes / 1000 if handshakes else math.nan
                    wall_us = wall_ns / handshakes / 1000 if handshakes else math.nan
                    run = _mode_run(
                        mode, load, cpu, wait, elapsed, app_us, stats["gc"], wall_us, moved
                    )
                    result.runs.append(run)
                rates = ", ".join(
                    f"{run.mode} {run.rate:,.0f}/s" for run in result.runs[-len(modes) :]
                )
                progress(f"  {name}: round {repeat + 1}/{repeats}: {rates}")
            log = server.log()
        result.tracebacks = log.count("Traceback (most recent call last)")
        result.error_lines = sum(1 for line in log.splitlines() if "ERROR" in line)
        progress(f"  {name}: memory control, {memory_count} hand-written denials, fresh server")
        with run_server(variant, APP, app_dir=ROOT) as control:
            result.memory_control = _memory_phase(
                control, MODES["raw"], memory_count, concurrency, memory_budget
            )
        return result
    except Exception as exc:  # a variant that cannot run is reported, never dropped
        failed = VariantResult(name, None)
        failed.failure = f"{type(exc).__name__}: {exc}"
        return failed


def client_ceiling(*, count: int, concurrency: int, repeats: int, budget: float) -> dict[str, Any]:
    """The client against `bench.canned_server`, which costs almost nothing per connection:
    the most handshakes per second this client can drive, on this machine, now."""
    canned = Variant.from_command(
        "canned", "{python} -m bench.canned_server --host {host} --port {port} {app}"
    )
    runs = []
    with run_server(canned, "unused", app_dir=ROOT) as server:
        _load(server, "/", count // 4, concurrency, budget)
        for _ in range(repeats):
            load, cpu, wait, elapsed = _load(server, "/", count, concurrency, budget)
            runs.append(_mode_run("canned", load, cpu, wait, elapsed))
    return {
        "rate": statistics.median(run.rate for run in runs),
        "max_rate": max(run.rate for run in runs),
        "client_cpu_share": statistics.median(run.client_cpu_share for run in runs),
        "server_cpu_share": statistics.median(run.server_cpu_share for run in runs),
        "errors": sum(sum(run.errors.values()) for run in runs),
    }

"""``python -m bench`` (``make bench``): run every benchmark, print the table, write the files.

Writes ``bench/results.json``, the chart ``bench/results.png`` (copied to
``docs/benchmarks.png``) and the generated part of ``docs/benchmarks.md``. ``--quick`` runs
small counts (a smoke run, not figures to quote).

This module runs the benchmarks (`bench.in_process`, `bench.on_servers`) and writes what they
measured; what the figures mean lives beside it: `bench.results` makes the figures of
``results.json``, `bench.targets` judges them, `bench.tables` prints them and `bench.page`
writes the docs page and the chart.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.in_process import run_in_process
from bench.load import LOAD_VARIANTS
from bench.on_servers import bench_variant, client_ceiling
from bench.page import DOCS_CHART, docs_section, write_chart, write_docs
from bench.results import DEFINITIONS, in_process_json, server_json
from bench.tables import in_process_table, server_table
from bench.targets import targets_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
#: The distributions whose versions results.json records.
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
    variants = args.variant or LOAD_VARIANTS
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
        servers[name] = server_json(result)

    settings = {
        "count": args.count,
        "concurrency": args.concurrency,
        "repeats": args.repeats,
        "memory_count": args.memory_count,
        "budget_s": args.budget,
        "quick": args.quick,
    }
    payload: dict[str, Any] = {
        "targets": targets_json(servers),
        "in_process": in_process_json(in_process),
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
        "definitions": DEFINITIONS,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": None,
    }
    payload["wall_s"] = round(time.monotonic() - started, 1)

    print()
    for line in in_process_table(in_process):
        print(line)
    print()
    for line in server_table(servers, settings):
        print(line)
    print(
        f"Client: ceiling {ceiling['rate']:,.0f} handshakes/s against a canned-response server "
        f"(client at {ceiling['client_cpu_share']:.0%} of a core); load average "
        f"{loadavg_start} -> {payload['machine']['loadavg_end']}"
    )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    chart_path = args.output.with_suffix(".png")
    chart = write_chart(servers, chart_path)
    if not args.no_docs:
        if chart:
            shutil.copyfile(chart_path, DOCS_CHART)
        write_docs(docs_section(payload, chart))
    print(f"wrote {args.output}" + (f" and {chart_path}" if chart else ""))
    print(f"bench: {payload['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

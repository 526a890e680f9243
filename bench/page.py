"""The benchmarks page: the generated part of ``docs/benchmarks.md`` and its chart.

`docs_section` renders the figures of ``bench/results.json`` as the Markdown between
`START_MARK` and `END_MARK`, which `write_docs` puts in place of the section already on the
page; `write_chart` draws the chart (with matplotlib, where it is installed), which ``make bench``
copies to `DOCS_CHART`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.formatting import cpu_with_wall, formatted
from bench.on_servers import MODES
from bench.targets import (
    DENY_DENIAL_VS_RAW_TARGET,
    DENY_VS_RAW_TARGET,
    GUARD_CPU_TARGET,
    GUARD_TARGET,
    TARGET_LABELS,
)

__all__ = (
    "DOCS_CHART",
    "DOCS_PAGE",
    "END_MARK",
    "START_MARK",
    "docs_section",
    "write_chart",
    "write_docs",
)

ROOT = Path(__file__).resolve().parent.parent
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"
DOCS_CHART = ROOT / "docs" / "benchmarks.png"
START_MARK = "<!-- bench:start -->"
END_MARK = "<!-- bench:end -->"

#: How the chart names and colours each mode.
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


def write_chart(servers: dict[str, dict[str, Any]], path: Path) -> bool:
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


def docs_section(payload: dict[str, Any], chart: bool) -> str:
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
                cpu_with_wall(row, key)
                for key in ("deny_vs_raw", "deny_denial_vs_raw", "deny_vs_close")
            )
            + f" | {cpu_with_wall(row, 'deny_vs_accept_close')} "
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
            f"| {formatted(clock['deny_vs_raw'], '.3f', 'x')} "
            f"| {formatted(clock['deny_denial_vs_raw'], '.3f', 'x')} |"
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
            f"| {formatted(guard['guard_cost_vs_bare'], '.3f', 'x')}"
            f" ({formatted(guard['wall'], '.2f')}) "
            f"| {app['bare']:.1f} | {app['guarded']:.1f} | {guard['guard_added_us']:+.1f} "
            f"| {formatted(guard['app_clock_cost_vs_bare'], '.4f', 'x')} |"
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


def write_docs(section: str) -> None:
    if not DOCS_PAGE.exists():
        return
    text = DOCS_PAGE.read_text()
    pattern = re.compile(re.escape(START_MARK) + ".*?" + re.escape(END_MARK), re.DOTALL)
    if pattern.search(text) is None:
        print(f"docs: no {START_MARK} ... {END_MARK} section in {DOCS_PAGE}; not updated")
        return
    DOCS_PAGE.write_text(pattern.sub(lambda _: section, text))

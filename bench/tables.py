"""The tables `make bench` prints: in process, on every server, and the targets' verdicts."""

from __future__ import annotations

from typing import Any

from bench.formatting import cpu_with_wall, formatted
from bench.in_process import Comparison, echo_figures
from bench.results import DISTURBED, disturbed
from bench.targets import TARGET_LABELS

__all__ = (
    "in_process_table",
    "server_table",
    "target_lines",
)


def in_process_table(results: dict[str, Comparison]) -> list[str]:
    """The in-process figures, as information: one denial, validation, the guard, the echo."""
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
        if disturbed(arms):
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


def target_lines(servers: dict[str, dict[str, Any]]) -> list[str]:
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


def server_table(servers: dict[str, dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    """The figures of every server variant, the targets' verdicts and the notes."""
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
            f"  {cpu_with_wall(row, 'deny_vs_raw'):>13}"
            f" {cpu_with_wall(row, 'deny_denial_vs_raw'):>13}"
            f" {cpu_with_wall(row, 'deny_vs_close'):>13}"
            f" {cpu_with_wall(row, 'deny_vs_accept_close'):>13}"
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
            f" {formatted(clock['deny_vs_raw'], '.3f', 'x'):>8}"
            f" {formatted(clock['deny_denial_vs_raw'], '.3f', 'x'):>10}"
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
        ratio = (
            f"{formatted(guard['guard_cost_vs_bare'], '.3f', 'x')}"
            f" ({formatted(guard['wall'], '.2f')})"
        )
        lines.append(
            f"  {name:18} {guard['bare_per_s']:>7,.0f} {guard['guarded_per_s']:>9,.0f}"
            f" {cost['bare']:>5.0f} {cost['guarded']:>7.0f} {ratio:>14}"
            f" {app['bare']:>8.1f} {app['guarded']:>7.1f} {guard['guard_added_us']:>+5.1f}"
            f" {formatted(guard['app_clock_cost_vs_bare'], '.4f', 'x'):>14}"
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
    lines += target_lines(servers)
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

"""The targets of `make bench`, judged on every server variant, and their verdicts.

`server_targets` says which targets one server's figures meet, `targets_json` gathers the
verdicts over every variant for ``bench/results.json``, and `TARGET_LABELS` names each target
and the figure it is judged on, for the printed table and the docs page alike. In process no
figure is a target: those are information.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.formatting import formatted

__all__ = (
    "DENY_DENIAL_VS_RAW_TARGET",
    "DENY_VS_RAW_TARGET",
    "DESIGNED_STATUSES",
    "GUARD_CPU_TARGET",
    "GUARD_TARGET",
    "TARGET_LABELS",
    "server_targets",
    "targets_json",
)

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


def server_targets(row: dict[str, Any]) -> dict[str, bool]:
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


def targets_json(servers: dict[str, dict[str, Any]]) -> dict[str, Any]:
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
        lambda row: formatted(row["app_clock"]["deny_vs_raw"], ".3f", "x"),
    ),
    f"deny_denial_vs_raw_at_least_{DENY_DENIAL_VS_RAW_TARGET}": (
        f"DENIAL/raw >= {DENY_DENIAL_VS_RAW_TARGET}x by the application's clock",
        lambda row: formatted(row["app_clock"]["deny_denial_vs_raw"], ".3f", "x"),
    ),
    "deny_faster_than_accept_close": (
        "deny cheaper than accept-then-close by server CPU",
        lambda row: formatted(row["deny_vs_accept_close"], ".2f", "x"),
    ),
    "deny_denial_faster_than_accept_close": (
        "DENIAL cheaper than accept-then-close by server CPU",
        lambda row: formatted(row["deny_denial_vs_accept_close"], ".2f", "x"),
    ),
    "answered_as_designed": (
        "every handshake answered as its path is built to",
        lambda row: str(row["statuses"]),
    ),
    f"guard_app_clock_at_most_{GUARD_TARGET}": (
        f"guarded/bare admitted handshake <= {GUARD_TARGET}x by the application's clock",
        lambda row: (
            formatted(row["guard"]["app_clock_cost_vs_bare"], ".4f", "x")
            + ("" if row["guard"]["admitted"] else " (not all admitted)")
        ),
    ),
    f"guard_cpu_at_most_{GUARD_CPU_TARGET}": (
        f"guarded/bare admitted handshake <= {GUARD_CPU_TARGET}x by server CPU",
        lambda row: (
            formatted(row["guard"]["guard_cost_vs_bare"], ".3f", "x")
            + ("" if row["guard"]["admitted"] else " (not all admitted)")
        ),
    ),
}

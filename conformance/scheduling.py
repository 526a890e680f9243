"""xdist scheduling of the matrix: a variant's cases on one worker, or a long one's on two.

The matrix asks pytest-xdist for ``--dist loadgroup`` and marks each test with the
``xdist_group`` of its variant. xdist implements that mark by appending ``@group`` to the node
id during collection, which pytest 9.2 no longer lets it do: the groups are then silently
ignored and a variant's cases spread over workers, each starting its own server
(https://github.com/pytest-dev/pytest-xdist/issues/1386). `VariantScheduling` groups by the
variant named in the test id instead, which works with either version; ``conftest.py`` installs
it for ``--dist loadgroup``.

It hands out the longest work first (longest processing time first), by the case times of the
previous run's ``index.json``: a slow variant that starts last, once a worker is free, would set
the wall time on its own. A variant longer than a worker's fair share (the total over the
workers) would set it even when it starts first: its cases are cut into shards (`shards`), runs
of whole units in catalogue order, each a work unit of its own with a server of its own. A unit
is a case, or the cases of one framework application in a row, which share that app's server.
Without earlier results (a fresh clone) nothing tells the slow variants from the others: each
variant is cut in two halves of its cases, so that a slow one handed out last still ends early.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

__all__ = (
    "VariantScheduling",
    "case_durations",
    "shards",
    "units",
    "variant_scope",
)


def _param(nodeid: str) -> str | None:
    """The parameters of a matrix test id (``daphne-3.1-close-403``), or None."""
    base = nodeid.split("@", 1)[0] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid
    if "::test_case[" not in base:
        return None
    return base.rpartition("[")[2].rstrip("]")


def variant_scope(nodeid: str, variants: Sequence[str]) -> str | None:
    """The variant a matrix test id names (``test_case[daphne-3.1-close-403]``), or None."""
    param = _param(nodeid)
    if param is None:
        return None
    for name in sorted(variants, key=len, reverse=True):
        if param.startswith(f"{name}-"):
            return name
    return None


def case_of(nodeid: str, variant: str) -> str:
    """The case id in a matrix test id of ``variant`` (``3.1``)."""
    param = _param(nodeid) or ""
    return param.removeprefix(f"{variant}-").split("-", 1)[0]


def case_durations(index_path: Path) -> dict[str, dict[str, float]]:
    """Each case's time, by variant, in an earlier run's ``index.json`` (empty without one)."""
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return {}
    results = index.get("results") if isinstance(index, dict) else None
    if not isinstance(results, dict):
        return {}
    durations: dict[str, dict[str, float]] = {}
    for name, cases in results.items():
        if isinstance(cases, dict):
            durations[str(name)] = {
                str(case): float(record.get("duration") or 0.0)
                for case, record in cases.items()
                if isinstance(record, dict)
            }
    return durations


def units(catalogue: Sequence[tuple[str, str]]) -> list[list[str]]:
    """The catalogue ((case id, app) in order) cut where a shard may begin: between two cases,
    except inside a run of cases of one framework application ("" is the conformance app)."""
    found: list[list[str]] = []
    previous = None
    for case_id, app in catalogue:
        if found and app and app == previous:
            found[-1].append(case_id)
        else:
            found.append([case_id])
        previous = app
    return found


def shards(
    cut_at: Sequence[Sequence[str]], durations: Mapping[str, float], count: int
) -> list[list[str]]:
    """``count`` runs of whole units (``cut_at``, in order) of about equal time: each shard
    ends once it has reached its share of what is left (fewer shards if units run out)."""
    result: list[list[str]] = []
    left = sum(durations.get(case, 0.0) for unit in cut_at for case in unit)
    shard: list[str] = []
    took = 0.0
    for unit in cut_at:
        share = left / (count - len(result)) if count > len(result) else math.inf
        time = sum(durations.get(case, 0.0) for case in unit)
        # Close the shard before this unit when the unit would take it further past its share
        # than stopping leaves it short.
        if shard and len(result) < count - 1 and took + time - share > share - took:
            result.append(shard)
            left -= took
            shard, took = [], 0.0
        shard.extend(unit)
        took += time
    if shard:
        result.append(shard)
    return result


class VariantScheduling(LoadGroupScheduling):  # type: ignore[misc]
    """`LoadGroupScheduling` whose groups are the matrix's variants (or shards of a long one),
    the longest first."""

    def __init__(
        self,
        config: Any,
        log: Any = None,
        *,
        variants: Sequence[str] = (),
        cases: Mapping[str, Mapping[str, float]] | None = None,
        catalogue: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(config, log)
        self.variants = list(variants)
        self.cases = {name: dict(times) for name, times in (cases or {}).items()}
        #: Each variant's total case time in the previous run.
        self.durations = {name: sum(times.values()) for name, times in self.cases.items()}
        #: The shard of each case of a variant cut into shards (variant -> case -> shard).
        self.shard_of: dict[str, dict[str, int]] = {}
        self.scope_durations: dict[str, float] = {
            f"variant:{name}": time for name, time in self.durations.items()
        }
        self._plan(units(catalogue))
        self._ordered = False

    def _plan(self, cut_at: list[list[str]]) -> None:
        """Cut every variant longer than a worker's fair share into shards (without earlier
        times, every variant in two)."""
        if not self.durations:
            halves = shards(cut_at, {case: 1.0 for unit in cut_at for case in unit}, 2)
            if len(halves) == 2:
                for name in self.variants:
                    self.shard_of[name] = {c: n for n, half in enumerate(halves) for c in half}
            return
        workers = max(self.numnodes, 1)
        fair = sum(self.durations.get(name, 0.0) for name in self.variants) / workers
        for name in self.variants:
            times = self.cases.get(name)
            if not times or not cut_at or fair <= 0 or self.durations[name] <= fair:
                continue
            count = min(math.ceil(self.durations[name] / fair), workers)
            parts = shards(cut_at, times, count)
            if len(parts) < 2:
                continue
            self.shard_of[name] = {case: n for n, part in enumerate(parts) for case in part}
            for n, part in enumerate(parts):
                self.scope_durations[self._scope(name, n)] = sum(times.get(c, 0.0) for c in part)

    @staticmethod
    def _scope(variant: str, shard: int) -> str:
        return f"variant:{variant}" if shard == 0 else f"variant:{variant}#{shard + 1}"

    def _split_scope(self, nodeid: str) -> str:
        scope = variant_scope(nodeid, self.variants)
        if scope is None:
            return str(super()._split_scope(nodeid))
        shard = self.shard_of.get(scope, {}).get(case_of(nodeid, scope), 0)
        return self._scope(scope, shard)

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:
            # The work queue is complete by the first assignment: put the longest first
            # (a stable sort, so work without an earlier time keeps its order).
            self._ordered = True
            order = sorted(self.workqueue, key=lambda scope: -self.scope_durations.get(scope, 0.0))
            for scope in reversed(order):
                self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)

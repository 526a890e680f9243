"""xdist scheduling of the matrix: every case of a variant on one worker.

The matrix asks pytest-xdist for ``--dist loadgroup`` and marks each test with the
``xdist_group`` of its variant. xdist implements that mark by appending ``@group`` to the node
id during collection, which pytest 9.2 no longer lets it do: the groups are then silently
ignored and a variant's cases spread over workers, each starting its own server
(https://github.com/pytest-dev/pytest-xdist/issues/1386). `VariantScheduling` groups by the
variant named in the test id instead, which works with either version; ``conftest.py`` installs
it for ``--dist loadgroup``.

It also hands out the longest variants first (longest processing time first), by their case
time in the previous run's ``index.json``: a slow variant that starts last, once a worker is
free, would set the wall time on its own. Without earlier results the collection order stays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

__all__ = ("VariantScheduling", "variant_durations", "variant_scope")


def variant_scope(nodeid: str, variants: Sequence[str]) -> str | None:
    """The variant a matrix test id names (``test_case[daphne-3.1-close-403]``), or None."""
    base = nodeid.split("@", 1)[0] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid
    if "::test_case[" not in base:
        return None
    param = base.rpartition("[")[2]
    for name in sorted(variants, key=len, reverse=True):
        if param.startswith(f"{name}-"):
            return name
    return None


def variant_durations(index_path: Path) -> dict[str, float]:
    """Each variant's total case time in an earlier run's ``index.json`` (empty without one)."""
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return {}
    results = index.get("results") if isinstance(index, dict) else None
    if not isinstance(results, dict):
        return {}
    durations = {}
    for name, cases in results.items():
        if isinstance(cases, dict):
            durations[str(name)] = sum(
                float(record.get("duration") or 0.0)
                for record in cases.values()
                if isinstance(record, dict)
            )
    return durations


class VariantScheduling(LoadGroupScheduling):  # type: ignore[misc]
    """`LoadGroupScheduling` whose groups are the matrix's variants, the longest first."""

    def __init__(
        self,
        config: Any,
        log: Any = None,
        *,
        variants: Sequence[str] = (),
        durations: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(config, log)
        self.variants = list(variants)
        self.durations = dict(durations or {})
        self._ordered = False

    def _split_scope(self, nodeid: str) -> str:
        scope = variant_scope(nodeid, self.variants)
        return f"variant:{scope}" if scope is not None else super()._split_scope(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:
            # The work queue is complete by the first assignment: put the longest first
            # (a stable sort, so variants without an earlier time keep their order).
            self._ordered = True
            order = sorted(
                self.workqueue,
                key=lambda scope: -self.durations.get(scope.removeprefix("variant:"), 0.0),
            )
            for scope in reversed(order):
                self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)

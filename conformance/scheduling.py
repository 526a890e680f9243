"""xdist scheduling of the matrix: every case of a variant on one worker.

The matrix asks pytest-xdist for ``--dist loadgroup`` and marks each test with the
``xdist_group`` of its variant. xdist implements that mark by appending ``@group`` to the node
id during collection, which pytest 9.2 no longer lets it do: the groups are then silently
ignored and a variant's cases spread over workers, each starting its own server
(https://github.com/pytest-dev/pytest-xdist/issues/1386). `VariantScheduling` groups by the
variant named in the test id instead, which works with either version; ``conftest.py`` installs
it for ``--dist loadgroup``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

__all__ = ("VariantScheduling", "variant_scope")


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


class VariantScheduling(LoadGroupScheduling):  # type: ignore[misc]
    """`LoadGroupScheduling` whose groups are the matrix's variants."""

    def __init__(self, config: Any, log: Any = None, *, variants: Sequence[str] = ()) -> None:
        super().__init__(config, log)
        self.variants = list(variants)

    def _split_scope(self, nodeid: str) -> str:
        scope = variant_scope(nodeid, self.variants)
        return f"variant:{scope}" if scope is not None else super()._split_scope(nodeid)

"""How a figure of `make bench` reads in its tables: a number, a ratio pair, or "n/a"."""

from __future__ import annotations

from typing import Any

__all__ = (
    "cpu_with_wall",
    "formatted",
)


def cpu_with_wall(row: dict[str, Any], key: str) -> str:
    """A ratio of server CPU with the same ratio of wall-clock rates in brackets."""
    return f"{formatted(row[key], '.2f', 'x')} ({formatted(row['wall'][key], '.2f')})"


def formatted(value: float | None, spec: str, unit: str = "") -> str:
    """``value`` formatted by ``spec``, then ``unit``; "n/a" where a run gave no figure (a zero
    or missing time makes a ratio infinite, which results.json stores as null)."""
    return "n/a" if value is None else format(value, spec) + unit

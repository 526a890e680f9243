"""Per-variant expectations: which observation each case should give on each server.

The data lives in ``conformance/expectations.toml``, one table per variant and case::

    [granian."2.3"]
    expected = "crash"
    note = "a repeated header name panics the worker"
    issue = "https://github.com/..."

Where a variant has no entry for a case, a MUST or SHOULD case is expected to conform and an
INFO case to show its ``default`` cell. A known server bug is therefore an *expected* result
with a note (and the upstream issue, where one exists); only an unexpected result fails the run,
as web-platform-tests do with their per-product expectations.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.cases import Case, Observation

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = ("CONFORMS", "DEFAULT_PATH", "Expectation", "Expectations")

#: The expectation of a MUST or SHOULD case with no entry: the requirement is met.
CONFORMS = "conforms"
DEFAULT_PATH = Path(__file__).with_name("expectations.toml")


@dataclass(frozen=True)
class Expectation:
    """The expected cell of one case on one variant (``conforms`` for "meets the level")."""

    expected: str
    note: str = ""
    issue: str = ""
    listed: bool = False

    def met_by(self, observation: Observation) -> bool:
        """Whether ``observation`` is the expected result."""
        if observation.cell == "n/a" and not self.listed:
            # The case does not apply here (no extension, another protocol).
            return True
        if self.expected == CONFORMS:
            # ``n/a`` (conforms None) is never a failure of the requirement.
            return observation.conforms is not False
        return observation.cell == self.expected


class Expectations:
    """The expectations of every variant, read from a TOML file."""

    def __init__(
        self, data: Mapping[str, Mapping[str, Mapping[str, Any]]], source: str = ""
    ) -> None:
        self.source = source
        self._data: dict[str, dict[str, Expectation]] = {}
        for variant, cases in data.items():
            if not isinstance(cases, Mapping):
                raise ValueError(f"{source}: [{variant}] must be a table of cases")
            table = self._data.setdefault(variant, {})
            for case_id, entry in cases.items():
                if not isinstance(entry, Mapping) or not isinstance(entry.get("expected"), str):
                    raise ValueError(f'{source}: [{variant}."{case_id}"] needs expected = "..."')
                unknown = set(entry) - {"expected", "note", "issue"}
                if unknown:
                    raise ValueError(
                        f'{source}: [{variant}."{case_id}"] has unknown keys {sorted(unknown)}'
                    )
                table[str(case_id)] = Expectation(
                    expected=entry["expected"],
                    note=str(entry.get("note", "")),
                    issue=str(entry.get("issue", "")),
                    listed=True,
                )

    @classmethod
    def load(cls, path: str | Path | None = None) -> Expectations:
        """Read ``path`` (default ``conformance/expectations.toml``)."""
        file = Path(path) if path is not None else DEFAULT_PATH
        with file.open("rb") as handle:
            return cls(tomllib.load(handle), source=str(file))

    def for_case(self, variant: str, case: Case) -> Expectation:
        """The expectation of ``case`` on ``variant``."""
        listed = self._data.get(variant, {}).get(case.id)
        if listed is not None:
            return listed
        if case.level == "INFO":
            return Expectation(case.default)
        return Expectation(CONFORMS)

    def variants(self) -> list[str]:
        """The variants the file has entries for."""
        return list(self._data)

    def entries(self, variant: str) -> dict[str, Expectation]:
        """The listed entries of ``variant``, by case id."""
        return dict(self._data.get(variant, {}))

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

A behaviour that changed between releases of the server carries the versions it holds for:
``until`` is the first release without it (where it was fixed), ``since`` the first release with
it. A case may then list several entries, as an array of tables::

    [[granian."2.3"]]
    expected = "crash"
    until = "2.8.9"

    [[granian."2.3"]]
    expected = "order changed"
    since = "2.8.9"

The entry whose range holds the variant's installed version applies. Where none does and one
was fixed before that version, the case is expected to conform, and its note says from which
release (so the matrix page lists the fix among the known deviations).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from conformance.cases import Case, Observation

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = ("CONFORMS", "DEFAULT_PATH", "Expectation", "Expectations", "release")

#: The expectation of a MUST or SHOULD case with no entry: the requirement is met.
CONFORMS = "conforms"
DEFAULT_PATH = Path(__file__).with_name("expectations.toml")


def release(version: str) -> tuple[int, ...]:
    """The release numbers of ``version`` ("0.55.0" -> (0, 55, 0)), to compare versions."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    if match is None:
        raise ValueError(f"not a release version: {version!r}")
    numbers = tuple(int(part) for part in match.group().split("."))
    # 0.55 and 0.55.0 are the same release.
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers = numbers[:-1]
    return numbers


@dataclass(frozen=True)
class Expectation:
    """The expected cell of one case on one variant (``conforms`` for "meets the level")."""

    expected: str
    note: str = ""
    issue: str = ""
    listed: bool = False
    #: The first release of the server that behaves so ("" for every release before ``until``).
    since: str = ""
    #: The first release of the server that no longer behaves so ("" while it still does).
    until: str = ""

    def met_by(self, observation: Observation) -> bool:
        """Whether ``observation`` is the expected result."""
        if observation.cell == "n/a" and not self.listed:
            # The case does not apply here (no extension, another protocol).
            return True
        if self.expected == CONFORMS:
            # ``n/a`` (conforms None) is never a failure of the requirement.
            return observation.conforms is not False
        return observation.cell == self.expected

    def holds_for(self, version: str | None) -> bool:
        """Whether the entry applies to ``version`` of the server (None: the newest release)."""
        if version is None:
            return not self.until
        if self.since and release(version) < release(self.since):
            return False
        return not (self.until and release(version) >= release(self.until))


_KEYS = {"expected", "note", "issue", "since", "until"}


def _entry(source: str, variant: str, case_id: str, entry: object) -> Expectation:
    where = f'{source}: [{variant}."{case_id}"]'
    if not isinstance(entry, Mapping) or not isinstance(entry.get("expected"), str):
        raise ValueError(f'{where} needs expected = "..."')
    unknown = set(entry) - _KEYS
    if unknown:
        raise ValueError(f"{where} has unknown keys {sorted(unknown)}")
    for key in ("since", "until"):
        if key in entry:
            try:
                release(str(entry[key]))
            except ValueError as exc:
                raise ValueError(f"{where} {key}: {exc}") from None
    return Expectation(
        expected=entry["expected"],
        note=str(entry.get("note", "")),
        issue=str(entry.get("issue", "")),
        listed=True,
        since=str(entry.get("since", "")),
        until=str(entry.get("until", "")),
    )


class Expectations:
    """The expectations of every variant, read from a TOML file."""

    def __init__(
        self, data: Mapping[str, Mapping[str, Mapping[str, Any] | Sequence[Any]]], source: str = ""
    ) -> None:
        self.source = source
        self._data: dict[str, dict[str, list[Expectation]]] = {}
        for variant, cases in data.items():
            if not isinstance(cases, Mapping):
                raise ValueError(f"{source}: [{variant}] must be a table of cases")
            table = self._data.setdefault(variant, {})
            for case_id, entry in cases.items():
                entries = entry if isinstance(entry, list) else [entry]
                if not entries:
                    raise ValueError(f'{source}: [{variant}."{case_id}"] has no entry')
                table[str(case_id)] = [
                    _entry(source, variant, str(case_id), item) for item in entries
                ]

    @classmethod
    def load(cls, path: str | Path | None = None) -> Expectations:
        """Read ``path`` (default ``conformance/expectations.toml``)."""
        file = Path(path) if path is not None else DEFAULT_PATH
        with file.open("rb") as handle:
            return cls(tomllib.load(handle), source=str(file))

    def for_case(self, variant: str, case: Case, version: str | None = None) -> Expectation:
        """The expectation of ``case`` on ``variant`` at ``version`` of its server.

        ``version`` None (unknown) takes the entries that hold for the newest release.
        """
        listed = self._data.get(variant, {}).get(case.id, [])
        for entry in listed:
            if entry.holds_for(version):
                return entry
        default = Expectation(case.default if case.level == "INFO" else CONFORMS)
        fixed = [entry for entry in listed if entry.until]
        if fixed:
            last = max(fixed, key=lambda entry: release(entry.until))
            return replace(
                default,
                note=f"fixed in {last.until} (before: {last.expected!r}, {last.note})",
                issue=last.issue,
            )
        return default

    def variants(self) -> list[str]:
        """The variants the file has entries for."""
        return list(self._data)

    def entries(self, variant: str) -> dict[str, list[Expectation]]:
        """The listed entries of ``variant``, by case id (one per range of versions)."""
        return {case_id: list(items) for case_id, items in self._data.get(variant, {}).items()}

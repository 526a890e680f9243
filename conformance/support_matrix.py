"""The tracked support matrix: ``docs/support-matrix.md`` and the record it is made from.

A run of the matrix writes only to ``conformance/results/`` (ignored by git). The tracked page is
written by ``make support-matrix`` alone: a whole run, then the page and, beside it, its record
(``docs/support-matrix.json``): what was measured (each cell, whether it meets its level, the
status) without dates, timings, details or server output, so that a diff of the record shows
what changed on the wire and nothing else. What was *expected* is not measured: it comes from
``conformance/expectations.toml`` when the page is rendered.

The page is rendered from the record and the expectations (`page_of`, through
`conformance.page.render`), never from anything else, so a test can tell a stale page
without a server: rendered again, it must equal the tracked page, whatever its date
(`stale_lines`). ``python -m conformance.support_matrix`` renders the page again, for a change of
the expectations, of the catalogue's text or of the page's layout (a change of results needs
``make support-matrix``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance.cases import CASES, Observation
from conformance.expectations import Expectations
from conformance.page import render

__all__ = (
    "PAGE",
    "RECORD",
    "date_of",
    "missing_results",
    "page_of",
    "record_of",
    "record_path",
    "stale_lines",
    "write",
)

ROOT = Path(__file__).resolve().parent.parent
#: The tracked page and its record.
PAGE = ROOT / "docs" / "support-matrix.md"
RECORD = PAGE.with_suffix(".json")

#: What the record keeps of the run's metadata, of each server and of each result: what the
#: page shows, and nothing that changes from one run to the next of the same servers.
META_FIELDS = ("implementation", "python", "platform", "packages")
SERVER_FIELDS = ("description", "version", "protocol", "failure")
RESULT_FIELDS = ("outcome", "conforms", "status")
#: Stands for the date while a page is compared with its record.
_DATE = "\x00date\x00"


def record_path(page: Path) -> Path:
    """The record beside ``page`` (``support-matrix.md`` -> ``support-matrix.json``)."""
    return page.with_suffix(".json")


def record_of(index: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a run's ``index.json``: no date, timing, detail, log or start count."""
    return {
        "meta": {key: index["meta"].get(key) for key in META_FIELDS},
        "servers": {
            name: {key: server.get(key) for key in SERVER_FIELDS}
            for name, server in index["servers"].items()
        },
        "results": {
            name: {
                case_id: {key: result.get(key) for key in RESULT_FIELDS}
                for case_id, result in cases.items()
            }
            for name, cases in index["results"].items()
        },
    }


def _results(
    record: Mapping[str, Any], expectations: Expectations
) -> dict[str, dict[str, dict[str, Any]]]:
    """The record's results, each with its expectation (``expected``, ``as_expected``, ``note``,
    ``issue``) as ``expectations`` has it; results of cases the catalogue no longer has are left
    out."""
    cases = {case.id: case for case in CASES}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name, measured in record["results"].items():
        results[name] = {}
        for case_id, result in measured.items():
            case = cases.get(case_id)
            if case is None:
                continue
            expectation = expectations.for_case(name, case)
            observation = Observation(str(result["outcome"]), result["conforms"])
            results[name][case_id] = {
                **result,
                "level": case.level,
                "expected": expectation.expected,
                "as_expected": expectation.met_by(observation),
                "note": expectation.note,
                "issue": expectation.issue,
            }
    return results


def _index_of(
    record: Mapping[str, Any], date: str, expectations: Expectations | None
) -> dict[str, Any]:
    """What `render` reads, from a record, a date and the expectations."""
    return {
        "meta": {**record["meta"], "date": date},
        "servers": record["servers"],
        "cases": {
            case.id: {
                "title": case.title,
                "level": case.level,
                "description": case.description,
                "reference": case.reference,
            }
            for case in CASES
        },
        "results": _results(record, expectations or Expectations({})),
    }


def page_of(record: Mapping[str, Any], date: str, expectations: Expectations | None) -> str:
    """The support matrix page of ``record`` under ``expectations``, dated ``date``."""
    return render(_index_of(record, date, expectations), expectations)


def write(
    index: Mapping[str, Any], page: Path, expectations: Expectations | None
) -> tuple[Path, Path]:
    """Write the page and its record for a whole run's ``index``; return both paths."""
    record = record_of(index)
    page.parent.mkdir(parents=True, exist_ok=True)
    record_file = record_path(page)
    record_file.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    page.write_text(page_of(record, str(index["meta"]["date"]), expectations))
    return page, record_file


def stale_lines(
    page: str, record: Mapping[str, Any], expectations: Expectations | None
) -> list[str]:
    """The lines where ``page`` differs from the page of ``record`` (any date), or none."""
    rendered = page_of(record, _DATE, expectations).splitlines()
    lines = page.splitlines()
    differ = []
    for n in range(max(len(rendered), len(lines))):
        want = rendered[n] if n < len(rendered) else "(no line)"
        got = lines[n] if n < len(lines) else "(no line)"
        if _DATE in want:
            before, _, after = want.partition(_DATE)
            pattern = re.escape(before) + r".+" + re.escape(after)
            if re.fullmatch(pattern, got):
                continue
        elif want == got:
            continue
        differ.append(f"line {n + 1}: page {got!r}, record {want!r}")
    return differ


def missing_results(record: Mapping[str, Any], variants: list[str]) -> list[str]:
    """The (variant, case) pairs of the built-in variants and the catalogue the record lacks."""
    results = record["results"]
    return [
        f"{name} {case.id}"
        for name in variants
        for case in CASES
        if case.id not in results.get(name, {})
    ]


def date_of(page: str, record: Mapping[str, Any], expectations: Expectations | None) -> str | None:
    """The date written in ``page``, where the page of ``record`` puts it (None if absent)."""
    for want in page_of(record, _DATE, expectations).splitlines():
        if _DATE in want:
            before, _, after = want.partition(_DATE)
            pattern = re.escape(before) + r"(.+)" + re.escape(after)
            for line in page.splitlines():
                found = re.fullmatch(pattern, line)
                if found:
                    return found.group(1)
    return None


def main(argv: list[str]) -> int:
    """Render the page again from its record (no server is started)."""
    page = Path(argv[0]) if argv else PAGE
    record = json.loads(record_path(page).read_text())
    expectations = Expectations.load()
    current = page.read_text() if page.exists() else ""
    if not stale_lines(current, record, expectations):
        print(f"{page} is up to date with {record_path(page).name}")
        return 0
    date = date_of(current, record, expectations) or "(rendered again from the record)"
    page.write_text(page_of(record, date, expectations))
    print(f"{page} rendered again from {record_path(page).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

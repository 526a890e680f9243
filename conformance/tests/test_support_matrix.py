"""A run leaves the tree clean; the tracked support matrix is never stale against its record."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance.__main__ import arguments
from conformance.cases import CASES
from conformance.expectations import Expectations
from conformance.servers import VARIANTS
from conformance.support_matrix import (
    PAGE,
    RECORD,
    date_of,
    missing_results,
    page_of,
    record_of,
    stale_lines,
    write,
)

pytestmark = pytest.mark.selftest

ROOT = Path(__file__).resolve().parents[2]
FIX = (
    "run `make support-matrix` (for a change of the page's text or layout only, "
    "`python -m conformance.support_matrix`)"
)


def index(date: str = "2026-12-04 18:00 UTC", duration: float = 1.5) -> dict[str, Any]:
    """A small run's index.json, with what changes from one run to the next."""
    return {
        "meta": {
            "date": date,
            "python": "3.12.1",
            "implementation": "CPython",
            "platform": "linux",
            "packages": {"h11": "0.16.0"},
            "wall_time": duration * 20,
        },
        "servers": {
            "srv": {
                "description": "srv",
                "version": "1.0",
                "protocol": "http/1.1",
                "command": "srv {app}",
                "starts": 2,
                "crashes": 1,
                "failure": None,
            }
        },
        "cases": {},
        "results": {
            "srv": {
                case.id: {
                    "variant": "srv",
                    "case": case.id,
                    "outcome": "403",
                    "expected": "conforms",
                    "as_expected": True,
                    "conforms": True,
                    "level": case.level,
                    "status": 403,
                    "detail": f"raw bytes of {date}",
                    "duration": duration,
                    "note": "",
                    "issue": "",
                    "log": f"server output at {date}",
                }
                for case in CASES[:5]
            }
        },
    }


def test_a_run_writes_to_ignored_paths_only() -> None:
    args = arguments([])
    assert "--support-matrix" not in args
    # The results directory (conftest.py's default) is ignored by git.
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "conformance/results/index.json"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0
    assert "--list-skips" in arguments(["-v"])
    assert "-v" not in arguments(["-v"])


def test_the_record_keeps_no_date_timing_detail_or_log() -> None:
    first = record_of(index("2026-12-04 18:00 UTC", 1.5))
    second = record_of(index("2027-01-01 09:30 UTC", 7.0))
    assert first == second
    text = json.dumps(first)
    for volatile in ("2026", "duration", "detail", "log", "starts", "crashes", "wall_time"):
        assert volatile not in text
    # Nor what was expected: the expectations file has that, when the page is rendered.
    for expected in ("expected", "as_expected", "note", "issue"):
        assert f'"{expected}"' not in text


def test_a_page_is_stale_when_a_result_changes_not_when_the_date_does(tmp_path: Path) -> None:
    expectations = Expectations.load()
    page, record_file = write(index(), tmp_path / "support-matrix.md", expectations)
    assert record_file == tmp_path / "support-matrix.json"
    record = json.loads(record_file.read_text())
    text = page.read_text()
    assert "2026-12-04 18:00 UTC" in text
    assert stale_lines(text, record, expectations) == []
    assert date_of(text, record, expectations) == "2026-12-04 18:00 UTC"
    # Another date: the same results, not stale.
    redated = page_of(record, "2030-01-01 00:00 UTC", expectations)
    assert stale_lines(redated, record, expectations) == []
    # One result changed in the record: stale, and the line says where.
    changed = copy.deepcopy(record)
    changed["results"]["srv"]["2.1"]["outcome"] = "crash"
    changed["results"]["srv"]["2.1"]["conforms"] = False
    stale = stale_lines(text, changed, expectations)
    assert len(stale) >= 1
    assert "crash" in "".join(stale)
    # A page edited by hand: stale.
    assert stale_lines(text.replace("403", "401", 1), record, expectations)
    # The expectations changed (a result now expected otherwise): stale as well.
    listed = Expectations({"srv": {"2.1": {"expected": "crash", "note": "a known crash"}}})
    assert stale_lines(text, record, listed)
    assert "a known crash" not in text
    assert "a known crash" in page_of(record, "today", listed)


def test_the_tracked_page_matches_its_record() -> None:
    record = json.loads(RECORD.read_text())
    stale = stale_lines(PAGE.read_text(), record, Expectations.load())
    assert not stale, f"{PAGE.name} is stale against {RECORD.name}: {FIX}\n" + "\n".join(stale[:10])


def test_the_record_covers_every_built_in_variant_and_case() -> None:
    record = json.loads(RECORD.read_text())
    missing = missing_results(record, list(VARIANTS))
    assert not missing, f"{RECORD.name} lacks {len(missing)} results ({missing[:5]}): {FIX}"

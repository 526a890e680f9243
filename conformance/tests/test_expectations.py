"""Only unexpected results fail the run: a broken expectation makes it exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.cases import Observation, case_by_id
from conformance.expectations import CONFORMS, Expectations

pytestmark = pytest.mark.selftest

ROOT = Path(__file__).resolve().parents[2]


def run_matrix(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, object]]:
    results = tmp_path / "results"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "conformance" / "test_matrix.py"),
            "-p",
            "no:cacheprovider",
            "--assert=plain",
            "-n",
            "0",
            "--results-dir",
            str(results),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    index_file = results / "index.json"
    index = json.loads(index_file.read_text()) if index_file.exists() else {}
    return process.returncode, process.stdout + process.stderr, index


def test_defaults_and_listed_entries() -> None:
    expectations = Expectations(
        {"srv": {"3.1": {"expected": "500", "note": "known", "issue": "https://x"}}}
    )
    must = case_by_id("3.1")
    info = case_by_id("2.7")
    assert expectations.for_case("srv", must).expected == "500"
    assert expectations.for_case("other", must).expected == CONFORMS
    assert expectations.for_case("other", info).expected == info.default
    default = expectations.for_case("other", must)
    assert default.met_by(Observation("403", True))
    assert not default.met_by(Observation("500", False))
    assert default.met_by(Observation("n/a", None))
    assert expectations.for_case("srv", must).met_by(Observation("500", False))
    assert not expectations.for_case("srv", must).met_by(Observation("403", True))


@pytest.mark.parametrize(
    "bad",
    [
        {"srv": {"3.1": {"note": "no expected"}}},
        {"srv": {"3.1": {"expected": "403", "typo": 1}}},
        {"srv": "not a table"},
    ],
)
def test_a_malformed_file_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="srv"):
        Expectations(bad)  # type: ignore[arg-type]


def test_the_shipped_file_loads() -> None:
    assert "granian" in Expectations.load().variants()


def test_a_broken_expectation_makes_the_run_exit_1(tmp_path: Path) -> None:
    selection = ["--variants", "uvicorn-wsproto", "-k", "3.1 or 3.2"]
    status, output, index = run_matrix(tmp_path, *selection)
    assert status == 0, output
    broken = tmp_path / "broken.toml"
    broken.write_text('[uvicorn-wsproto."3.1"]\nexpected = "500"\nnote = "deliberately wrong"\n')
    status, output, index = run_matrix(tmp_path, *selection, "--expectations", str(broken))
    assert status == 1, output
    assert "✗ uvicorn-wsproto · 3.1 close-403 · 403 · expected 500" in output
    results = index["results"]
    assert isinstance(results, dict)
    record = results["uvicorn-wsproto"]["3.1"]
    assert (record["outcome"], record["expected"], record["as_expected"]) == ("403", "500", False)
    assert results["uvicorn-wsproto"]["3.2"]["as_expected"] is True


def test_a_server_that_cannot_start_is_reported_in_its_column(tmp_path: Path) -> None:
    ghost = f"ghost={sys.executable} -c 'raise SystemExit(7)' {{app}} {{port}}"
    status, output, index = run_matrix(
        tmp_path, "--server", ghost, "--variants", "ghost", "-k", "3.1 or 1.1"
    )
    assert status == 1, output
    results = index["results"]
    assert isinstance(results, dict)
    assert results["ghost"]["3.1"]["outcome"] == "no start"
    assert results["ghost"]["1.1"]["outcome"] == "no start"
    assert "status 7" in results["ghost"]["3.1"]["detail"]


VERSIONED: dict[str, dict[str, Any]] = {
    "srv": {
        "3.1": [
            {"expected": "crash", "until": "2.8.9", "note": "panics", "issue": "https://x"},
            {"expected": "500", "since": "2.8.9", "until": "3.0"},
        ],
        "3.3": {"expected": "hang", "until": "0.55", "note": "old"},
    }
}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.8.7", "crash"),
        ("2.8.9", "500"),
        ("2.9.0rc1", "500"),
        ("3.0.0", CONFORMS),
        ("3.1", CONFORMS),
        # An unknown version takes what holds for the newest release.
        (None, CONFORMS),
    ],
)
def test_an_entry_holds_for_its_versions(version: str | None, expected: str) -> None:
    expectations = Expectations(VERSIONED)
    assert expectations.for_case("srv", case_by_id("3.1"), version).expected == expected


def test_a_fixed_deviation_says_from_which_version() -> None:
    expectations = Expectations(VERSIONED)
    fixed = expectations.for_case("srv", case_by_id("3.3"), "0.55.0")
    assert fixed.expected == CONFORMS
    assert not fixed.listed
    assert fixed.note.startswith("fixed in 0.55 ")
    assert "'hang'" in fixed.note
    before = expectations.for_case("srv", case_by_id("3.3"), "0.54.0")
    assert (before.expected, before.listed) == ("hang", True)


@pytest.mark.parametrize(
    "bad",
    [
        {"srv": {"3.1": [{"expected": "500", "until": "soon"}]}},
        {"srv": {"3.1": []}},
        {"srv": {"3.1": [{"expected": "500"}, {"note": "no expected"}]}},
    ],
)
def test_a_malformed_version_range_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="srv"):
        Expectations(bad)  # type: ignore[arg-type]

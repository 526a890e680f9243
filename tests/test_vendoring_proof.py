"""The vendoring proof's own logic: its expectations, how it judges a run, and the plugin that
records a suite's outcomes. (``make vendoring-proof`` itself downloads Starlette; CI runs it.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vendoring.proof import (
    PATCH,
    VENDORED_NAME,
    Expectation,
    Run,
    expected_failures,
    failures,
    load_expectations,
    unexpected,
)

VENDORING = Path(__file__).parent.parent / "vendoring"


def test_every_expected_failure_has_its_reason() -> None:
    expectations = load_expectations()
    assert expectations
    # The patch's own failures are the tests of the old message sequence, and only those.
    patched = [e for e in expectations if e.when == "patched"]
    assert patched
    assert all("sequence" in e.reason for e in patched)
    assert all(e.test.startswith("tests/") for e in expectations)


def _write(tmp_path: Path, entries: list[dict[str, str]], version: str = "1.10.0") -> Path:
    path = tmp_path / "expected.json"
    path.write_text(json.dumps({"starlette": version, "expected_failures": entries}))
    return path


GOOD = {"test": "tests/test_a.py::test_b[trio]", "when": "patched", "reason": "why"}
BAD_EXPECTATIONS = [
    ("no-reason", [{**GOOD, "reason": " "}], "has no reason"),
    ("bad-when", [{**GOOD, "when": "sometimes"}], "when must be one of"),
    ("not-a-test-id", [{**GOOD, "test": "test_b"}], "not a pytest test id"),
    ("twice", [GOOD, {**GOOD, "when": "as-root"}], "listed twice"),
]


@pytest.mark.parametrize(
    ("entries", "message"),
    [case[1:] for case in BAD_EXPECTATIONS],
    ids=[case[0] for case in BAD_EXPECTATIONS],
)
def test_a_bad_expectation_is_refused(
    tmp_path: Path, entries: list[dict[str, str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_expectations(_write(tmp_path, entries))


def test_expectations_for_another_starlette_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"for Starlette 1\.9\.0, not 1\.10\.0"):
        load_expectations(_write(tmp_path, [GOOD], version="1.9.0"))


EXPECTED = [
    Expectation("t::patched", "patched", "old sequence"),
    Expectation("t::root", "as-root", "root reads anything"),
]
RUNS: list[tuple[Run, bool, set[str]]] = [
    ("baseline", False, set()),
    ("baseline", True, {"t::root"}),
    ("patched", False, {"t::patched"}),
    ("patched", True, {"t::patched", "t::root"}),
]


@pytest.mark.parametrize(("run", "as_root", "expected"), RUNS)
def test_which_failures_each_run_expects(run: Run, as_root: bool, expected: set[str]) -> None:
    assert expected_failures(EXPECTED, run, as_root=as_root) == expected


def test_failing_outcomes() -> None:
    outcomes = {
        "a": "passed",
        "b": "failed",
        "c": "error",
        "d": "skipped",
        "e": "xfailed",
        "f": "xpassed",
    }
    assert failures(outcomes) == {"b", "c", "f"}


def test_a_run_is_judged_in_both_directions() -> None:
    ran = {"t::a", "t::b", "t::c"}
    assert unexpected({"t::a"}, {"t::a"}, ran) == []
    assert unexpected({"t::a"}, {"t::a", "t::b"}, ran) == ["failed, and is not expected to: t::b"]
    assert unexpected({"t::a", "t::c"}, {"t::a"}, ran) == ["expected to fail, and did not: t::c"]
    assert unexpected({"t::gone"}, set(), ran) == ["expected to fail, and did not run: t::gone"]


def test_the_patch_imports_the_copy_under_the_name_the_proof_vendors_it() -> None:
    patch = PATCH.read_text(encoding="utf-8")
    # One file changes; the text above its diff says what the patch does and why.
    assert patch.count("\n--- a/") == 1
    assert "\n--- a/starlette/responses.py\n+++ b/starlette/responses.py\n" in patch
    assert f"+from starlette.{VENDORED_NAME} import denial_send\n" in patch
    assert "+            send = denial_send(scope, send)\n" in patch


SUITE = """
import pytest

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown")

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup")

def test_passes():
    pass

def test_fails():
    assert False

def test_setup_error(broken_setup):
    pass

def test_teardown_error(broken_teardown):
    pass

def test_fails_and_teardown_error(broken_teardown):
    assert False

def test_skipped():
    pytest.skip("no")

@pytest.mark.xfail(reason="known", strict=False)
def test_xfailed():
    assert False

@pytest.mark.xfail(reason="known", strict=False)
def test_xpassed():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n == 1
"""


def test_the_plugin_records_every_outcome(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE)
    record = tmp_path / "outcomes.json"
    environment = {
        **os.environ,
        "PYTHONPATH": str(VENDORING),
        "VENDORING_PROOF_OUTCOMES": str(record),
        "VENDORING_PROOF_MODULES": "json,not_imported",
        # This venv's other plugins have nothing to do with the plugin under test.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "outcomes_plugin", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    written = json.loads(record.read_text())
    assert written["exitstatus"] == 1
    assert written["outcomes"] == {
        "test_suite.py::test_passes": "passed",
        "test_suite.py::test_fails": "failed",
        "test_suite.py::test_setup_error": "error",
        "test_suite.py::test_teardown_error": "error",
        "test_suite.py::test_fails_and_teardown_error": "failed",
        "test_suite.py::test_skipped": "skipped",
        "test_suite.py::test_xfailed": "xfailed",
        "test_suite.py::test_xpassed": "xpassed",
        "test_suite.py::test_param[1]": "passed",
        "test_suite.py::test_param[2]": "failed",
    }
    assert written["modules"] == {"json": json.__file__}

"""A pytest plugin that writes each test's outcome to a JSON file, for `vendoring.proof`.

Loaded into a framework's own suite with ``-p outcomes_plugin`` (this folder on ``PYTHONPATH``,
so that nothing else of the project shadows the suite's own modules); the file is named by
the ``VENDORING_PROOF_OUTCOMES`` environment variable. It records, by test id, ``passed``,
``failed``, ``error`` (a failure outside the test's call: in setup or teardown), ``skipped``,
``xfailed`` or ``xpassed``, and where the framework's modules were imported from, so that the
proof can tell that the suite ran against the unpacked, patched tree and its vendored copy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

__all__ = ("pytest_runtest_logreport", "pytest_sessionfinish")

_OUTCOMES: dict[str, str] = {}
#: Once a test has one of these, a later phase cannot make it better.
_FINAL = frozenset(("failed", "error"))


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xpassed" if report.passed else "xfailed"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "skipped"
    return "passed"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the worst outcome of a test's phases; the call phase says passed or xfailed."""
    if _OUTCOMES.get(report.nodeid) in _FINAL:
        return
    outcome = _outcome(report)
    if report.when == "call" or outcome != "passed" or report.nodeid not in _OUTCOMES:
        _OUTCOMES[report.nodeid] = outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the outcomes, pytest's exit status and the modules' files."""
    modules = {
        name: getattr(module, "__file__", None)
        for name, module in sorted(sys.modules.items())
        if name in os.environ.get("VENDORING_PROOF_MODULES", "").split(",")
    }
    record = {"exitstatus": int(exitstatus), "outcomes": _OUTCOMES, "modules": modules}
    path = Path(os.environ["VENDORING_PROOF_OUTCOMES"])
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")

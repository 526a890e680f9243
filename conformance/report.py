"""The report: one progress line, the summary in the terminal, index.json and Markdown.

`ConformanceReport` is a small pytest plugin registered by ``conformance/conftest.py`` in the
process that sees every result (the xdist controller, or the only process without xdist). Each
test attaches its record to ``user_properties`` (they travel from the xdist workers), so the
plugin needs nothing but the reports. It owns the terminal of a matrix run: the matrix tests
print no letters and xdist no worker status, one progress line is rewritten in place (on a
TTY; printed once at the end otherwise), and the summary of `conformance.terminal` closes the
run (``--matrix`` adds the full matrix, ``--list-skips`` or ``-v`` the skipped cases). It writes:

- ``<results-dir>/index.json``: ``{"meta": ..., "servers": {variant: ...}, "results":
  {variant: {case: {outcome, expected, status, detail, duration, ...}}}}``;
- ``<results-dir>/matrix.md``;
- with ``--support-matrix PATH`` (``make support-matrix``), after a whole run only, the page at
  PATH and its record beside it (`conformance.support_matrix`).
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.cases import CASES, Case
from conformance.expectations import Expectation, Expectations
from conformance.page import render
from conformance.support_matrix import write
from conformance.terminal import progress_line, summary_lines

if TYPE_CHECKING:
    from conformance.runner import CaseResult, ServerHandle
    from conformance.servers import Variant

__all__ = (
    "EXPECTATIONS_KEY",
    "RECORD_KEY",
    "ConformanceReport",
    "markdown",
    "record_of",
)

RECORD_KEY = "conformance"
#: Where conftest.py keeps the run's expectations, for the report page.
EXPECTATIONS_KEY = pytest.StashKey[Expectations]()
#: The least time between two rewrites of the progress line.
PROGRESS_EVERY = 0.1


def record_of(
    server: ServerHandle, case: Case, result: CaseResult, expectation: Expectation
) -> dict[str, Any]:
    """The JSON record of one case on one variant."""
    observation = result.observation
    return {
        "variant": server.variant.name,
        "case": case.id,
        "outcome": observation.cell,
        "expected": expectation.expected,
        "as_expected": expectation.met_by(observation),
        "conforms": observation.conforms,
        "level": case.level,
        "status": observation.status,
        "detail": observation.detail,
        "duration": round(result.duration, 3),
        "note": expectation.note,
        "issue": expectation.issue,
        "log": result.log,
        "server": server.info(),
    }


def _versions() -> dict[str, str]:
    found = {}
    for dist in ("asgi-ws-deny", "websockets", "wsproto", "h11", "h2", "trio", "anyio"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def _variant_of(nodeid: str, names: Sequence[str]) -> str | None:
    param = nodeid.rpartition("[")[2]
    for name in sorted(names, key=len, reverse=True):
        if param.startswith(f"{name}-"):
            return name
    return None


#: What each of a variant's server handles counts; the variant's count is their sum.
COUNTS = ("starts", "crashes", "hangs")


def _merged(handles: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One variant's server info from its handles' (a shard each): the counts added up, the
    first failure, the rest as the first handle has it."""
    if not handles:
        return {}
    info = dict(handles[0])
    for key in COUNTS:
        if any(key in handle for handle in handles):
            info[key] = sum(int(handle.get(key) or 0) for handle in handles)
    if any("failure" in handle for handle in handles):
        info["failure"] = next((h["failure"] for h in handles if h.get("failure")), None)
    return info


class ConformanceReport:
    """Collects the records, shows progress, prints the matrix and writes the files."""

    def __init__(self, config: pytest.Config, variants: Sequence[Variant]) -> None:
        self.config = config
        self.variants = list(variants)
        self.names = [variant.name for variant in variants]
        self.records: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        #: The latest info of each of a variant's server handles (one per shard), by handle.
        self.servers: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.expected_counts: dict[str, int] = {}
        self.started = time.monotonic()
        self.first_result: dict[str, float] = {}
        self.done: set[str] = set()
        self._last_progress = 0.0
        self._progress_width = 0

    # -- collection: how many cases each variant has, for the progress lines -----------------

    def _count(self, nodeids: Sequence[str]) -> None:
        counts: dict[str, int] = defaultdict(int)
        for nodeid in nodeids:
            name = _variant_of(nodeid, self.names)
            if name is not None and "test_matrix.py" in nodeid:
                counts[name] += 1
        self.expected_counts = dict(counts)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.items:
            self._count([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        if not self.expected_counts:
            self._count(ids)

    # -- results -------------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = next((value for key, value in report.user_properties if key == RECORD_KEY), None)
        if record is None:
            if report.failed and report.when == "setup" and "test_matrix.py" in report.nodeid:
                name = _variant_of(report.nodeid, self.names)
                case_id = report.nodeid.rpartition("[")[2].removeprefix(f"{name}-").split("-")[0]
                if name is not None:
                    self._add(
                        name,
                        {
                            "variant": name,
                            "case": case_id,
                            "outcome": "error",
                            "expected": "?",
                            "as_expected": False,
                            "conforms": False,
                            "level": "?",
                            "status": None,
                            "detail": str(report.longrepr)[-2000:],
                            "duration": report.duration,
                        },
                    )
            return
        if report.when == "call" and isinstance(record, dict):
            self._add(str(record["variant"]), record)

    def _add(self, name: str, record: dict[str, Any]) -> None:
        self.first_result.setdefault(name, time.monotonic())
        self.records[name][record["case"]] = record
        if "server" in record:
            server = dict(record["server"])
            self.servers[name][str(server.pop("handle", ""))] = server
        total = self.expected_counts.get(name)
        finished = bool(total and len(self.records[name]) >= total and name not in self.done)
        if finished:
            self.done.add(name)
        self._progress(force=finished)

    def _progress_line(self) -> str:
        done = sum(len(cases) for cases in self.records.values())
        total = sum(self.expected_counts.values()) or done
        variants = len(self.expected_counts) or len(self.names)
        elapsed = time.monotonic() - self.started
        return progress_line(done, total, len(self.done), variants, elapsed)

    def _progress(self, *, force: bool = False) -> None:
        """Rewrite the progress line in place, on a TTY only (at most every PROGRESS_EVERY)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or not reporter.isatty():
            return
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        line = self._progress_line()
        reporter.rewrite(line + " " * max(self._progress_width - len(line), 0))
        self._progress_width = len(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, str] | None:
        """No letter per matrix test: the progress line says how far the run is. (The word
        stays, for pytest's own summary and its -v lines.)"""
        if "test_matrix.py::" not in report.nodeid:
            return None
        if report.when == "call" or report.skipped:
            return report.outcome, "", report.outcome.upper()
        if report.failed:
            return "error", "", "ERROR"
        return "", "", ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Silence xdist's worker status lines ("bringing up nodes..."): the progress line
        replaces them. A worker that goes down is still reported."""
        manager = self.config.pluginmanager
        dsession = manager.get_plugin("dsession")
        reporter = manager.get_plugin("terminalreporter")
        shown = manager.get_plugin("terminaldistreporter")
        if dsession is None or reporter is None or shown is None or not hasattr(dsession, "trdist"):
            return
        manager.unregister(shown)
        dsession.trdist = _QuietDistReporter(reporter)
        manager.register(dsession.trdist, "terminaldistreporter")

    # -- the end: matrix and files ---------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": sys.platform,
            "packages": _versions(),
            "wall_time": round(time.monotonic() - self.started, 1),
        }

    def _servers(self) -> dict[str, dict[str, Any]]:
        servers = {}
        for variant in self.variants:
            info = _merged(list(self.servers.get(variant.name, {}).values()))
            info.setdefault("description", variant.description)
            info.setdefault("version", variant.version())
            info.setdefault("protocol", variant.protocol)
            info.setdefault("command", " ".join(variant.command))
            servers[variant.name] = info
        return servers

    def index(self) -> dict[str, Any]:
        """The content of index.json."""
        ran = [name for name in self.names if name in self.records]
        results = {
            name: {
                case.id: {k: v for k, v in self.records[name][case.id].items() if k != "server"}
                for case in CASES
                if case.id in self.records[name]
            }
            for name in ran
        }
        return {
            "meta": self._meta(),
            "servers": {k: v for k, v in self._servers().items() if k in ran},
            "cases": {
                case.id: {
                    "slug": case.slug,
                    "title": case.title,
                    "description": case.description,
                    "reference": case.reference,
                    "level": case.level,
                }
                for case in CASES
            },
            "results": results,
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.records:
            return
        index = self.index()
        out = Path(self.config.getoption("--results-dir"))
        out.mkdir(parents=True, exist_ok=True)
        (out / "index.json").write_text(json.dumps(index, indent=2, sort_keys=False) + "\n")
        page = markdown(index, self.config.stash.get(EXPECTATIONS_KEY, None))
        (out / "matrix.md").write_text(page)
        self.written = [str(out / "index.json"), str(out / "matrix.md")]
        target = self.config.getoption("--support-matrix")
        if target and self._complete(index):
            expectations = self.config.stash.get(EXPECTATIONS_KEY, None)
            self.written += [str(path) for path in write(index, Path(target), expectations)]
        elif target:
            self.written.append(f"(not {_relative(target)}: only a whole run writes it)")

    def _complete(self, index: dict[str, Any]) -> bool:
        """Whether every built-in variant ran every case: only then is the page the matrix."""
        from conformance.servers import VARIANTS

        results = index["results"]
        return all(name in results and len(results[name]) == len(CASES) for name in VARIANTS)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records:
            return
        line = self._progress_line()
        if terminalreporter.isatty():
            terminalreporter.rewrite(line + " " * max(self._progress_width - len(line), 0))
            terminalreporter.write("\n")
        else:
            terminalreporter.write_line(line)
        terminalreporter.write_line("")
        lines = summary_lines(
            self.index(),
            written=[_relative(path) for path in getattr(self, "written", [])],
            list_skips=bool(
                self.config.getoption("--list-skips") or self.config.option.verbose > 0
            ),
            matrix=bool(self.config.getoption("--matrix")),
        )
        for text in lines:
            terminalreporter.write_line(text)


class _QuietDistReporter:
    """Stands in for xdist's terminal status reporter: no status lines, node failures only."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter

    def setstatus(self, *args: Any, **kwargs: Any) -> None:
        return None

    def ensure_show_status(self) -> None:
        return None

    def write_line(self, message: str) -> None:
        self.reporter.write_line(message)

    def rewrite(self, line: str, newline: bool = False) -> None:
        return None

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        if error:
            self.reporter.write_line(f"[{node.gateway.id}] node down: {error}")


def _relative(path: str) -> str:
    """``path`` relative to the working directory where it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def markdown(index: dict[str, Any], expectations: Expectations | None = None) -> str:
    """The support matrix page (`conformance.page`): a grid per case group, a section per server."""
    return render(index, expectations)

"""The report: live progress per server, the matrix in the terminal, index.json and Markdown.

`ConformanceReport` is a small pytest plugin registered by ``conformance/conftest.py`` in the
process that sees every result (the xdist controller, or the only process without xdist). Each
test attaches its record to ``user_properties`` (they travel from the xdist workers), so the
plugin needs nothing but the reports. It writes:

- ``<results-dir>/index.json``: ``{"meta": ..., "servers": {variant: ...}, "results":
  {variant: {case: {outcome, expected, status, detail, duration, ...}}}}``;
- ``<results-dir>/matrix.md``, and the same page to ``--support-matrix`` when given
  (``make conformance`` writes ``docs/support-matrix.md``).
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

if TYPE_CHECKING:
    from conformance.runner import CaseResult, ServerHandle
    from conformance.servers import Variant

__all__ = (
    "EXPECTATIONS_KEY",
    "RECORD_KEY",
    "ConformanceReport",
    "markdown",
    "record_of",
    "terminal_matrix",
)

RECORD_KEY = "conformance"
#: Where conftest.py keeps the run's expectations, for the report page.
EXPECTATIONS_KEY = pytest.StashKey[Expectations]()
#: Short column titles for the terminal matrix.
SHORT_NAMES = {
    "uvicorn-sansio": "uv-sansio",
    "uvicorn-legacy": "uv-legacy",
    "uvicorn-wsproto": "uv-wsproto",
    "hypercorn-asyncio": "hc-asyncio",
    "hypercorn-trio": "hc-trio",
    "hypercorn-h2": "hc-h2",
}
CELL_WIDTH = 20


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


class ConformanceReport:
    """Collects the records, shows progress, prints the matrix and writes the files."""

    def __init__(self, config: pytest.Config, variants: Sequence[Variant]) -> None:
        self.config = config
        self.variants = list(variants)
        self.names = [variant.name for variant in variants]
        self.records: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.servers: dict[str, dict[str, Any]] = {}
        self.expected_counts: dict[str, int] = {}
        self.started = time.monotonic()
        self.first_result: dict[str, float] = {}
        self.done: set[str] = set()

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
            self.servers[name] = record["server"]
        total = self.expected_counts.get(name)
        if total and len(self.records[name]) >= total and name not in self.done:
            self.done.add(name)
            self._progress(name)

    def _progress(self, name: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        records = self.records[name].values()
        order = {case.id: n for n, case in enumerate(CASES)}
        unexpected = sorted(
            (r["case"] for r in records if not r["as_expected"]), key=lambda c: order.get(c, 0)
        )
        server = self.servers.get(name, {})
        state = server.get("failure") or f"{len(records)} cases"
        crashes = f", {server.get('crashes')} crash(es)" if server.get("crashes") else ""
        verdict = "all as expected" if not unexpected else f"UNEXPECTED: {', '.join(unexpected)}"
        elapsed = time.monotonic() - self.started
        reporter.ensure_newline()
        reporter.write_line(
            f"  {name:<18} {state}{crashes}: {verdict}  [{elapsed:5.1f}s]",
            red=bool(unexpected),
            green=not unexpected,
        )

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
            info = dict(self.servers.get(variant.name, {}))
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
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            Path(target).write_text(page)
            self.written.append(str(target))
        elif target:
            self.written.append(f"(not {target}: only a full run of every variant writes it)")

    def _complete(self, index: dict[str, Any]) -> bool:
        """Whether every built-in variant ran every case: only then is the page the matrix."""
        from conformance.servers import VARIANTS

        results = index["results"]
        return all(name in results and len(results[name]) == len(CASES) for name in VARIANTS)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records:
            return
        index = self.index()
        terminalreporter.section("conformance matrix")
        for line in terminal_matrix(index):
            terminalreporter.write_line(line)
        unexpected = [
            (name, case_id, rec)
            for name, cases in index["results"].items()
            for case_id, rec in cases.items()
            if not rec["as_expected"]
        ]
        terminalreporter.write_line("")
        if unexpected:
            terminalreporter.write_line(f"{len(unexpected)} UNEXPECTED result(s):", red=True)
            for name, case_id, rec in unexpected:
                terminalreporter.write_line(
                    f"  {name} {case_id}: got {rec['outcome']!r}, expected {rec['expected']!r}",
                    red=True,
                )
        else:
            terminalreporter.write_line("every result as expected", green=True)
        for path in getattr(self, "written", []):
            terminalreporter.write_line(f"wrote {path}")
        cells = sum(len(cases) for cases in index["results"].values())
        case_ids = {case_id for cases in index["results"].values() for case_id in cases}
        terminalreporter.write_line(
            f"conformance: {cells} results, {len(index['results'])} variant(s) x "
            f"{len(case_ids)} case(s), wall time {time.monotonic() - self.started:.1f}s"
        )


def _mark(record: dict[str, Any]) -> str:
    cell = str(record["outcome"])
    if not record["as_expected"]:
        return f"X {cell}"
    if record["conforms"] is False:
        return f"{cell} *"
    return cell


def terminal_matrix(index: dict[str, Any]) -> list[str]:
    """The matrix as text lines: cases as rows, variants as columns."""
    names = list(index["results"])
    cells: dict[str, list[str]] = {}
    for case in CASES:
        row = []
        for name in names:
            record = index["results"][name].get(case.id)
            text = "" if record is None else _mark(record)
            if len(text) > CELL_WIDTH:
                text = text[: CELL_WIDTH - 1] + "~"
            row.append(text)
        if any(row):
            cells[case.id] = row
    widths = [
        max([len(SHORT_NAMES.get(name, name))] + [len(row[i]) for row in cells.values()])
        for i, name in enumerate(names)
    ]
    title_width = max(len(case.title) for case in CASES if case.id in cells) if cells else 10
    title_width = min(title_width, 34)
    header = f"{'case':<5} {'':<{title_width}} {'lvl':<4} " + " ".join(
        f"{SHORT_NAMES.get(name, name):<{w}}" for name, w in zip(names, widths, strict=True)
    )
    lines = [header, "-" * len(header)]
    for case in CASES:
        if case.id not in cells:
            continue
        title = case.title[:title_width]
        lines.append(
            f"{case.id:<5} {title:<{title_width}} {case.level[:4]:<4} "
            + " ".join(f"{c:<{w}}" for c, w in zip(cells[case.id], widths, strict=True))
        )
    versions = ", ".join(
        f"{name} {info.get('version') or 'custom'}" for name, info in index["servers"].items()
    )
    lines += [
        "",
        "X = unexpected (fails the run); * = does not meet the MUST/SHOULD level (known, expected)",
        f"versions: {versions}; Python {index['meta']['python']}",
    ]
    return lines


def markdown(index: dict[str, Any], expectations: Expectations | None = None) -> str:
    """The support matrix page (`conformance.page`): a grid per case group, a section per server."""
    return render(index, expectations)

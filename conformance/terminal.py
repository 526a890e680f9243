"""What ``make conformance`` prints: a summary a person reads in a terminal 100 columns wide.

Every function here takes the run's ``index.json`` content (`ConformanceReport.index`) and
returns lines, none longer than `WIDTH`, so that the layout is tested without a run:

1. `progress_line`: the one line the run rewrites in place while it goes;
2. `variant_lines`: one line per server variant, the MUSTs and SHOULDs it meets, its unexpected
   results, its skipped cases and the time its cases took;
3. `deviation_lines`: one line per result that misses its level or its expectation,
   ``variant · case · what happened · what was expected``;
4. `skip_lines` (``-v``): one line per case that does not apply;
5. `matrix_lines` (``--matrix``): the full matrix, one block per server variant;
6. `legend_lines`: every mark the lines above use, and only those.

The full matrix, with every detail, is in ``matrix.md`` and ``index.json``: the terminal says
where.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from conformance.cases import CASES, Case

__all__ = (
    "LEGEND",
    "WIDTH",
    "deviation_lines",
    "fit",
    "legend_lines",
    "mark_of",
    "marks_of",
    "matrix_lines",
    "progress_line",
    "skip_lines",
    "summary_lines",
    "variant_lines",
)

#: The widest line the output may have.
WIDTH = 100
#: Separates the parts of a deviation line.
SEP = " · "
#: Ends a cut string.
CUT = "…"

#: The marks of a result (`mark_of`).
MEETS, KNOWN, UNEXPECTED = "✓", "⚠", "✗"
#: Every mark the output may use, with what it means, in the order the legend prints them.
#: A cell word (``hang``) is a mark where it is a part of a cell (``401 last chunk, hang``).
LEGEND: dict[str, str] = {
    MEETS: "meets the case's MUST or SHOULD",
    KNOWN: "known deviation: misses the case's MUST or SHOULD, as expectations.toml records",
    UNEXPECTED: "unexpected: not what expectations.toml records; fails the run",
    "n/a": "the case does not apply here (no extension, another protocol or event loop): skipped",
    "hang": "no response within the case's time bound (', then hang': to a fresh request after it)",
    "crash": "the server process died (it is started again for the next case)",
    "101!": "a 101 Switching Protocols went out on a denial",
    "malformed": "an HTTP/3 answer the client had to reject (index.json has the fields sent)",
    "missing": "the server's package is not installed",
    "no start": "the server did not start (its output is in index.json)",
    CUT: "cut to fit the line; matrix.md and index.json have it whole",
}
#: The cell words that are marks wherever a cell has them as a part.
CELL_WORDS = ("n/a", "hang", "crash", "101!", "malformed")
#: The cell words that are marks where a whole column has them (the server could not run).
FAILURE_WORDS = ("missing", "no start")


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending with `CUT` where it was cut."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + CUT


def mark_of(record: Mapping[str, Any]) -> str:
    """The mark of a result: unexpected, known deviation, meets its level, or none (INFO, n/a)."""
    if _unexpected(record):
        return UNEXPECTED
    if record["conforms"] is False:
        return KNOWN
    if record["conforms"] is True:
        return MEETS
    return ""


def _skipped(record: Mapping[str, Any]) -> bool:
    """A case that does not apply and that the expectations do not list as a measured n/a."""
    return bool(record["outcome"] == "n/a" and record["expected"] != "n/a")


def _cannot_run(record: Mapping[str, Any]) -> bool:
    """A case whose application is not installed: the matrix test fails (the install is broken)."""
    return _skipped(record) and str(record.get("detail", "")).startswith("not installed")


def _unexpected(record: Mapping[str, Any]) -> bool:
    return not record["as_expected"] or _cannot_run(record)


def _cases(index: Mapping[str, Any]) -> list[Case]:
    """The catalogue's cases that have a result in ``index``, in catalogue order."""
    ran = {case_id for results in index["results"].values() for case_id in results}
    return [case for case in CASES if case.id in ran]


def _records(index: Mapping[str, Any]) -> Iterable[tuple[str, Case, Mapping[str, Any]]]:
    """Every result as (variant, case, record), by variant, then in catalogue order."""
    cases = _cases(index)
    for name, results in index["results"].items():
        for case in cases:
            record = results.get(case.id)
            if record is not None:
                yield name, case, record


def progress_line(done: int, total: int, variants_done: int, variants: int, elapsed: float) -> str:
    """The line the run rewrites while it goes (and prints once at the end)."""
    return fit(
        f"conformance: {done}/{total} results · {variants_done}/{variants} variants done · "
        f"{elapsed:.1f}s",
        WIDTH,
    )


def variant_lines(index: Mapping[str, Any]) -> list[str]:
    """A header and one line per variant: MUSTs met, SHOULDs met, unexpected, skipped, time."""
    names = list(index["results"])
    width = max([len("variant"), *(len(name) for name in names)])
    lines = [
        f"{'variant':<{width}}  {'MUSTs met':>9}  {'SHOULDs met':>11}  {'unexpected':>10}  "
        f"{'skipped':>7}  {'time':>7}"
    ]
    for name in names:
        records = list(index["results"][name].values())
        counts = []
        for level in ("MUST", "SHOULD"):
            ran = [r for r in records if r["level"] == level and r["conforms"] is not None]
            met = sum(1 for r in ran if r["conforms"] is True)
            counts.append(f"{met}/{len(ran)}")
        unexpected = sum(1 for r in records if _unexpected(r))
        skipped = sum(1 for r in records if _skipped(r) and not _cannot_run(r))
        seconds = sum(float(r.get("duration") or 0.0) for r in records)
        failure = (index.get("servers", {}).get(name) or {}).get("failure")
        line = (
            f"{name:<{width}}  {counts[0]:>9}  {counts[1]:>11}  {unexpected:>10}  "
            f"{skipped:>7}  {seconds:>6.1f}s"
        )
        if failure:
            line += f"  ({failure})"
        lines.append(fit(line, WIDTH))
    return lines


def _expected_text(record: Mapping[str, Any], case: Case) -> str:
    """What the case asks (a known deviation's expectation is the deviation itself), or, for an
    unexpected result, what expectations.toml says."""
    if _cannot_run(record):
        return "expected the case to run"
    expected = str(record["expected"])
    if not _unexpected(record) or expected == "conforms":
        return f"expected {case.level} met"
    return f"expected {expected}"


def _line(parts: Sequence[str], cut: int) -> str:
    """``parts`` joined by `SEP`, part ``cut`` shortened as much as the width needs."""
    text = SEP.join(parts)
    over = len(text) - WIDTH
    if over > 0:
        parts = list(parts)
        parts[cut] = fit(parts[cut], max(len(parts[cut]) - over, 8))
        text = fit(SEP.join(parts), WIDTH)
    return text


def _deviations(index: Mapping[str, Any]) -> Iterator[tuple[str, Case, Mapping[str, Any]]]:
    for name, case, record in _records(index):
        if _unexpected(record) or record["conforms"] is False:
            yield name, case, record


def _skips(index: Mapping[str, Any]) -> Iterator[tuple[str, Case, Mapping[str, Any]]]:
    for name, case, record in _records(index):
        if _skipped(record) and not _cannot_run(record):
            yield name, case, record


def deviation_lines(index: Mapping[str, Any]) -> list[str]:
    """One line per result that misses its level (known or not) or its expectation."""
    lines = []
    for name, case, record in _deviations(index):
        mark = UNEXPECTED if _unexpected(record) else KNOWN
        parts = [
            f"{mark} {name}",
            f"{case.id} {case.slug}",
            str(record["outcome"]),
            _expected_text(record, case),
        ]
        lines.append(_line(parts, 2))
    return lines


def skip_lines(index: Mapping[str, Any]) -> list[str]:
    """One line per case that does not apply on a variant, and why."""
    return [
        _line(
            [f"  {name}", f"{case.id} {case.slug}", f"n/a: {record.get('detail') or 'skipped'}"],
            2,
        )
        for name, case, record in _skips(index)
    ]


def matrix_lines(index: Mapping[str, Any]) -> list[str]:
    """The full matrix, one block per variant: each case's id, title, level, mark and cell."""
    cases = _cases(index)
    title_width = max([len(case.title) for case in cases] or [10])
    lines: list[str] = []
    for name, results in index["results"].items():
        server = index.get("servers", {}).get(name) or {}
        about = [name, str(server.get("description") or name), str(server.get("version") or "")]
        if server.get("protocol"):
            about.append(str(server["protocol"]))
        if lines:
            lines.append("")
        lines.append(fit(SEP.join(part for part in about if part), WIDTH))
        for case in cases:
            record = results.get(case.id)
            if record is None:
                continue
            mark = mark_of(record) or " "
            head = f"  {case.id:<5} {fit(case.title, title_width):<{title_width}} {case.level:<6}"
            lines.append(fit(f"{head} {mark} {record['outcome']}", WIDTH))
    return lines


def marks_of(record: Mapping[str, Any], failure: str | None = None) -> list[str]:
    """The marks a printed result uses: its `mark_of` and the cell words of its cell."""
    marks = [mark_of(record)]
    cell = str(record["outcome"])
    parts = cell.split(", ")
    for word in CELL_WORDS:
        if any(part == word or part.endswith(f" {word}") for part in parts):
            marks.append(word)
    if failure is not None and cell == failure:
        marks.append(failure)
    return [mark for mark in marks if mark]


def legend_lines(marks: Iterable[str]) -> list[str]:
    """The legend of ``marks``, in `LEGEND` order, and of no other mark."""
    used = [mark for mark in LEGEND if mark in set(marks)]
    if not used:
        return []
    width = max(len(mark) for mark in used)
    return ["legend:"] + [fit(f"  {mark:<{width}}  {LEGEND[mark]}", WIDTH) for mark in used]


def summary_lines(
    index: Mapping[str, Any],
    *,
    written: Sequence[str] = (),
    list_skips: bool = False,
    matrix: bool = False,
) -> list[str]:
    """Everything printed after the progress line, in order: the variants, the deviations,
    the skips (``list_skips``), the matrix (``matrix``), the legend, where the files are."""
    shown = list(_deviations(index))
    body = [*variant_lines(index), ""]
    deviations = deviation_lines(index)
    unexpected = sum(1 for line in deviations if line.startswith(UNEXPECTED))
    if deviations:
        body.append(
            f"deviations: {len(deviations) - unexpected} known ({KNOWN}), "
            f"{unexpected} unexpected ({UNEXPECTED}); "
            "variant · case · what happened · what was expected"
        )
        body += [*deviations, ""]
    else:
        body += ["deviations: none", ""]
    if list_skips:
        skips = skip_lines(index)
        shown += _skips(index)
        if skips:
            body += [f"skipped ({len(skips)}): variant · case · why", *skips, ""]
    if matrix:
        shown += _records(index)
        body += ["matrix: variant · server · version · protocol; case, level, mark, cell"]
        body += [*matrix_lines(index), ""]
    body = [fit(line, WIDTH) for line in body]
    servers = index.get("servers", {})
    marks = {
        mark
        for name, _, record in shown
        for mark in marks_of(record, (servers.get(name) or {}).get("failure"))
    }
    if any(CUT in line for line in body):
        marks.add(CUT)
    legend = legend_lines(marks)
    if legend:
        body += [*legend, ""]
    if written:
        body += ["full matrix written to:", *(fit(f"  {path}", WIDTH) for path in written)]
    return body

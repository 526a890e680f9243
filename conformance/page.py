"""The support matrix page: ``docs/support-matrix.md``, rendered from a run's ``index.json``.

Theory of operation
-------------------
The page answers one question fast: does server X meet case Y? So every result is a coloured
mark in a grid, one grid per case group, cases as rows and server variants as columns:

- ``met``: a MUST or SHOULD case whose requirement the server meets;
- ``deviation``: one it does not meet (a known deviation where the run expected it);
- ``info``: an observation of an INFO case, which no requirement judges;
- ``na``: the case does not apply to that variant (no extension, another protocol or loop);
- ``crash``: the server process died, the client got no answer in time (``hang``), or the case
  could not run (``error``), whatever the case's level.

An unexpected result (one that failed the run) keeps its mark and is outlined. The full text of
a cell is its ``title`` (shown on hover) and, for a whole row, the ``<details>`` of the case,
which also says what the case tests and the text it rests on. Below the grids, a section per
variant lists what that variant gets wrong, with the expectations' notes and upstream links, and
a link to its entry in ``docs/server-bugs.md`` (with repro scripts) when that page exists at
render time: a link to a missing page fails the strict docs build, and one to a missing heading
would lead nowhere, so without the variant's heading the link goes to the page itself.

The grids are raw HTML inside the Markdown (a Markdown table has no classes, titles or
``<details>``); the layout comes from ``docs/stylesheets/support-matrix.css``, which widens the
page, fixes the grid's columns and, on a narrow screen, stacks each case's results as labelled
marks. The front matter hides mkdocs-material's navigation and table of contents on this page.
Apart from looking for that page, nothing here reads the clock, the environment or the disk:
the same index gives the same page.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.expectations import CONFORMS, Expectations

__all__ = (
    "CATEGORIES",
    "DASH",
    "DOCS_DIR",
    "GROUPS",
    "SERVER_BUGS",
    "Category",
    "case_anchor",
    "category",
    "render",
    "slug",
)

#: Where the site's pages live; ``server-bugs.md`` is looked for here when the page is rendered.
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
#: The page of known server bugs, one heading per variant (its slug is the variant's name).
SERVER_BUGS = "server-bugs.md"

#: The case groups: a title and what the group's cases test (conformance/cases.py).
GROUPS: Mapping[str, tuple[str, str]] = {
    "1": (
        "The scope",
        "What the server tells the application before the handshake: whether it lists the "
        "WebSocket Denial Response extension, and the spec version it claims.",
    ),
    "2": (
        "The denial response from raw ASGI messages",
        "What the server writes for `websocket.http.response.*` messages sent by hand: the "
        "bytes and headers, chunked bodies, statuses and headers no server should send, a "
        "`content-length` that does not match the body, and the connection afterwards.",
    ),
    "3": (
        "Close, return and errors before accept",
        "The path every server has: `websocket.close` before accept (answered with 403), and "
        "an application that returns or raises without a handshake message.",
    ),
    "4": (
        "After the denial",
        "What `receive()` and `send()` do once a denial went out, or once the client has gone.",
    ),
    "5": (
        "The helper contract",
        "asgi_ws_deny's promises through its public API: `deny()`, `Denial`, the guard and its "
        "browser policy give the documented result on the wire.",
    ),
    "6": (
        "Real clients",
        "What the `websockets` and `wsproto` client libraries read of a denial.",
    ),
    "7": (
        "The framework example apps",
        "The helper contract through each framework's example application "
        "(`examples/frameworks/`), unchanged, each on a server of its own.",
    ),
}


#: The mark of "nothing here": a case that does not apply, a count of nothing.
DASH = "\N{EN DASH}"


@dataclass(frozen=True)
class Category:
    """One kind of mark: its CSS class, symbol and meaning."""

    name: str
    symbol: str
    label: str
    meaning: str


#: The marks, in the legend's order.
CATEGORIES: Mapping[str, Category] = {
    category.name: category
    for category in (
        Category("met", "✓", "met", "meets the case's MUST or SHOULD"),
        Category("deviation", "✗", "deviation", "does not meet the case's MUST or SHOULD"),
        Category("info", "i", "information", "what an INFO case observed, shown as text"),
        Category("na", DASH, "not applicable", "the case does not apply to this variant"),
        Category("crash", "‼", "crash or hang", "the server died, or sent nothing in time"),
    )
}

#: A dead server anywhere in the cell, no answer in time, or a case that could not run.
_CRASH = re.compile(r"\bcrash\b|^hang\b|^error$")
_CODE = re.compile(r"`([^`]+)`")


def category(record: Mapping[str, Any]) -> Category:
    """The mark of one result record of ``index.json``."""
    outcome = str(record["outcome"])
    if _CRASH.search(outcome):
        return CATEGORIES["crash"]
    if outcome == "n/a":
        return CATEGORIES["na"]
    if record.get("conforms") is True:
        return CATEGORIES["met"]
    if record.get("conforms") is False:
        return CATEGORIES["deviation"]
    return CATEGORIES["info"]


def slug(text: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (its default ``slugify``)."""
    value = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def case_anchor(case_id: str) -> str:
    """The id of a case's row: ``case-2-3``."""
    return "case-" + slug(case_id.replace(".", "-"))


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _inline(text: str) -> str:
    """Escaped text for raw HTML, with Markdown's `code` spans kept as code."""
    return _CODE.sub(r"<code>\1</code>", _e(text))


def _md(text: object) -> str:
    """A result as Markdown inline code (a backtick inside would end it early)."""
    return "`" + str(text).replace("`", "'") + "`"


def _group_of(case_id: str) -> str:
    return case_id.split(".")[0]


def _header(name: str) -> str:
    """A column title on two lines: the server, then the flavour (``hypercorn`` / ``h2``)."""
    server, _, flavour = name.partition("-")
    if not flavour:
        return _e(server)
    return f"{_e(server)}<br><span class='wsd-flavour'>{_e(flavour)}</span>"


def _verdict(record: Mapping[str, Any], mark: Category) -> str:
    if not record["as_expected"]:
        expected = record["expected"]
        wanted = "meeting the case" if expected == CONFORMS else repr(expected)
        return f"UNEXPECTED (expected {wanted}): {mark.label}"
    if mark.name == "deviation":
        return f"does not meet the {record['level']} (known)"
    if mark.name == "met":
        return f"meets the {record['level']}"
    return mark.label


def _title(name: str, case_id: str, case: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    mark = category(record)
    text = f"{name}, {case_id} {case['title']}: {record['outcome']} ({_verdict(record, mark)})"
    if record.get("note"):
        text += f". {record['note']}"
    return text


def _cell(
    name: str, case_id: str, case: Mapping[str, Any], record: Mapping[str, Any] | None
) -> str:
    if record is None:
        return f"<td class='wsd-cell wsd-none' data-server='{_e(name)}'></td>"
    mark = category(record)
    classes = f"wsd-cell wsd-{mark.name}" + ("" if record["as_expected"] else " wsd-unexpected")
    return (
        f"<td class='{classes}' data-server='{_e(name)}' "
        f"title='{_e(_title(name, case_id, case, record))}'>"
        f"<span class='wsd-mark' aria-hidden='true'>{mark.symbol}</span>"
        f"<span class='wsd-label'>{_e(name)}</span>"
        f"<span class='wsd-text'>{_e(record['outcome'])}</span></td>"
    )


def _details(
    case_id: str, case: Mapping[str, Any], row: list[tuple[str, Mapping[str, Any] | None]]
) -> str:
    """The case's first cell: its title, and on opening what it tests and every result."""
    results = "".join(
        f"<li class='wsd-{category(record).name}'>"
        f"<span class='wsd-mark' aria-hidden='true'>{category(record).symbol}</span> "
        f"<b>{_e(name)}</b>: {_e(record['outcome'])}</li>"
        for name, record in row
        if record is not None
    )
    return (
        f"<details><summary><span class='wsd-id'>{_e(case_id)}</span> {_inline(case['title'])}"
        f" <span class='wsd-level wsd-level-{_e(str(case['level']).lower())}'>"
        f"{_e(case['level'])}</span></summary>"
        f"<p>{_inline(case['description'])}</p>"
        f"<p class='wsd-reference'>{_inline(case['reference'])}</p>"
        f"<ul class='wsd-results'>{results}</ul></details>"
    )


def _grid(
    case_ids: list[str], cases: Mapping[str, Any], results: Mapping[str, Any], names: list[str]
) -> str:
    header = "".join(
        f"<th scope='col' class='wsd-server'><a href='#{slug(name)}' title='{_e(name)}'>"
        f"{_header(name)}</a></th>"
        for name in names
    )
    rows = []
    for case_id in case_ids:
        case = cases[case_id]
        row = [(name, results[name].get(case_id)) for name in names]
        cells = "".join(_cell(name, case_id, case, record) for name, record in row)
        rows.append(
            f"<tr id='{case_anchor(case_id)}'><th scope='row' class='wsd-case'>"
            f"{_details(case_id, case, row)}</th>{cells}</tr>"
        )
    # One line per row: Python-Markdown keeps a raw HTML block as it is up to a blank line.
    return "\n".join(
        [
            "<div class='wsd-matrix'>",
            "<table class='wsd-grid'>",
            f"<thead><tr><th scope='col' class='wsd-case'>case</th>{header}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
            "</div>",
        ]
    )


def _sample(mark: Category) -> str:
    """How the grid shows a mark: an INFO observation is its own (short) text."""
    if mark.name == "info":
        return "<span class='wsd-text'>text</span>"
    return f"<span class='wsd-mark' aria-hidden='true'>{mark.symbol}</span>"


def _legend() -> str:
    items = "".join(
        f"<li class='wsd-{mark.name}'>{_sample(mark)} <b>{_e(mark.label)}</b>: "
        f"{_e(mark.meaning)}</li>"
        for mark in CATEGORIES.values()
    )
    unexpected = (
        f"<li class='wsd-deviation wsd-unexpected'>{_sample(CATEGORIES['deviation'])} "
        "<b>outlined</b>: an unexpected result, one that failed the run</li>"
    )
    return f"<ul class='wsd-legend'>{items}{unexpected}</ul>"


def _overview(names: list[str], servers: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """One line per variant: how many requirements it meets, and how often it died or hung."""
    rows = []
    for name in names:
        records = results[name].values()
        info = servers.get(name, {})
        crashes = sum(1 for record in records if category(record).name == "crash")
        rows.append(
            f"<tr><th scope='row'><a href='#{slug(name)}'>{_e(name)}</a></th>"
            f"<td>{_e(info.get('version') or '(custom)')}</td>"
            f"<td>{_counts(records, 'MUST')}</td><td>{_counts(records, 'SHOULD')}</td>"
            f"<td>{crashes or DASH}</td></tr>"
        )
    return "\n".join(
        [
            "<table class='wsd-overview'>",
            "<thead><tr><th scope='col'>server</th><th scope='col'>version</th>"
            "<th scope='col'>MUST met</th><th scope='col'>SHOULD met</th>"
            "<th scope='col'>crash or hang</th></tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
        ]
    )


def _bugs_anchor(docs_dir: Path, name: str) -> str | None:
    """The link to ``name``'s entry of the server-bugs page, or None where there is none.

    Checked when the page is rendered, as mkdocs --strict fails on a link to a missing page or
    heading: with the page but without a heading for the variant, the link goes to the page.
    """
    page = docs_dir / SERVER_BUGS
    if not page.is_file():
        return None
    for line in page.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading is None:
            continue
        text = heading.group(1)
        explicit = re.search(r"\{[^}]*#([\w-]+)[^}]*\}\s*$", text)
        anchor = explicit.group(1) if explicit else slug(text.replace("`", ""))
        if anchor == slug(name):
            return f"{SERVER_BUGS}#{anchor}"
    return SERVER_BUGS


def _counts(records: Iterable[Mapping[str, Any]], level: str) -> str:
    judged = [r for r in records if r.get("level") == level and r.get("conforms") is not None]
    if not judged:
        return DASH
    met = sum(1 for r in judged if r["conforms"] is True)
    return f"{met} of {len(judged)}"


def _wrong(record: Mapping[str, Any]) -> bool:
    return category(record).name in {"deviation", "crash"} or not record["as_expected"]


def _server_section(
    name: str,
    info: Mapping[str, Any],
    cases: Mapping[str, Any],
    results: Mapping[str, Any],
    docs_dir: Path,
) -> list[str]:
    records = results[name]
    what = info.get("description") or name
    version = info.get("version") or "(custom)"
    protocol = info.get("protocol") or ""
    out = [
        f"### {name}",
        "",
        f"{what} {version}" + (f", {protocol}" if protocol else "") + ". "
        f"MUST cases met: {_counts(records.values(), 'MUST')}; "
        f"SHOULD cases met: {_counts(records.values(), 'SHOULD')}.",
        "",
    ]
    bugs = _bugs_anchor(docs_dir, name)
    if bugs is not None:
        out += [f"Its bugs, with repro scripts: [server bugs: {name}]({bugs}).", ""]
    wrong = [case_id for case_id in cases if case_id in records and _wrong(records[case_id])]
    notes = [
        case_id
        for case_id in cases
        if case_id in records
        and not _wrong(records[case_id])
        and records[case_id].get("note")
        and category(records[case_id]).name == "info"
    ]
    if wrong:
        out += ["What it gets wrong:", ""]
        out += [_item(case_id, cases[case_id], records[case_id]) for case_id in wrong]
    else:
        out.append("It meets every MUST and SHOULD case that applies to it.")
    if notes:
        out += ["", "Worth knowing:", ""]
        out += [_item(case_id, cases[case_id], records[case_id]) for case_id in notes]
    out.append("")
    return out


def _item(case_id: str, case: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    mark = category(record)
    text = (
        f"- <span class='wsd-{mark.name}'><span class='wsd-mark' aria-hidden='true'>"
        f"{mark.symbol}</span></span> [{case_id} {case['title']}](#{case_anchor(case_id)}) "
        f"({case['level']}): {_md(record['outcome'])}"
    )
    if not record["as_expected"]:
        expected = record["expected"]
        text += f" **unexpected** (expected {_md(expected)})"
    if record.get("note"):
        text += f": {record['note']}"
    if record.get("issue"):
        text += f" ([upstream]({record['issue']}))"
    return text


def render(
    index: Mapping[str, Any],
    expectations: Expectations | None = None,
    *,
    docs_dir: Path = DOCS_DIR,
) -> str:
    """The support matrix page, as Markdown with raw HTML grids, from a run's index."""
    results: Mapping[str, Any] = index["results"]
    names = list(results)
    servers: Mapping[str, Any] = index["servers"]
    cases: Mapping[str, Any] = index["cases"]
    meta: Mapping[str, Any] = index["meta"]
    out = [
        "---",
        "hide:",
        "  - navigation",
        "  - toc",
        "---",
        "",
        "# Support matrix",
        "",
        "What each ASGI server does with a WebSocket denial, measured on the wire by the "
        "conformance suite (`make conformance`; see `conformance/README.md`). Generated from "
        "the run's results: do not edit by hand.",
        "",
        f"Measured {meta['date']} with {meta['implementation']} {meta['python']} on "
        f"{meta['platform']}; clients and libraries: "
        + ", ".join(f"{k} {v}" for k, v in meta["packages"].items())
        + ".",
        "",
        "Find the case's row and the server's column. Hover a mark for the result, open a case "
        "for what it tests and every server's result, and follow a server's name for what it "
        "gets wrong.",
        "",
        _legend(),
        "",
        _overview(names, servers, results),
    ]
    groups: dict[str, list[str]] = {}
    for case_id in cases:
        if any(case_id in results[name] for name in names):
            groups.setdefault(_group_of(case_id), []).append(case_id)
    headings = {
        group: f"{group} {GROUPS.get(group, (f'Group {group}', ''))[0]}" for group in groups
    }
    out += [
        "",
        "Case groups: "
        + " · ".join(f"[{heading}](#{slug(heading)})" for heading in headings.values())
        + ". Servers: [what each gets wrong](#per-server).",
    ]
    for group, case_ids in groups.items():
        about = GROUPS.get(group, ("", ""))[1]
        out += ["", f"## {headings[group]}", ""]
        if about:
            out += [about, ""]
        out += [_grid(case_ids, cases, results, names), ""]
    out += ["## Per server", ""]
    for name in names:
        out += _server_section(name, servers.get(name, {}), cases, results, docs_dir)
    if expectations is not None and expectations.source:
        out += [
            f"Expectations: `{Path(expectations.source).name}`; "
            f"expected by default: {CONFORMS} (MUST/SHOULD) or the case default (INFO).",
            "",
        ]
    return "\n".join(out)

"""The support matrix page: a grid of marks per case group, a section per server."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from conformance import page, report
from conformance.cases import CASES
from conformance.expectations import DEFAULT_PATH, Expectations
from conformance.servers import VARIANTS

pytestmark = pytest.mark.selftest

ROOT = Path(__file__).resolve().parents[2]


def record(
    outcome: str,
    conforms: bool | None,
    *,
    level: str = "MUST",
    as_expected: bool = True,
    expected: str = "conforms",
    note: str = "",
    issue: str = "",
) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "conforms": conforms,
        "level": level,
        "as_expected": as_expected,
        "expected": expected,
        "note": note,
        "issue": issue,
    }


def case(title: str, level: str) -> dict[str, str]:
    return {
        "slug": title.lower().replace(" ", "-"),
        "title": title,
        "description": f"What `{title}` tests.",
        "reference": "RFC 9110",
        "level": level,
    }


def make_index() -> dict[str, Any]:
    """Three variants, two groups; alpha meets everything, beta and gamma do not."""
    return {
        "meta": {
            "date": "2026-01-01 00:00 UTC",
            "python": "3.12.1",
            "implementation": "CPython",
            "platform": "linux",
            "packages": {"websockets": "17.4"},
            "wall_time": 1.0,
        },
        "servers": {
            "alpha-one": {"description": "alpha --one", "version": "1.0", "protocol": "http/1.1"},
            "beta": {"description": "beta", "version": "2.0", "protocol": "h2"},
            "gamma": {"description": "gamma", "version": None, "protocol": "http/1.1"},
        },
        "cases": {
            "1.1": case("Extension listed", "INFO"),
            "2.1": case("Byte-exact", "MUST"),
            "2.2": case("Headers added", "SHOULD"),
        },
        "results": {
            "alpha-one": {
                "1.1": record("listed", None, level="INFO", expected="listed"),
                "2.1": record("401 ok", True),
                "2.2": record("none added", True, level="SHOULD"),
            },
            "beta": {
                "1.1": record("not listed", None, level="INFO", expected="not listed", note="n1"),
                "2.1": record("n/a", None),
                "2.2": record("+upgrade <hdrs> 'x'", False, level="SHOULD", note="adds them"),
            },
            "gamma": {
                "1.1": record("listed", None, level="INFO", expected="listed"),
                "2.1": record("crash", False, note="panics", issue="https://example.org/1"),
                "2.2": record("hang", False, level="SHOULD", as_expected=False),
            },
        },
    }


class Cells(HTMLParser):
    """The grids of a rendered page: {row id: [(variant, classes, title)]}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[tuple[str, set[str], str]]] = {}
        self.row = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "tr" and found.get("id"):
            self.row = found["id"]
            self.rows[self.row] = []
        elif tag == "td" and self.row:
            self.rows[self.row].append(
                (found["data-server"], set(found["class"].split()), found.get("title", ""))
            )


def cells(text: str) -> dict[str, list[tuple[str, set[str], str]]]:
    parser = Cells()
    parser.feed(text)
    return parser.rows


@pytest.mark.parametrize(
    ("given", "mark"),
    [
        (record("401 ok", True), "met"),
        (record("+content-type", False, level="SHOULD"), "deviation"),
        (record("listed", None, level="INFO"), "info"),
        (record("402, no error", None, level="INFO"), "info"),
        (record("no response", True), "met"),
        (record("n/a", None), "na"),
        (record("crash", False), "crash"),
        (record("401 ok, crash", False), "crash"),
        (record("hang", None, level="INFO"), "crash"),
        (record("error", False, as_expected=False), "crash"),
    ],
    ids=lambda value: value if isinstance(value, str) else value["outcome"],
)
def test_each_result_gets_its_mark(given: dict[str, Any], mark: str) -> None:
    assert page.category(given).name == mark


def test_the_page_hides_the_navigation_and_the_table_of_contents(tmp_path: Path) -> None:
    text = page.render(make_index(), docs_dir=tmp_path)
    assert text.startswith("---\nhide:\n  - navigation\n  - toc\n---\n\n# Support matrix\n")


def test_one_section_per_case_group_with_what_it_tests(tmp_path: Path) -> None:
    text = page.render(make_index(), docs_dir=tmp_path)
    headings = re.findall(r"^## (.*)$", text, re.MULTILINE)
    assert headings == ["1 The scope", "2 The denial response from raw ASGI messages", "Per server"]
    assert page.GROUPS["2"][1] in text
    assert "Case groups: [1 The scope](#1-the-scope) · [2 The denial response" in text


def test_every_cell_is_a_mark_with_its_full_text_in_the_title(tmp_path: Path) -> None:
    rows = cells(page.render(make_index(), docs_dir=tmp_path))
    assert list(rows) == ["case-1-1", "case-2-1", "case-2-2"]
    by_cell = {(row, name): classes for row, found in rows.items() for name, classes, _ in found}
    assert by_cell[("case-2-1", "alpha-one")] >= {"wsd-cell", "wsd-met"}
    assert by_cell[("case-2-1", "beta")] >= {"wsd-na"}
    assert by_cell[("case-2-1", "gamma")] >= {"wsd-crash"}
    assert by_cell[("case-2-2", "beta")] >= {"wsd-deviation"}
    assert by_cell[("case-1-1", "beta")] >= {"wsd-info"}
    assert by_cell[("case-2-2", "gamma")] >= {"wsd-crash", "wsd-unexpected"}
    assert "wsd-unexpected" not in by_cell[("case-2-1", "gamma")]
    titles = {(row, name): title for row, found in rows.items() for name, _, title in found}
    assert titles[("case-2-2", "beta")] == (
        "beta, 2.2 Headers added: +upgrade <hdrs> 'x' (does not meet the SHOULD (known)). adds them"
    )
    assert titles[("case-2-2", "gamma")].startswith(
        "gamma, 2.2 Headers added: hang (UNEXPECTED (expected meeting the case): crash or hang)"
    )


def test_text_is_escaped_in_the_grid(tmp_path: Path) -> None:
    text = page.render(make_index(), docs_dir=tmp_path)
    assert "+upgrade <hdrs>" not in text.split("## Per server")[0]
    assert "+upgrade &lt;hdrs&gt; &#x27;x&#x27;" in text


def test_a_case_opens_on_what_it_tests_and_every_result(tmp_path: Path) -> None:
    text = page.render(make_index(), docs_dir=tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("<tr id='case-2-2'>"))
    details = row.split("<details>")[1].split("</details>")[0]
    assert "What <code>Headers added</code> tests." in details
    assert "RFC 9110" in details
    assert re.findall(r"<b>([\w-]+)</b>", details) == ["alpha-one", "beta", "gamma"]


def test_each_column_links_to_its_server_section(tmp_path: Path) -> None:
    text = page.render(make_index(), docs_dir=tmp_path)
    header = next(line for line in text.splitlines() if "wsd-server" in line)
    assert re.findall(r"href='#([\w-]+)'", header) == ["alpha-one", "beta", "gamma"]
    sections = re.findall(r"^### (.*)$", text, re.MULTILINE)
    assert sections == ["alpha-one", "beta", "gamma"]


def server_section(text: str, name: str) -> str:
    return text.split(f"\n### {name}\n")[1].split("\n### ")[0]


def test_a_server_section_lists_what_the_server_gets_wrong(tmp_path: Path) -> None:
    text = page.render(make_index(), docs_dir=tmp_path)
    alpha = server_section(text, "alpha-one")
    assert "MUST cases met: 1 of 1; SHOULD cases met: 1 of 1." in alpha
    assert "It meets every MUST and SHOULD case that applies to it." in alpha
    assert "What it gets wrong" not in alpha
    beta = server_section(text, "beta")
    assert (
        "- <span class='wsd-deviation'><span class='wsd-mark' aria-hidden='true'>✗</span></span>"
        " [2.2 Headers added](#case-2-2) (SHOULD): `+upgrade <hdrs> 'x'`: adds them"
    ) in beta
    assert "wsd-info" in beta
    assert "[1.1 Extension listed](#case-1-1) (INFO): `not listed`: n1" in beta
    assert "2.1" not in beta  # n/a is not a fault
    gamma = server_section(text, "gamma")
    assert (
        "‼</span></span> [2.1 Byte-exact](#case-2-1) (MUST): `crash`: panics "
        "([upstream](https://example.org/1))"
    ) in gamma
    assert (
        "‼</span></span> [2.2 Headers added](#case-2-2) (SHOULD): `hang` **unexpected** "
        "(expected `conforms`)"
    ) in gamma
    assert "gamma (custom), http/1.1. MUST cases met: 0 of 1; SHOULD cases met: 0 of 1." in gamma


def test_no_server_bugs_link_without_the_page(tmp_path: Path) -> None:
    text = page.render(make_index(), docs_dir=tmp_path)
    assert "server-bugs.md" not in text


def test_the_server_bugs_link_goes_to_the_variant_heading_when_the_page_exists(
    tmp_path: Path,
) -> None:
    (tmp_path / "server-bugs.md").write_text(
        "# Server bugs\n\n## alpha-one\n\nnone\n\n## `beta`\n\nsome\n\n### Other {#x}\n"
    )
    text = page.render(make_index(), docs_dir=tmp_path)
    links = {
        name: re.findall(r"\]\((server-bugs\.md[^)]*)\)", server_section(text, name))
        for name in ("alpha-one", "beta", "gamma")
    }
    # gamma has no heading there: the link goes to the page, never to a missing anchor.
    assert links == {
        "alpha-one": ["server-bugs.md#alpha-one"],
        "beta": ["server-bugs.md#beta"],
        "gamma": ["server-bugs.md"],
    }


def test_an_explicit_heading_id_is_honoured(tmp_path: Path) -> None:
    (tmp_path / "server-bugs.md").write_text("# Server bugs\n\n## Gamma the server {#gamma}\n")
    text = page.render(make_index(), docs_dir=tmp_path)
    assert "](server-bugs.md#gamma)" in server_section(text, "gamma")


def test_the_same_index_gives_the_same_page(tmp_path: Path) -> None:
    assert page.render(make_index(), docs_dir=tmp_path) == page.render(
        make_index(), docs_dir=tmp_path
    )


def test_report_markdown_is_the_page() -> None:
    expectations = Expectations.load(DEFAULT_PATH)
    assert report.markdown(make_index(), expectations) == page.render(make_index(), expectations)
    assert "Expectations: `expectations.toml`" in report.markdown(make_index(), expectations)


def test_the_committed_page_comes_from_this_generator() -> None:
    # docs/support-matrix.md is written by `make conformance`; a hand edit or an older
    # generator shows here.
    text = (ROOT / "docs" / "support-matrix.md").read_text(encoding="utf-8")
    assert text.startswith("---\nhide:\n  - navigation\n  - toc\n---\n")
    groups = sorted({c.group for c in CASES}, key=int)
    headings = re.findall(r"^## (\d+) ", text, re.MULTILINE)
    assert headings == groups
    assert list(cells(text)) == [page.case_anchor(c.id) for c in CASES]
    assert re.findall(r"^### (.*)$", text, re.MULTILINE) == list(VARIANTS)

"""The terminal summary: every line within 100 columns, in its order, every mark explained."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.cases import CASES, Case
from conformance.terminal import (
    CUT,
    KNOWN,
    LEGEND,
    MEETS,
    SEP,
    UNEXPECTED,
    WIDTH,
    deviation_lines,
    matrix_lines,
    progress_line,
    skip_lines,
    summary_lines,
    variant_lines,
)

pytestmark = pytest.mark.selftest

ROOT = Path(__file__).resolve().parents[2]
#: The longest variant name of the built-in ones, and a longer custom one.
LONG_NAMES = ("hypercorn-asyncio", "a-custom-server-variant-name")
#: Marks that are not in the legend because they are no marks: the separator of a line.
NOT_MARKS = frozenset(SEP.strip())


def record(
    case: Case,
    outcome: str,
    *,
    conforms: bool | None,
    expected: str = "conforms",
    as_expected: bool = True,
    detail: str = "",
) -> dict[str, Any]:
    return {
        "case": case.id,
        "outcome": outcome,
        "expected": expected,
        "as_expected": as_expected,
        "conforms": conforms,
        "level": case.level,
        "detail": detail,
        "duration": 0.25,
    }


def passing(case: Case) -> dict[str, Any]:
    if case.level == "INFO":
        return record(case, case.default, conforms=None, expected=case.default)
    return record(case, "401 ok", conforms=True)


def index_of(results: dict[str, dict[str, dict[str, Any]]], **servers: Any) -> dict[str, Any]:
    return {
        "meta": {"python": "3.12.1"},
        "servers": {
            name: {"description": name, "version": "1.0", "protocol": "http/1.1", **servers}
            for name in results
        },
        "results": results,
    }


def by_id(case_id: str) -> Case:
    return next(case for case in CASES if case.id == case_id)


def rich_index() -> dict[str, Any]:
    """Every kind of result, with the longest names, titles and cells the output must fit."""
    long_cell = "401 ok, +upgrade, open, alice: no close, traceback, and a great deal more"
    first, second = LONG_NAMES
    results: dict[str, dict[str, dict[str, Any]]] = {
        first: {case.id: passing(case) for case in CASES},
        second: {case.id: passing(case) for case in CASES},
    }
    results[first]["2.3"] = record(by_id("2.3"), "crash", conforms=False, expected="crash")
    results[first]["3.3"] = record(by_id("3.3"), "hang", conforms=False, expected="hang")
    results[first]["2.10"] = record(by_id("2.10"), "500 then 101!", conforms=False, expected="x")
    results[first]["5.16"] = record(by_id("5.16"), long_cell, conforms=False, expected=long_cell)
    results[first]["2.1"] = record(by_id("2.1"), "403", conforms=False, as_expected=False)
    results[second]["2.16"] = record(
        by_id("2.16"), "kept open", conforms=False, expected="closed", as_expected=False
    )
    results[second]["2.17"] = record(
        by_id("2.17"), "n/a", conforms=None, detail="the server does not list the extension"
    )
    return index_of(results)


def body_of(lines: list[str]) -> list[str]:
    """The lines before the legend."""
    return lines[: lines.index("legend:")] if "legend:" in lines else lines


@pytest.mark.parametrize("list_skips", [False, True])
@pytest.mark.parametrize("matrix", [False, True])
def test_every_line_fits_100_columns(list_skips: bool, matrix: bool) -> None:
    written = ["conformance/results/matrix.md", "conformance/results/index.json"]
    lines = summary_lines(rich_index(), written=written, list_skips=list_skips, matrix=matrix)
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide
    # The long cell was cut, and says so.
    assert any(CUT in line for line in body_of(lines))
    assert len(progress_line(540, 540, 9, 9, 1e9)) <= WIDTH


def test_the_order_variants_deviations_skips_matrix_legend_files() -> None:
    written = ["conformance/results/matrix.md"]
    lines = summary_lines(rich_index(), written=written, list_skips=True, matrix=True)
    first, second = LONG_NAMES

    def at(prefix: str) -> int:
        return next(n for n, line in enumerate(lines) if line.startswith(prefix))

    order = [
        at("variant "),
        at(first),
        at(second),
        at("deviations:"),
        at(f"{KNOWN} {first}"),
        at("skipped ("),
        at(f"  {second}{SEP}2.17"),
        at("matrix:"),
        at("legend:"),
        at("full matrix written to:"),
    ]
    assert order == sorted(order)
    assert lines[-1] == "  conformance/results/matrix.md"


def test_one_line_per_variant_counts_musts_shoulds_unexpected_skips_time() -> None:
    index = rich_index()
    lines = variant_lines(index)
    first, second = LONG_NAMES
    musts = sum(1 for case in CASES if case.level == "MUST")
    shoulds = sum(1 for case in CASES if case.level == "SHOULD")
    fields = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    seconds = f"{len(CASES) * 0.25:.1f}s"
    # first: 2.3 and 5.16 (MUST) and 2.1 (MUST, unexpected) miss; 3.3 and 2.10 (SHOULD) miss.
    assert fields[first] == [f"{musts - 3}/{musts}", f"{shoulds - 2}/{shoulds}", "1", "0", seconds]
    # second: 2.16 (SHOULD, unexpected) misses; 2.17 (INFO) does not apply.
    assert fields[second] == [f"{musts}/{musts}", f"{shoulds - 1}/{shoulds}", "1", "1", seconds]
    assert len(lines) == 3


def test_one_line_per_deviation_variant_case_what_happened_what_was_expected() -> None:
    lines = deviation_lines(rich_index())
    first, second = LONG_NAMES
    assert f"{KNOWN} {first} · 2.3 order · crash · expected MUST met" in lines
    assert f"{UNEXPECTED} {first} · 2.1 exact · 403 · expected MUST met" in lines
    assert f"{UNEXPECTED} {second} · 2.16 closes · kept open · expected closed" in lines
    cut = next(line for line in lines if "5.16" in line)
    assert len(cut) == WIDTH
    assert cut.endswith("expected MUST met")
    assert CUT in cut
    # Conforming and INFO results are no deviations; n/a neither.
    assert len(lines) == 6


def test_skips_are_counted_and_listed_only_on_request() -> None:
    index = rich_index()
    quiet = summary_lines(index)
    assert not any("2.17" in line for line in quiet)
    listed = summary_lines(index, list_skips=True)
    assert skip_lines(index) == [
        f"  {LONG_NAMES[1]} · 2.17 reuse · n/a: the server does not list the extension"
    ]
    assert skip_lines(index)[0] in listed


def test_the_matrix_is_one_block_per_variant_with_every_case() -> None:
    lines = matrix_lines(rich_index())
    heads = [n for n, line in enumerate(lines) if line.startswith(LONG_NAMES)]
    assert len(heads) == 2
    block = lines[heads[0] + 1 : heads[1] - 1]
    assert [line.split()[0] for line in block] == [case.id for case in CASES]
    row = next(line for line in block if line.split()[0] == "2.3")
    assert row.split()[-3:] == ["MUST", KNOWN, "crash"]
    row = next(line for line in block if line.split()[0] == "2.2")
    assert row.split()[-3:] == [MEETS, "401", "ok"]


@pytest.mark.parametrize("list_skips", [False, True])
@pytest.mark.parametrize("matrix", [False, True])
def test_the_legend_explains_every_mark_used_and_no_other(list_skips: bool, matrix: bool) -> None:
    lines = summary_lines(rich_index(), list_skips=list_skips, matrix=matrix)
    body = body_of(lines)
    legend = lines[len(body) + 1 :]
    marks = sorted(LEGEND, key=len, reverse=True)
    explained = {
        next(mark for mark in marks if line.strip().startswith(mark)) for line in legend if line
    }
    # Every symbol of the body is a mark the legend explains (or the separator).
    symbols = {char for line in body for char in line if ord(char) > 127} - NOT_MARKS
    assert symbols <= explained
    # Every cell word the printed cells use is explained: hang and crash are in the deviations.
    for word in ("hang", "crash", "101!"):
        assert word in explained
    assert ("n/a" in explained) == (list_skips or matrix)
    assert (MEETS in explained) == matrix
    # And nothing that is not used: no server failed to start, none is missing.
    assert "no start" not in explained
    assert "missing" not in explained
    assert set(explained) <= set(LEGEND)


def test_a_word_inside_another_is_no_mark() -> None:
    case = by_id("2.2")
    index = index_of({"srv": {"2.2": record(case, "401 changed", conforms=False)}})
    lines = summary_lines(index)
    assert "  ⚠  known deviation" in "\n".join(lines)
    assert not any(line.startswith("  hang") for line in lines)


def test_a_server_that_cannot_run_is_explained() -> None:
    results = {"ghost": {case.id: record(case, "no start", conforms=False) for case in CASES}}
    for entry in results["ghost"].values():
        entry["as_expected"] = False
    lines = summary_lines(index_of(results, failure="no start"))
    assert any(line.startswith("  no start") for line in lines)
    assert lines[1].endswith("(no start)")


def test_python_m_conformance_prints_the_summary_only(tmp_path: Path) -> None:
    """A real run: no pytest letters, header, skip list or xdist status lines; every line fits;
    -v lists the skip."""

    def run(*extra: str) -> list[str]:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "conformance",
                "--variants",
                "uvicorn-wsproto,gunicorn",
                "-k",
                "exact or close-403",
                "-n",
                "2",
                "--results-dir",
                str(tmp_path / "results"),
                *extra,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert process.returncode == 0, process.stdout + process.stderr
        return process.stdout.splitlines()

    lines = run()
    assert all(len(line) <= WIDTH for line in lines)
    assert not any(line.startswith(("SKIPPED", "bringing up", "=", ".")) for line in lines)
    text = [line for line in lines if line]
    assert text[0].startswith("conformance: 4/4 results · 2/2 variants done")
    header = "variant MUSTs met SHOULDs met unexpected skipped time"
    assert text[1].split() == header.split()
    assert text[2].split()[:5] == ["uvicorn-wsproto", "2/2", "0/0", "0", "0"]
    assert text[3].split()[:5] == ["gunicorn", "1/1", "0/0", "0", "1"]
    assert text[4] == "deviations: none"
    assert "gunicorn · 2.1 exact" not in "\n".join(lines)
    verbose = run("-v")
    assert f"  gunicorn{SEP}2.1 exact{SEP}n/a: the server does not list the extension" in verbose
    assert all(len(line) <= WIDTH for line in verbose)


def test_on_a_terminal_the_progress_line_is_rewritten_in_place(tmp_path: Path) -> None:
    """Under a pseudo-terminal the progress line is written again and again on one line (a
    carriage return, no line feed, between its versions); every line fits 100 columns."""
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conformance",
                "--variants",
                "uvicorn-wsproto",
                "-k",
                "exact or close-403 or order",
                "-n",
                "1",
                "--results-dir",
                str(tmp_path / "results"),
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
            env={**os.environ, "COLUMNS": "100"},
        )
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is gone once the process has exited
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    finally:
        os.close(leader)
    text = output.decode()
    rewritten = [part for part in text.split("\r") if part.startswith("conformance: ")]
    assert len(rewritten) >= 2
    assert all("\n" not in part.rstrip(" \n") for part in rewritten)
    assert rewritten[-1].startswith("conformance: 3/3 results · 1/1 variants done")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text).replace("\r\n", "\n")
    assert all(len(line) <= WIDTH for line in plain.replace("\r", "\n").split("\n"))

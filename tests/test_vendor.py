"""Vendoring: the core copied into another tree, unchanged, working under any package name.

The core test suite itself runs against a vendored copy too: see the ``core`` fixture.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import asgi_ws_deny
from asgi_ws_deny.__main__ import main
from asgi_ws_deny.vendor import (
    CORE_PATH,
    LICENCE,
    CopyState,
    VendorError,
    check_copy,
    vendor,
    vendored_source,
)

ROOT = Path(__file__).parent.parent


def test_the_copy_is_the_core_unchanged_below_a_header(tmp_path: Path) -> None:
    path = vendor(tmp_path, "ws_deny")
    assert path == tmp_path / "ws_deny.py"
    text = path.read_text(encoding="utf-8")
    header, separator, rest = text.partition("# " + "-" * 96 + "\n")
    assert separator
    assert rest == CORE_PATH.read_text(encoding="utf-8")
    assert f"asgi-ws-deny {asgi_ws_deny.__version__}" in header
    assert "a copy of asgi_ws_deny/_deny.py" in header
    assert "SPDX-License-Identifier: BSD-3-Clause" in header
    for line in LICENCE.splitlines():
        assert f"# {line}".rstrip() + "\n" in header


def test_the_licence_carried_is_the_projects() -> None:
    assert (ROOT / "LICENSE").read_text(encoding="utf-8") == LICENCE


def test_the_copy_imports_under_another_name_with_no_side_effects(tmp_path: Path) -> None:
    package = tmp_path / "framework" / "_compat"
    package.mkdir(parents=True)
    (tmp_path / "framework" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    vendor(package, "ws_deny")
    code = (
        "import logging, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "before = set(sys.modules)\n"
        "from framework._compat import ws_deny\n"
        "added = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "outside = sorted(added - set(sys.stdlib_module_names) - {'framework'})\n"
        "print(outside, 'asyncio' in sys.modules, logging.getLogger().handlers,\n"
        "      ws_deny.Denial.__module__, ws_deny.deny.__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-W", "error", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == ("[] False [] framework._compat.ws_deny framework._compat.ws_deny\n")


def test_two_copies_have_distinct_exceptions(vendored_core: object) -> None:
    """The documented caveat: catch ValueError / RuntimeError across copies."""
    with pytest.raises(ValueError, match="status") as caught:
        vendored_core.Denial(101)  # type: ignore[attr-defined]
    assert not isinstance(caught.value, asgi_ws_deny.InvalidDenialError)
    assert isinstance(caught.value, vendored_core.InvalidDenialError)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["", "1abc", "with-dash", "class", "a.b"])
def test_a_bad_module_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(VendorError, match="module name"):
        vendor(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["json", "re", "typing", "asyncio"])
def test_a_standard_library_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(VendorError, match="standard-library module"):
        vendor(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_the_destination_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    with pytest.raises(VendorError, match="not a directory"):
        vendor(tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == ""


def test_a_missing_destination_is_created_with_its_parents(tmp_path: Path) -> None:
    path = vendor(tmp_path / "src" / "framework" / "_compat", "ws_deny")
    assert path == tmp_path / "src" / "framework" / "_compat" / "ws_deny.py"
    assert path.read_text(encoding="utf-8") == vendored_source()
    assert sorted(p.name for p in path.parent.iterdir()) == ["ws_deny.py"]


def test_a_bad_name_creates_no_directory(tmp_path: Path) -> None:
    with pytest.raises(VendorError, match="module name"):
        vendor(tmp_path / "new", "with-dash")
    assert not (tmp_path / "new").exists()


def test_another_file_is_not_overwritten_without_force(tmp_path: Path) -> None:
    existing = tmp_path / "_ws_deny.py"
    existing.write_text("precious = True\n")
    with pytest.raises(VendorError, match="not a vendored copy"):
        vendor(tmp_path)
    assert existing.read_text() == "precious = True\n"
    vendor(tmp_path, force=True)
    assert existing.read_text() == vendored_source()


def test_an_earlier_copy_is_refreshed(tmp_path: Path) -> None:
    existing = tmp_path / "_ws_deny.py"
    existing.write_text(vendored_source().replace("def deny", "def deny_old"))
    vendor(tmp_path)
    assert existing.read_text() == vendored_source()


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vendor", str(tmp_path), "--check"]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["vendor", str(tmp_path), "--name", "wsdeny"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "wsdeny.py").read_text() == vendored_source()
    assert main(["vendor", str(tmp_path), "--name", "wsdeny", "--check"]) == 0
    assert main(["vendor", str(tmp_path / "nowhere" / "deeper")]) == 0
    assert (tmp_path / "nowhere" / "deeper" / "_ws_deny.py").read_text() == vendored_source()
    (tmp_path / "a_file").write_text("")
    assert main(["vendor", str(tmp_path / "a_file")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_the_module_runs_as_a_program(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asgi_ws_deny", "vendor", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "_ws_deny.py").read_text() == vendored_source()


# --check: each way a copy can be wrong, as a framework's CI meets it.

LINE = "# " + "-" * 96 + "\n"
DIGEST = "# SHA-256 of the text below the line: "


def _reformatted(text: str) -> str:
    """What a formatter configured for single quotes does to one line of the core."""
    edited = text.replace(
        'EXTENSION = "websocket.http.response"', "EXTENSION = 'websocket.http.response'"
    )
    assert edited != text
    return edited


def _other_version(text: str) -> str:
    first, newline, rest = text.partition("\n")
    return (
        first.replace(f"asgi-ws-deny {asgi_ws_deny.__version__}:", "asgi-ws-deny 0.0.1:")
        + newline
        + rest
    )


def _other_build(text: str) -> str:
    """A copy written by a development build of the same version whose core differed."""
    header, line, core = text.partition(LINE)
    core = core.replace(
        'EXTENSION = "websocket.http.response"', 'EXTENSION = "websocket.http.response"  # old'
    )
    digest = hashlib.sha256(core.encode("utf-8")).hexdigest()
    lines = [f"{DIGEST}{digest}" if row.startswith(DIGEST) else row for row in header.splitlines()]
    return "\n".join(lines) + "\n" + line + core


def _header_edited(text: str) -> str:
    return text.replace("# SPDX-License-Identifier: BSD-3-Clause\n", "")


def _extension_line() -> int:
    lines = vendored_source().splitlines()
    return lines.index('EXTENSION = "websocket.http.response"') + 1


CHECK_CASES: list[tuple[str, Callable[[str], str] | None, CopyState, str]] = [
    ("missing", None, "missing", "is missing: write it with `python -m asgi_ws_deny vendor"),
    ("not-a-copy", lambda text: "precious = True\n", "not-a-copy", "is not a vendored copy"),
    ("other-version", _other_version, "other-version", "is the copy of asgi-ws-deny 0.0.1, not "),
    ("other-build", _other_build, "other-version", "is the copy of another build of asgi-ws-deny"),
    (
        "reformatted",
        _reformatted,
        "edited",
        f"was edited since (first at line {_extension_line()})",
    ),
    ("header-edited", _header_edited, "edited", "was edited since"),
    ("truncated", lambda text: text[: len(text) // 2], "edited", "was edited since"),
]


@pytest.mark.parametrize(
    ("edit", "state", "message"),
    [case[1:] for case in CHECK_CASES],
    ids=[case[0] for case in CHECK_CASES],
)
def test_check_says_what_is_wrong(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[str], str] | None,
    state: CopyState,
    message: str,
) -> None:
    target = tmp_path / "_ws_deny.py"
    if edit is not None:
        target.write_text(edit(vendored_source()), encoding="utf-8")
    before = target.read_bytes() if target.exists() else None
    status = check_copy(tmp_path)
    assert (status.state, status.ok, status.path) == (state, False, target)
    assert message in status.message()
    assert main(["vendor", str(tmp_path), "--check"]) == 1
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err == f"{status.message()}\n"
    assert str(target) in output.err
    # --check writes nothing.
    assert (target.read_bytes() if target.exists() else None) == before


def test_the_messages_of_check_are_distinct(tmp_path: Path) -> None:
    messages: dict[str, set[str]] = {}
    for name, edit, state, _ in CHECK_CASES:
        directory = tmp_path / name
        directory.mkdir()
        if edit is not None:
            (directory / "_ws_deny.py").write_text(edit(vendored_source()), encoding="utf-8")
        message = check_copy(directory).message().replace(str(directory), "DEST")
        messages.setdefault(state, set()).add(re.sub(r"line \d+", "line N", message))
    # One sentence per state (another build of this version has its own), and no sentence
    # shared between two states.
    assert {state: len(texts) for state, texts in messages.items()} == {
        "missing": 1,
        "not-a-copy": 1,
        "other-version": 2,
        "edited": 1,
    }
    everything = [text for texts in messages.values() for text in texts]
    assert len(set(everything)) == len(everything)
    assert check_copy(tmp_path / "reformatted").line == _extension_line()
    assert check_copy(tmp_path / "header-edited").line != _extension_line()


def test_check_accepts_the_copy_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vendor(tmp_path / "pkg", "ws_deny")
    status = check_copy(tmp_path / "pkg", "ws_deny")
    assert (status.state, status.ok, status.version) == ("current", True, asgi_ws_deny.__version__)
    assert main(["vendor", str(tmp_path / "pkg"), "--name", "ws_deny", "--check"]) == 0
    output = capsys.readouterr()
    copy = tmp_path / "pkg" / "ws_deny.py"
    assert output.out == f"{copy} is the copy of asgi-ws-deny {asgi_ws_deny.__version__}\n"
    assert output.err == ""


def test_check_accepts_crlf_line_ends(tmp_path: Path) -> None:
    """A checkout that turned the copy's line ends into CRLF has not edited it: Python reads
    it the same."""
    (tmp_path / "_ws_deny.py").write_bytes(vendored_source().replace("\n", "\r\n").encode("utf-8"))
    assert check_copy(tmp_path).state == "current"


def test_check_of_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    assert check_copy(tmp_path / "absent").state == "missing"
    assert main(["vendor", str(tmp_path / "absent"), "--check"]) == 1
    assert not (tmp_path / "absent").exists()


def test_the_header_records_the_digest_of_the_core() -> None:
    header, _, core = vendored_source().partition(LINE)
    assert core == CORE_PATH.read_text(encoding="utf-8")
    assert f"{DIGEST}{hashlib.sha256(core.encode('utf-8')).hexdigest()}\n" in header


@pytest.mark.parametrize("argv", [["--help"], ["vendor", "--help"]], ids=["main", "vendor"])
def test_the_help_is_plain_text(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asgi_ws_deny", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "vendor" in result.stdout
    # No reStructuredText: literals, roles or references would be printed as typed.
    assert not re.search(r"`|:\w+:|\|\w+\|", result.stdout), result.stdout

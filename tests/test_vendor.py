"""Vendoring: the core copied into another tree, unchanged, working under any package name.

The core test suite itself runs against a vendored copy too: see the ``core`` fixture.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import asgi_ws_deny
from asgi_ws_deny.__main__ import main
from asgi_ws_deny.vendor import CORE_PATH, LICENCE, VendorError, vendor, vendored_source

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
    with pytest.raises(VendorError, match="not a directory"):
        vendor(tmp_path / "missing")


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
    assert main(["vendor", str(tmp_path / "nowhere")]) == 2
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

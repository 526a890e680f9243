"""Every code block in the docs runs, so no example rots.

Python blocks of a page run in order in one namespace (later blocks use what earlier ones
defined). Console blocks of ``python -m asgi_ws_deny`` run in a scratch directory; the few other
commands (the two-command contract, ``pip install``) are run by CI itself and listed here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
if not (ROOT / "docs").is_dir():
    pytest.skip("the docs/ of the repository are not in the sdist", allow_module_level=True)
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Commands whose truth is the CI run itself (or a package index), not a docs test.
RUN_ELSEWHERE = {
    "make conformance",
    "make test",
    "make bench",
    "make soak",
    "make docs",
    "pip install asgi-ws-deny",
}


def blocks(page: Path, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(page.read_text()) if lang == language]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# Only the pages that have blocks of a kind: a case for a page without any would check nothing.
PYTHON_PAGES = [page for page in PAGES if blocks(page, "python")]
CONSOLE_PAGES = [page for page in PAGES if blocks(page, "console")]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_python_blocks_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The page runs as a module of its own, as a user's file would: frameworks that look up a
    # handler's module in sys.modules (Litestar does) find it.
    module = types.ModuleType(f"docs_{page.stem}")
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, module.__name__, module)
        for number, code in enumerate(blocks(page, "python"), 1):
            try:
                exec(compile(code, f"{page_id(page)} block {number}", "exec"), module.__dict__)
            except Exception as error:  # pragma: no cover - the message is the point
                pytest.fail(f"{page_id(page)} python block {number} failed: {error!r}\n{code}")


def test_there_are_python_blocks_to_run() -> None:
    assert sum(len(blocks(page, "python")) for page in PAGES) >= 10


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=page_id)
def test_console_blocks_run(page: Path, tmp_path: Path) -> None:
    for code in blocks(page, "console"):
        for line in code.splitlines():
            command = line.split("#", 1)[0].strip()
            if not command or command in RUN_ELSEWHERE:
                continue
            argv = shlex.split(command)
            assert argv[:3] == ["python", "-m", "asgi_ws_deny"], f"unknown command: {command}"
            for arg in argv[3:]:
                if "/" in arg:  # a destination directory, as in the project's tree
                    (tmp_path / arg).mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                [sys.executable, *argv[1:]],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{command}: {result.stderr}"

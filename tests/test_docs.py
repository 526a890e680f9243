"""Every code block in the docs runs, so no example rots, with exactly what the page installs.

Each page with Python blocks runs in a fresh venv holding the package, built from this checkout,
with the extras and packages its ``pip install '.[...]' ...`` lines name (a page without one gets
the package alone), and nothing else: a page that forgets to name what its code imports fails.
One venv per distinct set; pip's cache is used. The blocks of a page run in order in one
namespace (later blocks use what earlier ones defined), as a module of its own.

Console blocks of ``python -m asgi_ws_deny`` run in a scratch directory; ``pip install`` lines
are the venvs above; the few other commands (the two-command contract, building the wheel) are
run by CI itself and listed here.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
if not (ROOT / "docs").is_dir():
    pytest.skip("the docs/ of the repository are not in the sdist", allow_module_level=True)
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
CONSTRAINTS = ROOT / "conformance" / "constraints.txt"
# Commands whose truth is the CI run itself, not a docs test.
RUN_ELSEWHERE = {
    "make conformance",
    "make test",
    "make bench",
    "make soak",
    "make docs",
}
#: The README's wheel, as written: built from the checkout, then installed where it is wanted.
BUILD_WHEEL = "python -m pip wheel --no-deps -w dist ."
INSTALL_WHEEL = "pip install dist/asgi_ws_deny-*.whl"
#: Runs a page's blocks, given as JSON on stdin, in a module of their own.
RUNNER = r"""
import json, sys, traceback, types
page = json.load(sys.stdin)
module = types.ModuleType(page["module"])
sys.modules[module.__name__] = module
for number, code in enumerate(page["blocks"], 1):
    try:
        exec(compile(code, f"{page['name']} block {number}", "exec"), module.__dict__)
    except BaseException:
        print(f"{page['name']} python block {number} failed:\n{code}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""

#: What a page installs: (extras of the package, other packages).
Requirements = tuple[tuple[str, ...], tuple[str, ...]]


def blocks(page: Path, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(page.read_text()) if lang == language]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def requirements(page: Path) -> Requirements:
    """The extras and packages a page's ``pip install`` lines for this checkout name."""
    extras: set[str] = set()
    packages: set[str] = set()
    for code in blocks(page, "console"):
        for line in code.splitlines():
            argv = shlex.split(line.split("#", 1)[0])
            if argv[:2] != ["pip", "install"]:
                continue
            targets = argv[2:]
            checkout = [t for t in targets if t == "." or t.startswith(".[")]
            if not checkout:
                continue  # a wheel of this same package, built by the line before
            for target in targets:
                if target in checkout:
                    extras.update(filter(None, target[2:-1].split(",")))
                else:
                    packages.add(target)
    return tuple(sorted(extras)), tuple(sorted(packages))


# Only the pages that have blocks of a kind: a case for a page without any would check nothing.
PYTHON_PAGES = [page for page in PAGES if blocks(page, "python")]
CONSOLE_PAGES = [page for page in PAGES if blocks(page, "console")]


@pytest.fixture(scope="session")
def page_venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[Requirements, Path]:
    """A fresh venv per distinct set of requirements: this checkout's package, with them.

    uv creates and fills them (from its cache after the first run): pip takes minutes for the
    nine sets, uv seconds.
    """
    base = tmp_path_factory.mktemp("docs-venvs")

    def create(number: int, wanted: Requirements) -> Path:
        extras, packages = wanted
        venv = base / f"venv-{number}"
        uv = [sys.executable, "-m", "uv"]
        subprocess.run([*uv, "venv", "-q", "-p", sys.executable, venv], check=True)
        python = venv / "bin" / "python"
        target = f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)
        install = [*uv, "pip", "install", "-q", "-p", python, "-c", CONSTRAINTS, target]
        result = subprocess.run([*install, *packages], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{shlex.join(map(str, install))}: {result.stderr}"
        return python

    wanted = sorted({requirements(page) for page in PYTHON_PAGES})
    with ThreadPoolExecutor(max_workers=3) as pool:
        pythons = list(pool.map(create, range(len(wanted)), wanted))
    return dict(zip(wanted, pythons, strict=True))


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_python_blocks_run_with_what_the_page_installs(
    page: Path, page_venvs: dict[Requirements, Path], tmp_path: Path
) -> None:
    # The page runs as a module of its own, as a user's file would: frameworks that look up a
    # handler's module in sys.modules (Litestar does) find it. It runs outside the checkout, so
    # the package imported is the installed one.
    source = {
        "name": page_id(page),
        "module": f"docs_{page.stem}",
        "blocks": blocks(page, "python"),
    }
    result = subprocess.run(
        [page_venvs[requirements(page)], "-c", RUNNER],
        input=json.dumps(source),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_the_extras_pages_name_exist() -> None:
    # pip only warns about an unknown extra; a misspelt one would install nothing.
    known = set(metadata.metadata("asgi-ws-deny").get_all("Provides-Extra") or [])
    named = {extra for page in PAGES for extra in requirements(page)[0]}
    assert named
    assert named <= known, named - known


def test_pages_that_use_the_harness_name_its_extra() -> None:
    for page in PYTHON_PAGES:
        code = "\n".join(blocks(page, "python"))
        if "asgi_ws_deny.testing" in code:
            assert "testing" in requirements(page)[0], page_id(page)


def test_there_are_python_blocks_to_run() -> None:
    assert sum(len(blocks(page, "python")) for page in PAGES) >= 10


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=page_id)
def test_console_blocks_run(page: Path, tmp_path: Path) -> None:
    for code in blocks(page, "console"):
        for line in code.splitlines():
            command = line.split("#", 1)[0].strip()
            if not command or command in RUN_ELSEWHERE:
                continue
            if command.startswith("pip install ") and command != INSTALL_WHEEL:
                continue  # a checkout's extras: the venvs of the test above
            if command in (BUILD_WHEEL, INSTALL_WHEEL):
                run_wheel_line(command, tmp_path)
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


def run_wheel_line(command: str, directory: Path) -> None:
    """Build the wheel of the checkout into ``directory/dist``, or install it in a fresh venv
    there and import it."""
    if command == BUILD_WHEEL:
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", "dist", ROOT]
        subprocess.run(argv, cwd=directory, check=True, capture_output=True)
        return
    (wheel,) = (directory / "dist").glob("asgi_ws_deny-*.whl")
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "-q", "-p", sys.executable, directory / "venv"], check=True)
    python = directory / "venv" / "bin" / "python"
    subprocess.run([*uv, "pip", "install", "-q", "-p", python, wheel], check=True)
    code = "import asgi_ws_deny, sys; print(asgi_ws_deny.__file__)"
    result = subprocess.run(
        [python, "-c", code], cwd=directory, capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith(str(directory / "venv")), result.stdout

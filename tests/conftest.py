"""Shared fixtures: every async test runs under asyncio and under trio, and the core tests run
against the installed package and against a vendored copy of its core.

The source distribution carries the package and these tests, not the repository's other
packages (``conformance``, ``bench``, ``examples``, ``vendoring``): there, a test module that
imports one of them is reported as skipped, with the reason, instead of failing to import. In a
checkout every one of them is present, so nothing is skipped that way and an import error fails
as usual.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import asgi_ws_deny
from asgi_ws_deny.vendor import vendor

ROOT = Path(__file__).parent.parent
#: The repository's packages that the source distribution leaves out.
REPOSITORY_PACKAGES = ("conformance", "bench", "examples", "vendoring")

#: The name the vendored copy is imported under: any name must work.
VENDORED_NAME = "vendored_ws_deny"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per event loop."""
    return str(request.param)


@pytest.fixture(scope="session")
def vendored_core(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The core as a framework would have it: written by ``vendor`` and imported by path."""
    path = vendor(tmp_path_factory.mktemp("vendored"), VENDORED_NAME)
    spec = importlib.util.spec_from_file_location(VENDORED_NAME, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[VENDORED_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", params=["installed", "vendored"])
def core(request: pytest.FixtureRequest) -> ModuleType:
    """The public core API: ``asgi_ws_deny`` itself, or a vendored copy of ``_deny.py``."""
    if request.param == "installed":
        return asgi_ws_deny
    module: ModuleType = request.getfixturevalue("vendored_core")
    return module


@pytest.fixture
def server_frames() -> Callable[[bytes], list[tuple[int, bytes]]]:
    """Parse the frames a server wrote after its ``101`` (a `WireResponse`'s ``extra``)."""
    from conformance.client import ws_frames

    return ws_frames


def repository_imports(path: Path) -> list[str]:
    """The repository packages (absent from the sdist) that a test module imports, directly or
    through the ``tests`` modules it imports."""
    found: list[str] = []
    seen: set[Path] = set()
    pending = [path]
    while pending:
        module = pending.pop()
        if module in seen or not module.is_file():
            continue
        seen.add(module)
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top, _, rest = name.partition(".")
                if top in REPOSITORY_PACKAGES and top not in found:
                    found.append(top)
                elif top == "tests" and rest:
                    pending.append(ROOT / "tests" / f"{rest.split('.')[0]}.py")
    return found


class NeedsRepository(pytest.File):
    """A test module that needs packages of the repository the sdist does not carry."""

    missing: tuple[str, ...] = ()

    def collect(self) -> list[pytest.Item]:
        names = ", ".join(f"{name}/" for name in self.missing)
        pytest.skip(f"{self.path.name} needs the repository's {names}, not in the sdist")


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> object:
    missing = tuple(name for name in repository_imports(module_path) if not (ROOT / name).is_dir())
    if not missing:
        return None  # the usual Module
    collector = NeedsRepository.from_parent(parent, path=module_path)
    collector.missing = missing
    return collector

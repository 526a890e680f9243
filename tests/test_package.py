"""The package's shape: explicit exports, a standard-library-only core, type information."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import asgi_ws_deny

PACKAGE_DIR = Path(asgi_ws_deny.__file__).parent
CORE = PACKAGE_DIR / "_deny.py"


def public_modules() -> list[str]:
    names = ["asgi_ws_deny", "asgi_ws_deny._deny"]
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], "asgi_ws_deny."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


def defined_names(module_name: str) -> tuple[set[str], set[str]]:
    """Public names a module defines, and those it imports from inside the package."""
    module = importlib.import_module(module_name)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    names: set[str] = set()
    imported: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("asgi_ws_deny"):
            imported.update(alias.asname or alias.name for alias in node.names)
    public = {n for n in names if not n.startswith("_")}
    return public, {n for n in imported if not n.startswith("_") or n == "__version__"}


@pytest.mark.parametrize("module_name", public_modules())
def test_all_matches_what_the_module_defines(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert isinstance(exported, tuple)
    assert len(set(exported)) == len(exported)
    defined, imported = defined_names(module_name)
    if Path(str(module.__file__)).name == "__init__.py":
        # The package defines nothing itself: it re-exports every public name it imports.
        assert set(exported) == defined | imported
    else:
        # A module exports what it defines, and may re-export a name of the package's.
        assert defined <= set(exported) <= defined | imported
    for name in exported:
        assert hasattr(module, name), name


def test_the_package_reexports_the_core() -> None:
    import asgi_ws_deny._deny as core

    assert set(core.__all__) <= set(asgi_ws_deny.__all__)


def test_the_core_imports_only_the_standard_library() -> None:
    tree = ast.parse(CORE.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the core imports nothing relative: it is copied alone"
            assert node.module is not None
            imported.add(node.module.split(".")[0])
    imported.discard("__future__")
    assert imported, "the parser found no imports at all"
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names
    assert not imported & {"asyncio", "trio", "anyio", "sniffio"}


def test_importing_the_core_loads_no_event_loop_and_nothing_outside_the_stdlib() -> None:
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(CORE.parent)!r})\n"
        "before = set(sys.modules)\n"
        "import _deny\n"
        "loaded = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(loaded - set(sys.stdlib_module_names) - {'_deny'}))\n"
        "print('asyncio' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split("\n")[:2] == ["[]", "False"], result.stdout


def test_type_information_ships() -> None:
    assert (PACKAGE_DIR / "py.typed").is_file()

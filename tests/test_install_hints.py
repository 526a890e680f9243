"""Every optional import fails with the install line of the extra that provides it.

Each case runs in a fresh interpreter where the third-party package is made unimportable, as it
is where the extra was not installed; the hint must name an extra the package declares, and that
extra must require the package.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

import pytest

#: (what the user runs, the package it needs, the extra that installs it)
CASES = [
    ("import asgi_ws_deny.testing", "anyio", "testing"),
    ("import asgi_ws_deny.contrib.starlette", "starlette", "starlette"),
    ("import asgi_ws_deny.contrib.channels", "channels", "channels"),
    ("import asgi_ws_deny.contrib.quart", "quart", "quart"),
    ("import asgi_ws_deny.contrib.falcon", "falcon", "falcon"),
    ("import asgi_ws_deny.contrib.litestar", "litestar", "litestar"),
    (
        "from asgi_ws_deny.checks import RateLimitCheck; RateLimitCheck('1/second')",
        "limits",
        "ratelimit",
    ),
]

# Makes a top-level package unimportable, as if it were not installed.
BLOCKER = """
import sys

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {package!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Missing())
try:
    {statement}
except ImportError as error:
    print(error)
    sys.exit(3)
"""

HINT = re.compile(r"pip install 'asgi-ws-deny\[([a-z-]+)\]'")


def extra_requirements(extra: str) -> set[str]:
    """The distributions an extra of the installed package requires (names only)."""
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    names = set()
    for requirement in metadata.requires("asgi-ws-deny") or []:
        if marker.search(requirement):
            names.add(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower())
    return names


@pytest.mark.parametrize(("statement", "package", "extra"), CASES, ids=[c[1] for c in CASES])
def test_a_missing_package_names_its_extra(statement: str, package: str, extra: str) -> None:
    code = BLOCKER.format(package=package, statement=statement)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 3, result.stdout + result.stderr
    hint = HINT.search(result.stdout)
    assert hint is not None, result.stdout
    assert hint.group(1) == extra
    assert package in extra_requirements(extra)


def test_the_statements_import_where_the_packages_are_installed() -> None:
    # The blocker is what makes each case fail: without it, every statement runs.
    for statement, _, _ in CASES:
        subprocess.run([sys.executable, "-c", statement], check=True)

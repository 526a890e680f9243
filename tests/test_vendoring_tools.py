"""The configuration docs/vendoring.md shows keeps a host project's tools off the copy.

A host project is made as the page describes it (the copy in ``src/myframework/_compat``, imported
by the framework), with the page's ``pyproject.toml``, and the host's own tools run over it with
settings unlike this project's. Each test runs the tool once without the configuration too, to
show that the tool would otherwise touch the copy: without that, the test could not fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from asgi_ws_deny.vendor import check_copy, vendor

ROOT = Path(__file__).parent.parent
PAGE = ROOT / "docs" / "vendoring.md"
if not PAGE.exists():
    pytest.skip("the docs/ of the repository are not in the sdist", allow_module_level=True)
COPY = "src/myframework/_compat/ws_deny.py"


def documented_config() -> str:
    blocks = re.findall(r"^```toml\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) == 1
    return str(blocks[0])


def make_host(root: Path, config: str) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(config, encoding="utf-8")
    package = root / "src" / "myframework"
    vendor(package / "_compat", "ws_deny")
    (package / "_compat" / "__init__.py").write_text("")
    (package / "__init__.py").write_text(
        'from myframework._compat.ws_deny import deny\n\n__all__ = ["deny"]\n'
    )
    return package / "_compat"


def run(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=root, capture_output=True, text=True, check=False
    )


def test_the_documented_config_names_every_tool() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    config = tomllib.loads(documented_config())
    assert set(config["tool"]) == {"ruff", "black", "mypy", "coverage"}
    assert config["tool"]["ruff"]["extend-exclude"] == [COPY]
    assert config["tool"]["coverage"]["run"]["omit"] == [COPY]
    assert re.search(config["tool"]["black"]["extend-exclude"], "/" + COPY)
    assert re.search(config["tool"]["mypy"]["exclude"][0], COPY)
    assert config["tool"]["mypy"]["overrides"] == [
        {"module": "myframework._compat.ws_deny", "ignore_errors": True}
    ]


# A host whose formatter wants single quotes and short lines, and whose linter fixes all it can.
RUFF_HOST = ("--config", "line-length = 60", "--config", 'format.quote-style = "single"')


def ruff_over(root: Path) -> None:
    # The copy named on the command line too, as pre-commit names the files it checks.
    for command in (["check", "--select", "ALL", "--fix", "--exit-zero"], ["format"]):
        result = run(root, "ruff", *command, *RUFF_HOST, "src", COPY)
        assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_leaves_the_copy_alone(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    make_host(bare, "")
    ruff_over(bare)
    assert check_copy(bare / "src" / "myframework" / "_compat", "ws_deny").state == "edited"

    host = tmp_path / "host"
    copy = make_host(host, documented_config())
    ruff_over(host)
    assert check_copy(copy, "ws_deny").ok
    # while the framework's own code is still formatted
    assert "'deny'" in (host / "src" / "myframework" / "__init__.py").read_text()


def test_mypy_keeps_the_copys_errors_under_the_hosts_options_out(tmp_path: Path) -> None:
    # A host stricter than the copy was written for: no expression may have the type Any.
    mypy = ("mypy", "--disallow-any-expr", "--no-incremental", "src/myframework")
    bare = tmp_path / "bare"
    make_host(bare, "")
    result = run(bare, *mypy)
    assert result.returncode == 1
    assert "ws_deny.py" in result.stdout

    host = tmp_path / "host"
    make_host(host, documented_config())
    result = run(host, *mypy)
    assert result.returncode == 0, result.stdout + result.stderr
    # the copy was still analysed: the framework's use of it is typed
    (host / "src" / "myframework" / "misuse.py").write_text(
        "from myframework._compat.ws_deny import Denial\n\nDenial(status='403')\n"
    )
    result = run(host, *mypy)
    assert result.returncode == 1
    assert 'misuse.py:3: error: Argument "status" to "Denial"' in result.stdout

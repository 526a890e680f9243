"""Each framework adapter imports its own framework, and only when it is imported itself."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: The top-level modules of every framework an adapter exists for.
FRAMEWORKS = {
    "starlette": {"starlette"},
    "channels": {"channels"},
    "quart": {"quart"},
    "falcon": {"falcon"},
    "litestar": {"litestar"},
}
EVERY_FRAMEWORK = {"fastapi", "django"}.union(*FRAMEWORKS.values())


def loaded_after(statement: str) -> set[str]:
    """The top-level modules loaded once ``statement`` ran in a fresh interpreter."""
    modules = "sorted({m.split('.')[0] for m in sys.modules})"
    code = f"import json, sys\n{statement}\nprint(json.dumps({modules}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


def test_the_package_and_contrib_load_no_framework() -> None:
    loaded = loaded_after(
        "import asgi_ws_deny, asgi_ws_deny.contrib, asgi_ws_deny.guard, asgi_ws_deny.checks"
    )
    assert not loaded & EVERY_FRAMEWORK
    assert "asyncio" not in loaded


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_an_adapter_loads_its_framework_and_no_other(name: str) -> None:
    loaded = loaded_after(f"import asgi_ws_deny.contrib.{name}")
    assert FRAMEWORKS[name] <= loaded
    assert not loaded & (EVERY_FRAMEWORK - FRAMEWORKS[name])

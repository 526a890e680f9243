"""Shared fixtures: every async test runs under asyncio and under trio, and the core tests run
against the installed package and against a vendored copy of its core."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType

import pytest

import asgi_ws_deny
from asgi_ws_deny.vendor import vendor
from conformance.client import ws_frames

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
    return ws_frames

"""The report's account of each variant's servers, whatever the number of workers that ran it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from conformance.report import ConformanceReport
from conformance.servers import VARIANTS

pytestmark = pytest.mark.selftest


#: As much of a pytest config as the report reads here: no terminal to show progress on.
CONFIG = SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda name: None))


def record(case: str, handle: str, starts: int, crashes: int) -> dict[str, Any]:
    server = {"starts": starts, "crashes": crashes, "hangs": 0, "failure": None}
    return {"variant": "granian", "case": case, "server": {**server, "handle": handle}}


def test_a_variant_cut_into_shards_counts_the_starts_of_every_shard() -> None:
    report = ConformanceReport(CONFIG, [VARIANTS["granian"]])  # type: ignore[arg-type]
    report._add("granian", record("1.1", "first", 1, 0))
    report._add("granian", record("2.11", "first", 2, 1))
    report._add("granian", record("7.7", "second", 1, 0))
    server = report._servers()["granian"]
    assert (server["starts"], server["crashes"], server["hangs"]) == (3, 1, 0)
    assert server["failure"] is None
    assert "handle" not in server

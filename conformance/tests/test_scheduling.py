"""The matrix's xdist scheduling: a variant's cases on one worker, the slowest variants first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.scheduling import VariantScheduling, variant_durations, variant_scope

pytestmark = pytest.mark.selftest

VARIANTS = ["uvicorn-sansio", "granian", "daphne"]


def nodeid(variant: str, case: str) -> str:
    return f"conformance/test_matrix.py::test_case[{variant}-{case}]"


class Config:
    """As much of a pytest config as the scheduler reads: one worker (``--tx popen``)."""

    def getvalue(self, name: str) -> Any:
        return ["popen"] if name == "tx" else None


class Worker:
    """What the scheduler sends a worker: the indexes of the tests to run."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.append(indexes)


def test_a_test_id_names_its_variant() -> None:
    assert variant_scope(nodeid("granian", "2.3-order"), VARIANTS) == "granian"
    assert variant_scope("conformance/tests/test_client.py::test_x", VARIANTS) is None


def test_durations_come_from_the_previous_index(tmp_path: Path) -> None:
    index = tmp_path / "index.json"
    assert variant_durations(index) == {}
    results = {"granian": {"2.3": {"duration": 2.5}, "3.1": {"duration": 0.5}}, "daphne": {}}
    index.write_text(json.dumps({"results": results}))
    assert variant_durations(index) == {"granian": 3.0, "daphne": 0.0}
    index.write_text("not json")
    assert variant_durations(index) == {}


def test_the_slowest_variant_is_handed_out_first() -> None:
    collection = [nodeid(variant, case) for variant in VARIANTS for case in ("1.1", "3.1")]
    durations = {"granian": 30.0, "daphne": 10.0, "uvicorn-sansio": 5.0}
    scheduling = VariantScheduling(Config(), variants=VARIANTS, durations=durations)
    worker = Worker()
    scheduling.registered_collections[worker] = collection
    for node in collection:
        scheduling.workqueue.setdefault(scheduling._split_scope(node), {})[node] = False
    scheduling._assign_work_unit(worker)
    scheduling._assign_work_unit(worker)
    granian = [collection.index(nodeid("granian", case)) for case in ("1.1", "3.1")]
    daphne = [collection.index(nodeid("daphne", case)) for case in ("1.1", "3.1")]
    assert worker.sent == [granian, daphne]

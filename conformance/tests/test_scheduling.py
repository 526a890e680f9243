"""The matrix's xdist scheduling: a variant's cases on one worker (a long one's cut into shards),
the slowest work first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.scheduling import (
    VariantScheduling,
    case_durations,
    shards,
    units,
    variant_scope,
)

pytestmark = pytest.mark.selftest

VARIANTS = ["uvicorn-sansio", "granian", "daphne"]


def nodeid(variant: str, case: str) -> str:
    return f"conformance/test_matrix.py::test_case[{variant}-{case}]"


class Config:
    """As much of a pytest config as the scheduler reads: ``workers`` (``--tx popen`` each)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def getvalue(self, name: str) -> Any:
        return ["popen"] * self.workers if name == "tx" else None


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
    assert case_durations(index) == {}
    results = {"granian": {"2.3": {"duration": 2.5}, "3.1": {"duration": 0.5}}, "daphne": {}}
    index.write_text(json.dumps({"results": results}))
    assert case_durations(index) == {"granian": {"2.3": 2.5, "3.1": 0.5}, "daphne": {}}
    index.write_text("not json")
    assert case_durations(index) == {}


def test_the_slowest_variant_is_handed_out_first() -> None:
    collection = [nodeid(variant, case) for variant in VARIANTS for case in ("1.1", "3.1")]
    cases = {"granian": {"1.1": 30.0}, "daphne": {"1.1": 10.0}, "uvicorn-sansio": {"1.1": 5.0}}
    scheduling = VariantScheduling(Config(), variants=VARIANTS, cases=cases)
    worker = Worker()
    scheduling.registered_collections[worker] = collection
    for node in collection:
        scheduling.workqueue.setdefault(scheduling._split_scope(node), {})[node] = False
    scheduling._assign_work_unit(worker)
    scheduling._assign_work_unit(worker)
    granian = [collection.index(nodeid("granian", case)) for case in ("1.1", "3.1")]
    daphne = [collection.index(nodeid("daphne", case)) for case in ("1.1", "3.1")]
    assert worker.sent == [granian, daphne]


#: A catalogue in miniature: three conformance-app cases, then two cases of one framework app
#: and one of another.
CATALOGUE = [
    ("1.1", ""),
    ("2.1", ""),
    ("2.2", ""),
    ("7.1", "examples.a:app"),
    ("7.2", "examples.a:app"),
    ("7.3", "examples.b:app"),
]


def test_a_framework_apps_cases_stay_together() -> None:
    assert units(CATALOGUE) == [["1.1"], ["2.1"], ["2.2"], ["7.1", "7.2"], ["7.3"]]


def test_shards_are_runs_of_whole_units_of_about_equal_time() -> None:
    cut_at = units(CATALOGUE)
    times = {"1.1": 1.0, "2.1": 1.0, "2.2": 1.0, "7.1": 2.0, "7.2": 1.0, "7.3": 0.5}
    assert shards(cut_at, times, 2) == [["1.1", "2.1", "2.2"], ["7.1", "7.2", "7.3"]]
    assert shards(cut_at, times, 1) == [[case for case, _ in CATALOGUE]]
    # Never more shards than units, and never an empty one.
    assert shards(cut_at, times, 9) == [[case] for case in ("1.1", "2.1", "2.2")] + [
        ["7.1", "7.2"],
        ["7.3"],
    ]


def test_a_variant_longer_than_a_workers_share_is_cut_into_shards() -> None:
    cases = [case for case, _ in CATALOGUE]
    collection = [nodeid(variant, f"{case}-slug") for variant in VARIANTS for case in cases]
    times = {
        "granian": {"1.1": 5.0, "2.1": 5.0, "2.2": 5.0, "7.1": 5.0, "7.2": 5.0, "7.3": 5.0},
        "daphne": dict.fromkeys(cases, 1.0),
        "uvicorn-sansio": dict.fromkeys(cases, 0.5),
    }
    # Two workers: a fair share is (30 + 6 + 3) / 2, under granian's 30, so granian is cut in
    # two; daphne and uvicorn stay whole.
    scheduling = VariantScheduling(
        Config(workers=2), variants=VARIANTS, cases=times, catalogue=CATALOGUE
    )
    scopes = {node: scheduling._split_scope(node) for node in collection}
    for node in collection:
        scheduling.workqueue.setdefault(scopes[node], {})[node] = False
    assert [scopes[nodeid("granian", f"{case}-slug")] for case in cases] == [
        "variant:granian"
    ] * 3 + ["variant:granian#2"] * 3
    assert {scopes[node] for node in collection if "daphne" in node} == {"variant:daphne"}
    workers = [Worker(), Worker()]
    for worker in workers:
        scheduling.registered_collections[worker] = collection
        scheduling._assign_work_unit(worker)
    # The two halves of granian first, one on each worker.
    first = {collection[index] for worker in workers for index in worker.sent[0]}
    assert first == {nodeid("granian", f"{case}-slug") for case in cases}


def test_without_earlier_times_every_variant_is_cut_in_two() -> None:
    scheduling = VariantScheduling(Config(workers=4), variants=VARIANTS, catalogue=CATALOGUE)
    for variant in VARIANTS:
        scopes = [scheduling._split_scope(nodeid(variant, f"{case}-slug")) for case, _ in CATALOGUE]
        assert scopes == [f"variant:{variant}"] * 3 + [f"variant:{variant}#2"] * 3

"""The admission cases of the matrix (``conformance/cases/admission.py``) on real servers: the
guard's receive after a denial, one-time tickets, connection caps and message limits, on servers
with the denial-response extension and without it."""

from __future__ import annotations

import pytest

from conformance.cases.admission import CASES as ADMISSION_CASES

pytestmark = pytest.mark.servers

# (variant, the cells every case must show there)
EXPECTED = {
    # uvicorn's receive() returns at once after a denial (case 4.1); the guard's too.
    "uvicorn-sansio": {
        "9.1": "disconnect 1006 at once",
        "9.2": "101 once, then 401",
        "9.3": "429, released on close",
        "9.4": "close 1009",
        "9.5": "close 4009",
    },
    # hypercorn's blocks until the client closes (case 4.1): the guard answers at once.
    "hypercorn-trio": {
        "9.1": "disconnect 1006 at once",
        "9.2": "101 once, then 401",
        "9.3": "429, released on close",
        "9.4": "close 1009",
        "9.5": "close 4009",
    },
    "hypercorn-h2": {
        "9.1": "n/a",
        "9.2": "200 once, then 401",
        "9.3": "n/a",
        "9.4": "n/a",
        "9.5": "n/a",
    },
    # No extension: the refusals are the fallback 403; daphne sends close frames without their
    # reason, and refuses to send 1009 at all (autobahn sends only 1000 and 3000-4999): the
    # guard logs that, the app ends, and the connection stays open until the client leaves;
    # 4009 works (measured with daphne 4.2.3).
    "daphne": {
        "9.1": "disconnect 1006 at once",
        "9.2": "101 once, then 403 fallback",
        "9.3": "403 fallback, released on close",
        "9.4": "no close",
        "9.5": "close 4009, reason dropped",
    },
}


#: Cells that deviate from the case's promise, by variant: the server's doing.
DEVIATIONS = {"daphne": {"9.4"}}


@pytest.mark.parametrize("variant", list(EXPECTED))
def test_the_admission_cases_conform(variant: str) -> None:
    from conformance.runner import ServerHandle
    from conformance.servers import resolve_variant

    handle = ServerHandle(resolve_variant(variant))
    try:
        results = {case.id: handle.run(case).observation for case in ADMISSION_CASES}
    finally:
        handle.close()
    cells = {case_id: observation.cell for case_id, observation in results.items()}
    details = {case_id: observation.detail for case_id, observation in results.items()}
    assert cells == EXPECTED[variant], details
    for case_id, observation in results.items():
        if observation.cell == "n/a":
            assert observation.conforms is None
        else:
            deviates = case_id in DEVIATIONS.get(variant, ())
            assert observation.conforms is not deviates, details[case_id]

"""The conformance matrix: every case of `conformance.cases` on every server variant.

A result that matches its expectation passes, whatever it is; an unexpected one fails with the
observation, the expectation and the server output of that case.
"""

from __future__ import annotations

import pytest

from conformance.cases import Case
from conformance.expectations import Expectations
from conformance.report import RECORD_KEY, record_of
from conformance.runner import ServerHandle


def test_case(
    server: ServerHandle, case: Case, expectations: Expectations, request: pytest.FixtureRequest
) -> None:
    result = server.run(case)
    expectation = expectations.for_case(server.variant.name, case)
    record = record_of(server, case, result, expectation)
    request.node.user_properties.append((RECORD_KEY, record))
    if result.log:
        request.node.add_report_section("call", f"{server.variant.name} output", result.log)
    if not record["as_expected"]:
        observation = result.observation
        pytest.fail(
            f"{server.variant.name} {case.id} ({case.title}): got {observation.cell!r}, "
            f"expected {expectation.expected!r}"
            + (f" [{expectation.note}]" if expectation.note else "")
            + f"\n{observation.detail}",
            pytrace=False,
        )

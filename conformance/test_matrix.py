"""The conformance matrix: every case of `conformance.cases` on every server variant.

A result that matches its expectation passes, whatever it is; an unexpected one fails with the
observation, the expectation and the server output of that case. A case that does not apply on
a variant (another protocol or event loop, no extension where the case needs it) is skipped, so
that it is never counted as passed; its cell in the matrix reads ``n/a``. A case whose framework
is not installed fails: the install is broken, and the case would otherwise go unmeasured.
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
    expectation = expectations.for_case(server.variant.name, case, server.variant.version())
    record = record_of(server, case, result, expectation)
    request.node.user_properties.append((RECORD_KEY, record))
    if result.log:
        request.node.add_report_section("call", f"{server.variant.name} output", result.log)
    observation = result.observation
    if observation.cell == "n/a" and not expectation.listed:
        if observation.detail.startswith("not installed"):
            pytest.fail(f"{case.id} cannot run: {observation.detail}", pytrace=False)
        pytest.skip(f"{case.id} does not apply on {server.variant.name}: {observation.detail}")
    if not record["as_expected"]:
        pytest.fail(
            f"{server.variant.name} {case.id} ({case.title}): got {observation.cell!r}, "
            f"expected {expectation.expected!r}"
            + (f" [{expectation.note}]" if expectation.note else "")
            + f"\n{observation.detail}",
            pytrace=False,
        )

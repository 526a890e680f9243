"""The case catalogue: what each case sends, what a conforming server answers, and the check.

Theory of operation
-------------------
A `Case` (`conformance.cases.case`) has an id grouped by topic (``2.3``), a slug for test ids, a
description, the text it rests on (``reference``), a level (MUST / SHOULD / INFO) and a ``run``
function. ``run`` gets a `Probe` (`conformance.cases.probe`) bound to one running server; it
makes the handshake(s), reads what the app recorded (`conformance.apps` writes events), and
returns an `Observation`:

- ``cell``: a short, deterministic reading for the matrix (``401 ok``, ``403 fallback``,
  ``500``, ``hang``, ``101!``, ``crash``); never a timing, so that expectations can pin it;
- ``conforms``: whether the requirement of a MUST/SHOULD case is met (None for INFO cases and
  where the case does not apply, ``n/a``);
- ``status`` and ``detail``: the HTTP status received and a human account with the raw bytes.

Whether an observation is *expected* is decided elsewhere (`conformance.expectations`): by
default a MUST/SHOULD case is expected to conform and an INFO case to show its ``default`` cell;
``conformance/expectations.toml`` records each variant's known deviations.

Groups, one module each, every case next to the function that runs it: 1 the scope (`scope`);
2 the denial response from raw ASGI messages (`response`); 3 close, return and errors before
accept (`before_accept`); 4 after the denial (`after_denial`); 5 the helper contract through
asgi_ws_deny's public API (`contract`); 6 what real clients (websockets, wsproto) read of a
denial (`clients`); 7 the helper contract through each framework's example app
(``examples/frameworks/``, `frameworks`); 8 adversarial clients around a denial (pipelining,
reuse, bytes after the head, half-close, a slow head, a large denial unread, a reset mid-response;
`adversarial`); 9 what the guard keeps after admission (a denied application's ``receive``,
tickets, connection caps, message limits; `admission`); 10 which of HTTP/2 and HTTP/3 the server
offers a WebSocket over (`transports`). FastAPI's own security classes are group 7 too
(`fastapi_security`).

A case runs against ``conformance.apps:app`` unless it names another application (``app``, with
the distributions it ``requires`` and the event ``loops`` it runs on): the group 7 cases run
the framework example apps unchanged, each on a server of its own (`conformance.runner`).
Where a case does not apply (another protocol, another event loop, a framework that is not
installed) it is ``n/a`` without a server being asked (`not_applicable`).
"""

from __future__ import annotations

from conformance.cases import (
    admission,
    adversarial,
    after_denial,
    before_accept,
    clients,
    contract,
    fastapi_security,
    frameworks,
    response,
    scope,
    transports,
)
from conformance.cases.case import Case, Level, not_applicable, run_case
from conformance.cases.frameworks import FRAMEWORK_APPS
from conformance.cases.probe import CLOSE_WAIT, HANG, Observation, Opened, Probe

__all__ = (
    "CASES",
    "CLOSE_WAIT",
    "FRAMEWORK_APPS",
    "GROUPS",
    "HANG",
    "Case",
    "Level",
    "Observation",
    "Opened",
    "Probe",
    "case_by_id",
    "not_applicable",
    "run_case",
)

_MODULES = (
    scope,
    response,
    before_accept,
    after_denial,
    contract,
    clients,
    frameworks,
    fastapi_security,
    adversarial,
    admission,
    transports,
)

#: The title of each group, by its number (``"2"``), in catalogue order.
GROUPS: dict[str, str] = {module.GROUP: module.TITLE for module in _MODULES}

#: Every case, in catalogue order (by group, then by id).
CASES: tuple[Case, ...] = tuple(case for module in _MODULES for case in module.CASES)


def case_by_id(case_id: str) -> Case:
    """The case with id ``case_id`` (``"2.3"``)."""
    for case in CASES:
        if case.id == case_id:
            return case
    raise KeyError(f"no case {case_id!r}")

"""A case of the catalogue: what it is, where it applies, and running it.

A `Case` has an id grouped by topic (``2.3``), a slug for test ids, a description, the text it
rests on (``reference``), a level (MUST / SHOULD / INFO) and a ``run`` function, which gets a
`Probe` bound to one running server and returns an `Observation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from typing import TYPE_CHECKING, Literal

from conformance.cases.probe import Observation, Probe

if TYPE_CHECKING:
    from conformance.servers import Variant

__all__ = (
    "ASGI_ERRORS",
    "ASGI_EXT",
    "ASGI_WWW",
    "H1",
    "Case",
    "Level",
    "not_applicable",
    "run_case",
)

Level = Literal["MUST", "SHOULD", "INFO"]

ASGI_EXT = "asgiref docs/extensions.rst, WebSocket Denial Response"


ASGI_WWW = "ASGI HTTP & WebSocket spec (asgiref specs/www.rst)"


ASGI_ERRORS = "ASGI spec (asgiref specs/asgi.rst), Error Handling"


H1 = frozenset({"http/1.1"})


@dataclass(frozen=True)
class Case:
    """One entry of the catalogue."""

    id: str
    slug: str
    title: str
    description: str
    reference: str
    level: Level
    run: Callable[[Probe], Observation]
    #: The expected cell of an INFO case where the expectations file says nothing.
    default: str = ""
    #: The protocols the case applies to; elsewhere it is ``n/a``.
    protocols: frozenset[str] = frozenset({"http/1.1", "h2", "h3"})
    #: Group 5 cases exercise asgi_ws_deny itself (``-m contract`` selects them).
    contract: bool = False
    #: An INFO case about what a server offers (group 10, transports): its cells are facts
    #: about the server, never deviations, so they need no repro and no entry among its bugs.
    capability: bool = False
    #: The application ("module:attr") the case runs against; "" is ``conformance.apps:app``.
    app: str = ""
    #: The distributions that application needs; where one is missing the case is ``n/a``.
    requires: tuple[str, ...] = ()
    #: The event loops that application runs on (`Variant.event_loop`); elsewhere ``n/a``.
    loops: frozenset[str] = frozenset({"asyncio", "trio"})

    @property
    def group(self) -> str:
        return self.id.split(".")[0]

    @property
    def key(self) -> str:
        """The id used in test names: ``2.3-order``."""
        return f"{self.id}-{self.slug}"


def not_applicable(case: Case, variant: Variant) -> Observation | None:
    """``n/a`` where ``case`` does not apply on ``variant``, before any server is asked."""
    if variant.protocol not in case.protocols:
        return Observation("n/a", None, detail=f"not applicable over {variant.protocol}")
    if variant.event_loop not in case.loops:
        loops = " or ".join(sorted(case.loops))
        return Observation(
            "n/a", None, detail=f"the application runs on {loops}, not {variant.event_loop}"
        )
    missing = []
    for dist in case.requires:
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing.append(dist)
    if missing:
        return Observation("n/a", None, detail=f"not installed: {', '.join(missing)}")
    return None


def run_case(case: Case, probe: Probe) -> Observation:
    """Run ``case``; ``n/a`` where it does not apply; any client error is a result.

    A server that answered with a malformed message (`Probe.malformed`) does not meet the
    case's MUST or SHOULD, whatever else the case saw: no client gets to read that answer."""
    skip = not_applicable(case, probe.variant)
    if skip is not None:
        return skip
    try:
        observation = case.run(probe)
    except Exception as exc:
        # A client-side error is an observation of the server, never a stalled run.
        return Observation("client error", False, None, f"{type(exc).__name__}: {exc}")
    if probe.malformed and observation.conforms:
        errors = "; ".join(str(response.error) for response in probe.malformed)
        return replace(
            observation,
            conforms=False,
            detail=f"{observation.detail}; the server's answer was rejected as {errors}",
        )
    return observation

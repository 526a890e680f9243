"""Group 1, the scope: does the server list the extension, which ``asgi.spec_version``.

The conformance app records the scope of a handshake on ``/scope``; the cases read it back.
"""

from __future__ import annotations

from typing import Any

from asgi_ws_deny import EXTENSION
from conformance.cases.case import ASGI_EXT, ASGI_WWW, Case
from conformance.cases.probe import (
    HANG,
    Observation,
    Probe,
    crash_or,
    show,
)
from conformance.client import WireResponse

__all__ = ("CASES", "GROUP", "TITLE")

GROUP = "1"
TITLE = "The scope"


def _scope_event(probe: Probe) -> tuple[WireResponse, dict[str, Any] | None]:
    response = probe.handshake("scope")
    return response, probe.wait_event("scope", timeout=HANG)


def run_extension(probe: Probe) -> Observation:
    response, scope = _scope_event(probe)
    if scope is None:
        return Observation(crash_or(probe, response), None, response.status, show(response))
    extensions = scope.get("extensions")
    listed = EXTENSION in (extensions or [])
    return Observation(
        "listed" if listed else "not listed",
        None,
        response.status,
        f"scope['extensions'] = {extensions!r}",
    )


EXTENSION_LISTED = Case(
    "1.1",
    "extension",
    "Extension listed",
    "Does scope['extensions'] list websocket.http.response?",
    ASGI_EXT,
    "INFO",
    run_extension,
    default="listed",
)


def run_spec_version(probe: Probe) -> Observation:
    response, scope = _scope_event(probe)
    if scope is None:
        return Observation(crash_or(probe, response), None, response.status, show(response))
    version = scope.get("spec_version")
    return Observation(
        str(version) if version else "missing",
        None,
        response.status,
        f"scope['asgi'] spec_version={version!r} version={scope.get('asgi_version')!r}",
    )


SPEC_VERSION = Case(
    "1.2",
    "spec-version",
    "asgi.spec_version",
    "The HTTP & WebSocket spec version the server claims (2.4: send raises OSError once "
    "the client has gone).",
    f"{ASGI_WWW}, WebSocket connection scope",
    "INFO",
    run_spec_version,
    default="2.4",
)


CASES: tuple[Case, ...] = (
    EXTENSION_LISTED,
    SPEC_VERSION,
)

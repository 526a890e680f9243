"""Group 3, before accept: a close gives 403 (and what becomes of its code and reason), an
app that returns without a handshake, an exception before any message and after the start.
"""

from __future__ import annotations

from conformance.cases.case import ASGI_ERRORS, ASGI_WWW, Case
from conformance.cases.probe import (
    Observation,
    Probe,
    crash_or,
    not_listed,
    show,
)

__all__ = ("CASES", "GROUP", "TITLE")

GROUP = "3"
TITLE = "Close, return and errors before accept"


def run_close_403(probe: Probe) -> Observation:
    response = probe.handshake("close")
    cell = crash_or(probe, response)
    return Observation(cell, response.status == 403, response.status, show(response))


CLOSE_403 = Case(
    "3.1",
    "close-403",
    "Close before accept",
    "websocket.close before accept gives 403 Forbidden.",
    f"{ASGI_WWW}, Close - send event ('must close the connection with a HTTP 403')",
    "MUST",
    run_close_403,
)


def run_close_reason(probe: Probe) -> Observation:
    response = probe.handshake("close-reason")
    cell = crash_or(probe, response)
    if b"conformance-reason" in response.raw or b"4001" in response.raw:
        cell += ", reason sent"
    elif response.status is not None:
        cell += ", no reason"
    return Observation(cell, None, response.status, show(response))


CLOSE_REASON = Case(
    "3.2",
    "close-reason",
    "Close code and reason before accept",
    "websocket.close with code 4001 and a reason before accept: are they sent?",
    f"{ASGI_WWW}, Close - send event",
    "INFO",
    run_close_reason,
    default="403, no reason",
)


def _terminated(probe: Probe, behaviour: str) -> Observation:
    response = probe.handshake(behaviour, wait_close=0.5)
    cell = crash_or(probe, response)
    upgraded = b"HTTP/1.1 101" in response.raw
    if upgraded and response.status != 101:
        cell += " then 101!"
    elif response.status is not None and not response.closed:
        cell += " open"
    conforms = (
        response.status is not None and response.status >= 400 and not upgraded and response.closed
    ) or (response.status is None and response.closed and cell != "crash")
    return Observation(cell, conforms, response.status, show(response))


def run_return(probe: Probe) -> Observation:
    return _terminated(probe, "return")


RETURN = Case(
    "3.3",
    "return",
    "Return without a handshake",
    "The app returns without sending anything: an error status, closed, never an upgrade.",
    f"{ASGI_WWW}, Connect - receive event; {ASGI_ERRORS}",
    "SHOULD",
    run_return,
)


def run_raise_before(probe: Probe) -> Observation:
    return _terminated(probe, "raise-before")


RAISE_BEFORE = Case(
    "3.4",
    "raise-before",
    "Exception before any message",
    "The app raises before sending: an error status, closed, never an upgrade.",
    f"{ASGI_ERRORS} ('must terminate the application instance and its connection')",
    "SHOULD",
    run_raise_before,
)


def run_raise_after_start(probe: Probe) -> Observation:
    response = probe.handshake("raise-after-start", wait_close=0.5)
    if probe.not_applicable():
        return not_listed()
    cell = crash_or(probe, response)
    if response.status == 401:
        length = response.first("content-length")
        if length is not None and len(response.body) < int(length):
            cell = "401 truncated"
    if response.status is not None and not response.closed:
        cell += " open"
    conforms = response.closed and response.status != 101 and cell != "crash"
    return Observation(cell, conforms, response.status, show(response))


RAISE_AFTER_START = Case(
    "3.5",
    "raise-after-start",
    "Exception after the start",
    "The app raises between start and body: the connection is terminated.",
    ASGI_ERRORS,
    "SHOULD",
    run_raise_after_start,
)


CASES: tuple[Case, ...] = (
    CLOSE_403,
    CLOSE_REASON,
    RETURN,
    RAISE_BEFORE,
    RAISE_AFTER_START,
)

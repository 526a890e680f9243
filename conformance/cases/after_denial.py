"""Group 4, after the denial: what ``receive()`` does (returns at once, on the client's close,
or blocks), and what ``send`` does once the client has gone (spec 2.4: ``OSError``).
"""

from __future__ import annotations

from typing import Any

from conformance.cases.case import ASGI_WWW, H1, Case
from conformance.cases.probe import (
    EVENT_WAIT,
    HANG,
    Observation,
    Probe,
    client_gone,
    crash_or,
    died,
    not_listed,
    show,
)
from conformance.client import WireConnection, WireResponse, build_handshake

__all__ = ("CASES", "GROUP", "TITLE")

GROUP = "4"
TITLE = "After the denial"


def run_receive_after(probe: Probe) -> Observation:
    target = probe.target("receive-after")
    with WireConnection(probe.server.host, probe.server.port, timeout=HANG) as connection:
        connection.send(build_handshake(probe.server.host, probe.server.port, target))
        response = connection.read(timeout=HANG, wait_close=0.3)
        if probe.not_applicable():
            return not_listed()
        # Keep the connection open a moment after the denial: does receive() return already?
        probe.wait_event("denied", timeout=HANG)
        early = probe.wait_event("receive", timeout=0.2)
    if early is not None:
        return _receive_cell(early, response, on_close=False)
    event = probe.wait_event("receive", timeout=EVENT_WAIT)
    if event is None:
        return Observation(crash_or(probe, response), None, response.status, show(response))
    return _receive_cell(event, response, on_close=True)


RECEIVE_AFTER = Case(
    "4.1",
    "receive-after",
    "receive() after a denial",
    "After the denial the app calls receive() again: does it return at once, when the "
    "client closes, or block?",
    f"{ASGI_WWW}, Disconnect - receive event",
    "INFO",
    run_receive_after,
    default="at once",
    protocols=H1,
)


def _receive_cell(event: dict[str, Any], response: WireResponse, *, on_close: bool) -> Observation:
    outcome = event.get("outcome")
    message = _short(event.get("message"))
    if outcome == "timeout":
        cell = "blocks"
    elif outcome == "raised":
        cell = f"raises {str(event.get('error', '')).split(':')[0].split('(')[0]}"
    else:
        cell = "on client close" if on_close else "at once"
        if message != "disconnect":
            cell = f"{message} {cell}"
    detail = f"receive(): {event!r}; {show(response, 200)}"
    return Observation(cell, None, response.status, detail)


def _short(message_type: object) -> str:
    return str(message_type).removeprefix("websocket.")


def run_client_gone_raw(probe: Probe) -> Observation:
    response, events = client_gone(probe, "disconnect-before")
    if probe.not_applicable():
        return not_listed()
    if response is not None:
        # The app never reached the point where the client leaves: the case did not run, and a
        # server that answered without the app (or died) does not meet it.
        return Observation(crash_or(probe, response), False, response.status, show(response))
    scope = probe.event("scope") or {}
    spec = str(scope.get("spec_version") or "2.0")
    raised = [e for e in events if e["event"] == "send-raised"]
    detail = f"spec_version {spec}; events: {[e['event'] for e in events]}; {raised!r}"
    if not any(e["event"] == "returned" for e in events):
        return Observation("crash" if died(probe) else "hang", False, None, detail)
    if not raised:
        # Before spec 2.4 a send to a gone client may be a no-op; from 2.4 it should raise.
        return Observation("no error", spec < "2.4", None, detail)
    error = str(raised[0]["error"])
    kind = "OSError" if "(OSError)" in error or error.startswith("OSError") else error.split(":")[0]
    cell = f"{kind} on {raised[0]['message'].rsplit('.', 1)[-1]}"
    if kind != "OSError" and "start-sent" in [e["event"] for e in events]:
        cell = f"start sent, {kind}"
    return Observation(cell, kind == "OSError", None, detail)


CLIENT_GONE = Case(
    "4.2",
    "client-gone",
    "Client gone before the denial",
    "The client closes before the app sends the start: the send raises OSError (spec 2.4) "
    "or is a no-op (before 2.4).",
    f"{ASGI_WWW}, Disconnected Client - send exception (spec 2.4)",
    "SHOULD",
    run_client_gone_raw,
    protocols=H1,
)


CASES: tuple[Case, ...] = (
    RECEIVE_AFTER,
    CLIENT_GONE,
)

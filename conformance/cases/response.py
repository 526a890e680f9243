"""Group 2, the denial response from raw ASGI messages.

``conformance.apps`` sends ``websocket.http.response.start`` and ``.body`` messages on purpose,
some of them invalid: byte-exact status, headers and body; headers the server adds; order and
repeated ``set-cookie``; chunked ``more_body``; a 1 MiB body; a start without body, twice, or
after the body; statuses 101, 99 and 600; CR/LF in a header value; a content-length that does
not match; whether the connection is closed or can be reused; the messages without the extension.
"""

from __future__ import annotations

from conformance import apps
from conformance.cases.case import ASGI_ERRORS, ASGI_EXT, ASGI_WWW, H1, Case
from conformance.cases.probe import (
    CLOSE_WAIT,
    HANG,
    TUNNELS,
    Observation,
    Probe,
    app_headers_intact,
    base_cell,
    crash_or,
    not_listed,
    sent_raised,
    show,
    upgrade_headers,
)
from conformance.client import WireConnection, WireResponse

__all__ = ("CASES", "GROUP", "TITLE")

GROUP = "2"
TITLE = "The denial response, raw messages"


def run_exact(probe: Probe) -> Observation:
    response = probe.handshake("response")
    if probe.not_applicable():
        return not_listed()
    cell = crash_or(probe, response)
    problems = []
    if response.status == 401:
        problems = app_headers_intact(response, apps.EXACT_HEADERS)
        if response.body != apps.JSON_BODY:
            problems.append(f"body {response.body!r}")
        cell = "401 ok" if not problems else "401 changed"
    detail = "; ".join(problems) + ("; " if problems else "") + show(response)
    return Observation(cell, cell == "401 ok", response.status, detail)


EXACT = Case(
    "2.1",
    "exact",
    "Response byte-exact",
    "start(401, headers) + body: the status, each header value (case kept) and the body "
    "arrive exactly as sent.",
    f"{ASGI_EXT}; {ASGI_WWW}, Response Start",
    "MUST",
    run_exact,
)


#: Headers a server may add to any response it frames.
FRAMING = frozenset((b"date", b"server", b"content-length"))


def run_added_headers(probe: Probe) -> Observation:
    response = probe.handshake("no-content-type")
    if probe.not_applicable():
        return not_listed()
    if response.status != 401:
        cell = crash_or(probe, response)
        return Observation(cell, False, response.status, show(response))
    added = []
    for name, value in response.headers:
        lower = name.lower()
        if lower in FRAMING or (lower == b"connection" and value.lower() == b"close"):
            continue
        label = lower.decode()
        if lower == b"connection":
            label = f"connection: {value.decode().lower()}"
        added.append(label)
    upgrade = upgrade_headers(response)
    others = [name for name in added if name not in (*upgrade, "connection: upgrade")]
    if upgrade:
        others.insert(0, "upgrade hdrs")
    cell = "none added" if not added else "+" + ", +".join(others)
    return Observation(cell, not added, response.status, f"added {added}; {show(response)}")


ADDED_HEADERS = Case(
    "2.2",
    "added-headers",
    "Headers added",
    "Which headers the server adds beyond date, server, content-length and "
    "connection: close (start with only content-length).",
    "RFC 9110 section 6.4 (content belongs to the application)",
    "SHOULD",
    run_added_headers,
)


def run_order(probe: Probe) -> Observation:
    response = probe.handshake("order")
    if probe.not_applicable():
        return not_listed()
    if response.status != 401:
        cell = crash_or(probe, response)
        return Observation(cell, False, response.status, show(response))
    problems = app_headers_intact(response, apps.ORDER_HEADERS)
    cookies = response.header("set-cookie")
    if len(cookies) < 2:
        cell = "set-cookie lost"
    elif problems:
        cell = "order changed"
    else:
        cell = "401 ok"
    return Observation(
        cell, cell == "401 ok", response.status, "; ".join(problems) or show(response)
    )


ORDER = Case(
    "2.3",
    "order",
    "Header order, repeated set-cookie",
    "Header order is kept and two set-cookie headers both arrive, in order.",
    f"{ASGI_WWW}, Response Start ('Order must be preserved'); RFC 6265 section 3",
    "MUST",
    run_order,
)


def _framing(response: WireResponse) -> str:
    if response.http_version in TUNNELS:
        return "(frames)"
    if response.chunked:
        return "(chunked)"
    if response.header("content-length"):
        return "(length)"
    return "(close)"


def _more_body(probe: Probe, behaviour: str) -> Observation:
    response = probe.handshake(behaviour)
    if probe.not_applicable():
        return not_listed()
    expected = b"part1,part2,part3"
    raised = sent_raised(probe)
    detail = "; ".join([*raised, show(response)])
    if response.status != 401:
        return Observation(crash_or(probe, response), False, response.status, detail)
    if response.body == expected:
        return Observation(f"401 ok {_framing(response)}", True, 401, detail)
    if response.body and expected.endswith(response.body):
        cell = "401 last chunk"
    elif response.body and expected.startswith(response.body):
        cell = "401 first chunk"
    else:
        cell = "401 body lost"
    if response.timed_out:
        cell += ", hang"
    return Observation(cell, False, 401, detail)


def run_more_body(probe: Probe) -> Observation:
    return _more_body(probe, "chunked")


MORE_BODY = Case(
    "2.4",
    "more-body",
    "Chunked more_body",
    "Three body messages with more_body=True, no content-length: the whole body arrives.",
    f"{ASGI_EXT} (messages match http.response.body); {ASGI_WWW}, Response Body",
    "MUST",
    run_more_body,
)


def run_more_body_await(probe: Probe) -> Observation:
    return _more_body(probe, "chunked-await")


MORE_BODY_AWAIT = Case(
    "2.5",
    "more-body-await",
    "more_body with awaits between",
    "The same with the event loop running between chunks, as a streaming app does.",
    f"{ASGI_WWW}, Response Body",
    "MUST",
    run_more_body_await,
)


def run_large(probe: Probe) -> Observation:
    response = probe.handshake("large", timeout=HANG * 2)
    if probe.not_applicable():
        return not_listed()
    if response.status != 401:
        cell = crash_or(probe, response)
        return Observation(cell, False, response.status, show(response, 300))
    intact = response.body == apps.LARGE_BODY
    cell = "401 ok" if intact else f"401 {len(response.body)} of {len(apps.LARGE_BODY)} bytes"
    return Observation(cell, intact, 401, show(response, 300))


LARGE = Case(
    "2.6",
    "large",
    "1 MiB body",
    "A 1 MiB body with its content-length arrives intact.",
    f"{ASGI_WWW}, Response Body",
    "MUST",
    run_large,
)


def run_start_only(probe: Probe) -> Observation:
    response = probe.handshake("start-only", wait_close=CLOSE_WAIT)
    if probe.not_applicable():
        return not_listed()
    cell = crash_or(probe, response)
    if response.status == 401:
        length = response.first("content-length")
        if length is not None and len(response.body) < int(length):
            cell = "401 truncated"
        elif not response.closed:
            cell = "401 open"
    return Observation(cell, None, response.status, show(response))


START_ONLY = Case(
    "2.7",
    "start-only",
    "Start without body",
    "The app sends the start and returns without any body message.",
    f"{ASGI_WWW}, Response Body (the response ends with more_body False)",
    "INFO",
    run_start_only,
    default="500",
)


def _with_raise(probe: Probe, response: WireResponse) -> Observation:
    cell = crash_or(probe, response)
    probe.settle()
    raised = sent_raised(probe)
    cell += ", send raised" if raised else ", no error"
    return Observation(cell, None, response.status, "; ".join([*raised, show(response)]))


def run_start_twice(probe: Probe) -> Observation:
    response = probe.handshake("start-twice")
    if probe.not_applicable():
        return not_listed()
    return _with_raise(probe, response)


START_TWICE = Case(
    "2.8",
    "start-twice",
    "Start twice",
    "A second websocket.http.response.start before the body.",
    ASGI_ERRORS,
    "INFO",
    run_start_twice,
    default="401, send raised",
)


def run_body_first(probe: Probe) -> Observation:
    response = probe.handshake("body-first")
    if probe.not_applicable():
        return not_listed()
    return _with_raise(probe, response)


BODY_FIRST = Case(
    "2.9",
    "body-first",
    "Body before start",
    "A websocket.http.response.body before any start.",
    ASGI_ERRORS,
    "INFO",
    run_body_first,
    default="401, send raised",
)


def _bad_status(probe: Probe, status: int) -> Observation:
    response = probe.handshake(f"status-{status}", wait_close=0.3)
    if probe.not_applicable():
        return not_listed()
    cell = crash_or(probe, response)
    if response.status == status and status != 101:
        cell = f"{status}!"
    if response.extra.startswith(b"HTTP/1.1 101") or b"\r\n\r\nHTTP/1.1 101" in response.raw:
        cell += " then 101!"
    conforms = response.status not in (status, 101) and cell not in ("crash", "hang")
    conforms = conforms and "101!" not in cell
    if cell == "no response":
        conforms = True  # refused and closed: nothing invalid reached the client
    raised = sent_raised(probe)
    return Observation(cell, conforms, response.status, "; ".join([*raised, show(response)]))


def run_status_101(probe: Probe) -> Observation:
    return _bad_status(probe, 101)


STATUS_101 = Case(
    "2.10",
    "status-101",
    "Status 101",
    "A denial with status 101 must not complete (or pretend to complete) the upgrade.",
    "RFC 6455 section 4.2.2; RFC 9110 section 15.2.2",
    "SHOULD",
    run_status_101,
)


def run_status_99(probe: Probe) -> Observation:
    return _bad_status(probe, 99)


STATUS_99 = Case(
    "2.11",
    "status-99",
    "Status 99",
    "A status outside 100..599 is refused, not written.",
    "RFC 9110 section 15 (three-digit status codes 100..599)",
    "SHOULD",
    run_status_99,
)


def run_status_600(probe: Probe) -> Observation:
    return _bad_status(probe, 600)


STATUS_600 = Case(
    "2.12",
    "status-600",
    "Status 600",
    "A status outside 100..599 is refused, not written.",
    "RFC 9110 section 15 (three-digit status codes 100..599)",
    "SHOULD",
    run_status_600,
)


def run_crlf(probe: Probe) -> Observation:
    response = probe.handshake("crlf")
    if probe.not_applicable():
        return not_listed()
    head = response.raw.split(b"\r\n\r\n")[0] + b"\r\n"
    split = bool(response.header("x-split")) or b"\r\nx-split: yes\r\n" in head
    raw_crlf = any(b"\r" in value or b"\n" in value for _, value in response.headers)
    cell = "split!" if split else "CR/LF sent!" if raw_crlf else crash_or(probe, response)
    split = split or raw_crlf
    raised = sent_raised(probe)
    conforms = not split and cell != "crash"
    return Observation(cell, conforms, response.status, "; ".join([*raised, show(response)]))


CRLF = Case(
    "2.13",
    "crlf",
    "CR/LF in a header value",
    "A header value with CR LF never splits the response on the wire.",
    "RFC 9110 section 5.5; RFC 9112 section 2.2",
    "MUST",
    run_crlf,
)


def _length(probe: Probe, behaviour: str, declared: int) -> Observation:
    response = probe.handshake(behaviour, wait_close=0.5)
    if probe.not_applicable():
        return not_listed()
    probe.settle()
    raised = sent_raised(probe)
    detail = "; ".join([*raised, show(response)])
    if response.status != 401:
        cell = crash_or(probe, response)
        return Observation(cell, cell not in ("crash", "hang"), response.status, detail)
    sent = len(response.body) + len(response.extra)
    cell = f"CL {declared}: {sent} sent"
    if not response.closed:
        cell += ", open"
    # Conforming: the server refused (raised to the app), and wrote no more than it declared.
    conforms = bool(raised) and sent <= declared
    return Observation(cell, conforms, 401, detail)


def run_length_long(probe: Probe) -> Observation:
    return _length(probe, "length-long", 20)


LENGTH_LONG = Case(
    "2.14",
    "length-long",
    "Content-Length above the body",
    "content-length 20 with a 14-byte body: the server refuses rather than writing a "
    "message that does not match its length.",
    "RFC 9110 section 8.6; RFC 9112 section 6.3",
    "SHOULD",
    run_length_long,
)


def run_length_short(probe: Probe) -> Observation:
    return _length(probe, "length-short", 5)


LENGTH_SHORT = Case(
    "2.15",
    "length-short",
    "Content-Length below the body",
    "content-length 5 with a 14-byte body: the extra bytes must not reach the connection.",
    "RFC 9110 section 8.6; RFC 9112 section 6.3",
    "SHOULD",
    run_length_short,
)


def run_closes(probe: Probe) -> Observation:
    response = probe.handshake("response", wait_close=CLOSE_WAIT)
    if probe.not_applicable():
        return not_listed()
    if response.status is None:
        cell = crash_or(probe, response)
        return Observation(cell, False, None, show(response))
    cell = "closed" if response.closed else "kept open"
    return Observation(cell, response.closed, response.status, show(response))


CLOSES = Case(
    "2.16",
    "closes",
    "Connection closed after the denial",
    "After the final body the server closes the connection (or ends the HTTP/2 stream).",
    f"{ASGI_EXT} ('send a HTTP response and then close the connection')",
    "SHOULD",
    run_closes,
)


def run_reuse(probe: Probe) -> Observation:
    connection = WireConnection(probe.server.host, probe.server.port, timeout=HANG)
    with connection:
        first = connection.handshake(probe.target("response"), timeout=HANG, wait_close=0.5)
        if probe.not_applicable():
            return not_listed()
        if first.status is None:
            return Observation(crash_or(probe, first), None, None, show(first))
        if first.closed:
            return Observation("closed", None, first.status, show(first))
        second = connection.handshake(probe.target("response"), timeout=HANG)
    cell = f"2nd: {base_cell(second)}"
    return Observation(cell, None, second.status, f"first {show(first)}; second {show(second)}")


REUSE = Case(
    "2.17",
    "reuse",
    "Connection reuse",
    "A second handshake on the connection after a denial, where it stays open.",
    "RFC 9112 section 9.3 (persistence)",
    "INFO",
    run_reuse,
    default="closed",
    protocols=H1,
)


def run_unadvertised(probe: Probe) -> Observation:
    response = probe.handshake("unadvertised")
    listed = probe.extension_listed()
    cell = crash_or(probe, response)
    detail = f"extension listed: {listed}; {show(response)}"
    return Observation(cell, None, response.status, detail)


UNADVERTISED = Case(
    "2.18",
    "unadvertised",
    "Response messages without the extension",
    "start + body sent whatever the scope lists: what a server without the extension does.",
    ASGI_ERRORS,
    "INFO",
    run_unadvertised,
    default="401",
)


CASES: tuple[Case, ...] = (
    EXACT,
    ADDED_HEADERS,
    ORDER,
    MORE_BODY,
    MORE_BODY_AWAIT,
    LARGE,
    START_ONLY,
    START_TWICE,
    BODY_FIRST,
    STATUS_101,
    STATUS_99,
    STATUS_600,
    CRLF,
    LENGTH_LONG,
    LENGTH_SHORT,
    CLOSES,
    REUSE,
    UNADVERTISED,
)

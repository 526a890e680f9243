"""The case catalogue: what each case sends, what a conforming server answers, and the check.

Theory of operation
-------------------
A `Case` has an id grouped by topic (``2.3``), a slug for test ids, a description, the text it
rests on (``reference``), a level (MUST / SHOULD / INFO) and a ``run`` function. ``run`` gets a
`Probe` bound to one running server; it makes the handshake(s), reads what the app recorded
(`conformance.apps` writes events), and returns an `Observation`:

- ``cell``: a short, deterministic reading for the matrix (``401 ok``, ``403 fallback``,
  ``500``, ``hang``, ``101!``, ``crash``); never a timing, so that expectations can pin it;
- ``conforms``: whether the requirement of a MUST/SHOULD case is met (None for INFO cases and
  where the case does not apply, ``n/a``);
- ``status`` and ``detail``: the HTTP status received and a human account with the raw bytes.

Whether an observation is *expected* is decided elsewhere (`conformance.expectations`): by
default a MUST/SHOULD case is expected to conform and an INFO case to show its ``default`` cell;
``conformance/expectations.toml`` records each variant's known deviations.

Groups: 1 the scope; 2 the denial response from raw ASGI messages; 3 close, return and errors
before accept; 4 after the denial; 5 the helper contract through asgi_ws_deny's public API;
6 what real clients (websockets, wsproto) read of a denial; 7 the helper contract through each
framework's example app (``examples/frameworks/``).

A case runs against ``conformance.apps:app`` unless it names another application (``app``, with
the distributions it ``requires`` and the event ``loops`` it runs on): the group 7 cases run
the framework example apps unchanged, each on a server of its own (`conformance.runner`).
Where a case does not apply (another protocol, another event loop, a framework that is not
installed) it is ``n/a`` without a server being asked (`not_applicable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from asgi_ws_deny import EXTENSION
from conformance import apps
from conformance.client import (
    CLOSE,
    TEXT,
    WireConnection,
    WireResponse,
    build_handshake,
    close_frame,
    h2_ws_handshake,
    ws_frames,
    ws_handshake,
)

if TYPE_CHECKING:
    from conformance.servers import RunningServer, Variant

__all__ = (
    "CASES",
    "CLOSE_WAIT",
    "FRAMEWORK_APPS",
    "HANG",
    "Case",
    "Level",
    "Observation",
    "Opened",
    "Probe",
    "case_by_id",
    "not_applicable",
)

Level = Literal["MUST", "SHOULD", "INFO"]

#: How long a client waits for a response before calling it a hang.
HANG = 2.0
#: How long a client waits, after a complete response, for the server to close the connection.
CLOSE_WAIT = 0.5
#: How long the checks wait for an event the app records.
EVENT_WAIT = apps.APP_WAIT + 1.0

ASGI_EXT = "asgiref docs/extensions.rst, WebSocket Denial Response"
ASGI_WWW = "ASGI HTTP & WebSocket spec (asgiref specs/www.rst)"
ASGI_ERRORS = "ASGI spec (asgiref specs/asgi.rst), Error Handling"


@dataclass(frozen=True)
class Observation:
    """What one case saw on one server."""

    cell: str
    conforms: bool | None = None
    status: int | None = None
    detail: str = ""


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
    protocols: frozenset[str] = frozenset({"http/1.1", "h2"})
    #: Group 5 cases exercise asgi_ws_deny itself (``-m contract`` selects them).
    contract: bool = False
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


@dataclass(frozen=True)
class Opened:
    """An accepted handshake as the client saw it: the response and the server's frames."""

    response: WireResponse
    frames: list[tuple[int, bytes]]

    @property
    def accepted(self) -> bool:
        """A 101 (HTTP/1.1), or a 2xx that opens the tunnel (HTTP/2, RFC 8441 section 5)."""
        status = self.response.status
        if self.response.http_version == b"HTTP/2":
            return status is not None and 200 <= status < 300
        return status == 101

    @property
    def texts(self) -> list[bytes]:
        """The payloads of the text frames, in order."""
        return [payload for opcode, payload in self.frames if opcode == TEXT]

    @property
    def close(self) -> tuple[int | None, bytes] | None:
        """The server's close frame as (code, reason), code None when it has no payload."""
        for opcode, payload in self.frames:
            if opcode == CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                return code, payload[2:]
        return None


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


# --- The probe: one case's access to the server -------------------------------------------


@dataclass
class Probe:
    """One case's handle on a running server: handshakes, the app's events, the log."""

    server: RunningServer
    events_path: Path
    log_mark: int = 0
    tokens: list[str] = field(default_factory=list)
    #: Asks whether the variant lists the extension (`ServerHandle.extension_listed`): the
    #: framework apps record no events, so their cases learn it from the conformance app.
    listed_lookup: Callable[[], bool | None] | None = None

    @property
    def variant(self) -> Variant:
        return self.server.variant

    @property
    def h2(self) -> bool:
        return self.variant.protocol == "h2"

    def target(self, behaviour: str) -> str:
        """A fresh request target for ``behaviour``, with a token the app's events carry."""
        token = uuid.uuid4().hex[:12]
        self.tokens.append(token)
        return f"/{behaviour}?t={token}"

    @property
    def token(self) -> str:
        return self.tokens[-1]

    def handshake(
        self,
        behaviour: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        wait_close: float = 0.0,
        timeout: float = HANG,
    ) -> WireResponse:
        """A WebSocket handshake on ``/behaviour`` over the variant's protocol."""
        target = self.target(behaviour)
        return self.request(target, headers=headers, wait_close=wait_close, timeout=timeout)

    def request(
        self,
        target: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        wait_close: float = 0.0,
        timeout: float = HANG,
    ) -> WireResponse:
        """A WebSocket handshake on ``target`` as it is (no token), over the variant's protocol."""
        client = h2_ws_handshake if self.h2 else ws_handshake
        return client(
            self.server.host,
            self.server.port,
            target,
            headers,
            timeout=timeout,
            wait_close=wait_close,
        )

    def open(self, target: str, *, headers: Sequence[tuple[str, str]] = ()) -> Opened:
        """A handshake the server may accept: the response, then the frames up to the server's
        close frame, which the client answers (HTTP/1.1; over HTTP/2 the stream's end). After
        a first frame, ``CLOSE_WAIT`` of silence ends the wait for the close."""
        if self.h2:
            response = h2_ws_handshake(
                self.server.host,
                self.server.port,
                target,
                headers,
                timeout=HANG,
                wait_close=CLOSE_WAIT,
            )
            tunnel = response.status is not None and 200 <= response.status < 300
            return Opened(response, ws_frames(response.body) if tunnel else [])
        try:
            connection = WireConnection(self.server.host, self.server.port, timeout=HANG)
        except OSError as exc:
            return Opened(WireResponse(closed=True, error=f"connect: {exc}"), [])
        with connection:
            response = connection.handshake(target, headers, timeout=HANG)
            frames = []
            if response.status == 101:
                frames = connection.read_frames(timeout=HANG, idle=CLOSE_WAIT)
            opened = Opened(response, frames)
            if opened.close is not None:
                # Answer the close as a client does (RFC 6455 section 5.5.1), echoing its code.
                connection.send(close_frame(opened.close[0] or 1000))
        return opened

    def extension_listed_on_server(self) -> bool | None:
        """Whether the variant lists the extension, for cases whose app records no scope."""
        return None if self.listed_lookup is None else self.listed_lookup()

    def events(self, token: str | None = None) -> list[dict[str, Any]]:
        """The events the app recorded for ``token`` (default: the latest handshake)."""
        token = token or self.token
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("token") == token:
                    found.append(event)
        return found

    def wait_event(
        self, name: str, *, timeout: float = EVENT_WAIT, token: str | None = None
    ) -> dict[str, Any] | None:
        """The first event ``name`` of the handshake, waiting up to ``timeout`` for it."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(token)
            for event in events:
                if event["event"] == name:
                    return event
            if any(event["event"] == "returned" for event in events):
                return None  # the app has finished: nothing more will be recorded
            if time.monotonic() > deadline or not self.server.alive():
                return None
            time.sleep(0.01)

    def event(self, name: str, token: str | None = None) -> dict[str, Any] | None:
        """The first event ``name`` already recorded, without waiting."""
        return next((e for e in self.events(token) if e["event"] == name), None)

    def not_applicable(self) -> bool:
        """Whether the app skipped the behaviour because the extension is not listed."""
        return self.event("not-applicable") is not None

    def extension_listed(self) -> bool | None:
        scope = self.event("scope")
        if scope is None:
            return None
        return EXTENSION in (scope.get("extensions") or [])

    def settle(self, *, events: bool = True) -> None:
        """Wait for the app to return (``events``: when it records them), then until the
        server log stops growing (bounded)."""
        if events:
            self.wait_event("returned", timeout=1.0)
        deadline = time.monotonic() + 0.3
        size = self.server.log_mark()
        while time.monotonic() < deadline:
            time.sleep(0.03)
            now = self.server.log_mark()
            if now == size:
                return
            size = now

    def log(self) -> str:
        """The server's output since this case began."""
        return self.server.log(self.log_mark)

    def go(self) -> None:
        """Tell a waiting app that the client has gone (see ``apps._wait_for_go``)."""
        Path(f"{self.events_path}.{self.token}.go").touch()


# --- Reading responses ----------------------------------------------------------------------


def base_cell(response: WireResponse) -> str:
    """The short reading of a response: its status, or how it failed to come."""
    if response.status is None:
        if response.error and response.error.startswith("connect"):
            return "refused"
        if response.timed_out:
            return "hang"
        if response.reset:
            return "reset"
        return "no response"
    if response.status == 101:
        return "101!"
    return str(response.status)


def show(response: WireResponse, limit: int = 600) -> str:
    """The bytes received, for a detail line (HTTP/2: status, headers, body)."""
    if response.http_version == b"HTTP/2":
        text = f"h2 :status {response.status} headers {response.headers!r} body {response.body!r}"
    else:
        text = repr(response.raw)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(response.raw)} bytes)"
    how = response.summary()
    extra = f" extra={response.extra[:120]!r}" if response.extra else ""
    return f"{how}: {text}{extra}"


UPGRADE_HEADERS = (b"upgrade", b"sec-websocket-accept")


def upgrade_headers(response: WireResponse) -> list[str]:
    """Headers of an accepted upgrade that a denial must not carry."""
    found = [name.decode() for name in UPGRADE_HEADERS if response.header(name)]
    if any(b"upgrade" in value.lower() for value in response.header("connection")):
        found.insert(0, "connection: upgrade")
    return found


def app_headers_intact(response: WireResponse, sent: list[tuple[bytes, bytes]]) -> list[str]:
    """Problems with the app's headers as received: missing, changed, reordered."""
    problems = []
    received = [(k.lower(), v) for k, v in response.headers]
    names = {name for name, _ in sent}
    relevant = [(k, v) for k, v in received if k in names]
    for name, value in sent:
        if (name, value) not in received:
            got = [v for k, v in received if k == name]
            problems.append(f"{name.decode()}: sent {value!r}, got {got!r}")
    if not problems and relevant != sent:
        problems.append(f"order or count changed: sent {sent!r}, got {relevant!r}")
    return problems


def crash_or(probe: Probe, response: WireResponse) -> str:
    """``crash`` if the server died answering, else the base cell."""
    if response.status is None:
        # A connection that ends without a response may be a dying server: give it a moment.
        # A timeout is a hang of a living server unless it is already gone.
        dead = not probe.server.alive() if response.timed_out else _died(probe)
        if dead:
            return "crash"
    return base_cell(response)


def _died(probe: Probe, within: float = 0.5) -> bool:
    deadline = time.monotonic() + within
    while probe.server.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _sent_raised(probe: Probe) -> list[str]:
    return [f"{e['message']}: {e['error']}" for e in probe.events() if e["event"] == "send-raised"]


def _na() -> Observation:
    return Observation("n/a", None, detail="the server does not list the extension")


# --- Group 1: the scope ---------------------------------------------------------------------


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


# --- Group 2: the denial response, raw messages ----------------------------------------------


def run_exact(probe: Probe) -> Observation:
    response = probe.handshake("response")
    if probe.not_applicable():
        return _na()
    cell = crash_or(probe, response)
    problems = []
    if response.status == 401:
        problems = app_headers_intact(response, apps.EXACT_HEADERS)
        if response.body != apps.JSON_BODY:
            problems.append(f"body {response.body!r}")
        cell = "401 ok" if not problems else "401 changed"
    detail = "; ".join(problems) + ("; " if problems else "") + show(response)
    return Observation(cell, cell == "401 ok", response.status, detail)


#: Headers a server may add to any response it frames.
FRAMING = frozenset((b"date", b"server", b"content-length"))


def run_added_headers(probe: Probe) -> Observation:
    response = probe.handshake("no-content-type")
    if probe.not_applicable():
        return _na()
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


def run_order(probe: Probe) -> Observation:
    response = probe.handshake("order")
    if probe.not_applicable():
        return _na()
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


def _framing(response: WireResponse) -> str:
    if response.http_version == b"HTTP/2":
        return "(frames)"
    if response.chunked:
        return "(chunked)"
    if response.header("content-length"):
        return "(length)"
    return "(close)"


def _more_body(probe: Probe, behaviour: str) -> Observation:
    response = probe.handshake(behaviour)
    if probe.not_applicable():
        return _na()
    expected = b"part1,part2,part3"
    raised = _sent_raised(probe)
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


def run_more_body_await(probe: Probe) -> Observation:
    return _more_body(probe, "chunked-await")


def run_large(probe: Probe) -> Observation:
    response = probe.handshake("large", timeout=HANG * 2)
    if probe.not_applicable():
        return _na()
    if response.status != 401:
        cell = crash_or(probe, response)
        return Observation(cell, False, response.status, show(response, 300))
    intact = response.body == apps.LARGE_BODY
    cell = "401 ok" if intact else f"401 {len(response.body)} of {len(apps.LARGE_BODY)} bytes"
    return Observation(cell, intact, 401, show(response, 300))


def run_start_only(probe: Probe) -> Observation:
    response = probe.handshake("start-only", wait_close=CLOSE_WAIT)
    if probe.not_applicable():
        return _na()
    cell = crash_or(probe, response)
    if response.status == 401:
        length = response.first("content-length")
        if length is not None and len(response.body) < int(length):
            cell = "401 truncated"
        elif not response.closed:
            cell = "401 open"
    return Observation(cell, None, response.status, show(response))


def _with_raise(probe: Probe, response: WireResponse) -> Observation:
    cell = crash_or(probe, response)
    probe.settle()
    raised = _sent_raised(probe)
    cell += ", send raised" if raised else ", no error"
    return Observation(cell, None, response.status, "; ".join([*raised, show(response)]))


def run_start_twice(probe: Probe) -> Observation:
    response = probe.handshake("start-twice")
    if probe.not_applicable():
        return _na()
    return _with_raise(probe, response)


def run_body_first(probe: Probe) -> Observation:
    response = probe.handshake("body-first")
    if probe.not_applicable():
        return _na()
    return _with_raise(probe, response)


def _bad_status(probe: Probe, status: int) -> Observation:
    response = probe.handshake(f"status-{status}", wait_close=0.3)
    if probe.not_applicable():
        return _na()
    cell = crash_or(probe, response)
    if response.status == status and status != 101:
        cell = f"{status}!"
    if response.extra.startswith(b"HTTP/1.1 101") or b"\r\n\r\nHTTP/1.1 101" in response.raw:
        cell += " then 101!"
    conforms = response.status not in (status, 101) and cell not in ("crash", "hang")
    conforms = conforms and "101!" not in cell
    if cell == "no response":
        conforms = True  # refused and closed: nothing invalid reached the client
    raised = _sent_raised(probe)
    return Observation(cell, conforms, response.status, "; ".join([*raised, show(response)]))


def run_status_101(probe: Probe) -> Observation:
    return _bad_status(probe, 101)


def run_status_99(probe: Probe) -> Observation:
    return _bad_status(probe, 99)


def run_status_600(probe: Probe) -> Observation:
    return _bad_status(probe, 600)


def run_crlf(probe: Probe) -> Observation:
    response = probe.handshake("crlf")
    if probe.not_applicable():
        return _na()
    head = response.raw.split(b"\r\n\r\n")[0] + b"\r\n"
    split = bool(response.header("x-split")) or b"\r\nx-split: yes\r\n" in head
    raw_crlf = any(b"\r" in value or b"\n" in value for _, value in response.headers)
    cell = "split!" if split else "CR/LF sent!" if raw_crlf else crash_or(probe, response)
    split = split or raw_crlf
    raised = _sent_raised(probe)
    conforms = not split and cell != "crash"
    return Observation(cell, conforms, response.status, "; ".join([*raised, show(response)]))


def _length(probe: Probe, behaviour: str, declared: int) -> Observation:
    response = probe.handshake(behaviour, wait_close=0.5)
    if probe.not_applicable():
        return _na()
    probe.settle()
    raised = _sent_raised(probe)
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


def run_length_short(probe: Probe) -> Observation:
    return _length(probe, "length-short", 5)


def run_closes(probe: Probe) -> Observation:
    response = probe.handshake("response", wait_close=CLOSE_WAIT)
    if probe.not_applicable():
        return _na()
    if response.status is None:
        cell = crash_or(probe, response)
        return Observation(cell, False, None, show(response))
    cell = "closed" if response.closed else "kept open"
    return Observation(cell, response.closed, response.status, show(response))


def run_reuse(probe: Probe) -> Observation:
    connection = WireConnection(probe.server.host, probe.server.port, timeout=HANG)
    with connection:
        first = connection.handshake(probe.target("response"), timeout=HANG, wait_close=0.5)
        if probe.not_applicable():
            return _na()
        if first.status is None:
            return Observation(crash_or(probe, first), None, None, show(first))
        if first.closed:
            return Observation("closed", None, first.status, show(first))
        second = connection.handshake(probe.target("response"), timeout=HANG)
    cell = f"2nd: {base_cell(second)}"
    return Observation(cell, None, second.status, f"first {show(first)}; second {show(second)}")


def run_unadvertised(probe: Probe) -> Observation:
    response = probe.handshake("unadvertised")
    listed = probe.extension_listed()
    cell = crash_or(probe, response)
    detail = f"extension listed: {listed}; {show(response)}"
    return Observation(cell, None, response.status, detail)


# --- Group 3: close, return and errors before accept ----------------------------------------


def run_close_403(probe: Probe) -> Observation:
    response = probe.handshake("close")
    cell = crash_or(probe, response)
    return Observation(cell, response.status == 403, response.status, show(response))


def run_close_reason(probe: Probe) -> Observation:
    response = probe.handshake("close-reason")
    cell = crash_or(probe, response)
    if b"conformance-reason" in response.raw or b"4001" in response.raw:
        cell += ", reason sent"
    elif response.status is not None:
        cell += ", no reason"
    return Observation(cell, None, response.status, show(response))


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


def run_raise_before(probe: Probe) -> Observation:
    return _terminated(probe, "raise-before")


def run_raise_after_start(probe: Probe) -> Observation:
    response = probe.handshake("raise-after-start", wait_close=0.5)
    if probe.not_applicable():
        return _na()
    cell = crash_or(probe, response)
    if response.status == 401:
        length = response.first("content-length")
        if length is not None and len(response.body) < int(length):
            cell = "401 truncated"
    if response.status is not None and not response.closed:
        cell += " open"
    conforms = response.closed and response.status != 101 and cell != "crash"
    return Observation(cell, conforms, response.status, show(response))


# --- Group 4: after the denial --------------------------------------------------------------


def run_receive_after(probe: Probe) -> Observation:
    target = probe.target("receive-after")
    with WireConnection(probe.server.host, probe.server.port, timeout=HANG) as connection:
        connection.send(build_handshake(probe.server.host, probe.server.port, target))
        response = connection.read(timeout=HANG, wait_close=0.3)
        if probe.not_applicable():
            return _na()
        # Keep the connection open a moment after the denial: does receive() return already?
        probe.wait_event("denied", timeout=HANG)
        early = probe.wait_event("receive", timeout=0.2)
    if early is not None:
        return _receive_cell(early, response, on_close=False)
    event = probe.wait_event("receive", timeout=EVENT_WAIT)
    if event is None:
        return Observation(crash_or(probe, response), None, response.status, show(response))
    return _receive_cell(event, response, on_close=True)


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


def _client_gone(probe: Probe, behaviour: str) -> tuple[WireResponse | None, list[dict[str, Any]]]:
    """Send a handshake, wait until the app is waiting, leave, then let the app go on."""
    target = probe.target(behaviour)
    if probe.h2:
        return None, []
    with WireConnection(probe.server.host, probe.server.port, timeout=HANG) as connection:
        connection.send(build_handshake(probe.server.host, probe.server.port, target))
        waiting = probe.wait_event("waiting", timeout=HANG)
        if waiting is None:
            response = connection.read(timeout=0.2)
            return response, probe.events()
    probe.go()
    probe.wait_event("returned", timeout=EVENT_WAIT)
    return None, probe.events()


def run_client_gone_raw(probe: Probe) -> Observation:
    response, events = _client_gone(probe, "disconnect-before")
    if probe.not_applicable():
        return _na()
    if response is not None:
        # The app never reached the point where the client leaves: the case did not run, and a
        # server that answered without the app (or died) does not meet it.
        return Observation(crash_or(probe, response), False, response.status, show(response))
    scope = probe.event("scope") or {}
    spec = str(scope.get("spec_version") or "2.0")
    raised = [e for e in events if e["event"] == "send-raised"]
    detail = f"spec_version {spec}; events: {[e['event'] for e in events]}; {raised!r}"
    if not any(e["event"] == "returned" for e in events):
        return Observation("crash" if _died(probe) else "hang", False, None, detail)
    if not raised:
        # Before spec 2.4 a send to a gone client may be a no-op; from 2.4 it should raise.
        return Observation("no error", spec < "2.4", None, detail)
    error = str(raised[0]["error"])
    kind = "OSError" if "(OSError)" in error or error.startswith("OSError") else error.split(":")[0]
    cell = f"{kind} on {raised[0]['message'].rsplit('.', 1)[-1]}"
    if kind != "OSError" and "start-sent" in [e["event"] for e in events]:
        cell = f"start sent, {kind}"
    return Observation(cell, kind == "OSError", None, detail)


# --- Group 5: the helper contract -----------------------------------------------------------


def _traceback(probe: Probe) -> bool:
    return "Traceback (most recent call last)" in probe.log()


def _contract(
    probe: Probe,
    behaviour: str,
    *,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    listed_outcome: str = "response",
    traceback_ok: bool = False,
) -> Observation:
    """The promise: the response where the extension is listed, else 403; closed; no 101."""
    response = probe.handshake(behaviour, wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    if cell == "crash":
        return Observation(cell, False, None, f"{show(response)}; log: {probe.log()[-800:]}")
    probe.settle()
    listed = probe.extension_listed()
    outcome = probe.event("outcome") or {}
    problems: list[str] = []
    if listed:
        want = status
        if response.status == status:
            problems += app_headers_intact(response, headers)
            if response.body != body:
                problems.append(f"body {response.body!r}")
        label = "ok"
    else:
        want = 403
        label = "fallback"
    if outcome.get("outcome") not in (listed_outcome if listed else "close", "returned"):
        problems.append(f"deny() returned {outcome!r}")
    extras = []
    if response.status == want and not problems:
        cell = f"{want} {label}"
    elif response.status == want:
        cell = f"{want} changed"
    bad_upgrade = upgrade_headers(response)
    if bad_upgrade:
        extras.append("+upgrade")
        problems.append(f"upgrade headers on a denial: {bad_upgrade}")
    if response.status is not None and not response.closed:
        extras.append("open")
        problems.append("the connection stayed open after the denial")
    if outcome.get("outcome") == "no guard":
        return Observation("no guard", False, response.status, "asgi_ws_deny.guard not importable")
    if probe.event("app-called") is not None and behaviour in GUARD_APP_NOT_CALLED:
        extras.append("app called")
        problems.append("the check refused, yet the application was called")
    if not traceback_ok and _traceback(probe):
        extras.append("traceback")
        problems.append("a traceback in the server log")
    if extras:
        cell += ", " + ", ".join(extras)
    conforms = cell in (f"{want} ok", f"{want} fallback")
    detail = "; ".join([*problems, f"listed={listed}", show(response)])
    return Observation(cell, conforms, response.status, detail)


CONTRACT_WIRE = [(name.encode(), value.encode()) for name, value in apps.CONTRACT_HEADERS]


def run_api_deny(probe: Probe) -> Observation:
    headers = [*CONTRACT_WIRE, (b"content-length", b"14")]
    return _contract(probe, "api-deny", status=401, headers=headers, body=apps.JSON_BODY)


def run_api_deny_single(probe: Probe) -> Observation:
    headers = [(b"www-authenticate", b"Bearer"), (b"content-length", b"14")]
    return _contract(probe, "api-deny-single", status=401, headers=headers, body=apps.JSON_BODY)


def run_api_deny_default(probe: Probe) -> Observation:
    return _contract(
        probe, "api-deny-default", status=403, headers=[(b"content-length", b"0")], body=b""
    )


def run_api_denial_app(probe: Probe) -> Observation:
    body = b'{"error":"slow down"}'
    headers = [
        (b"retry-after", b"7"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return _contract(probe, "api-denial-app", status=429, headers=headers, body=body)


def run_api_denial_text(probe: Probe) -> Observation:
    body = b"forbidden here"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    return _contract(probe, "api-denial-text", status=403, headers=headers, body=body)


def run_api_fallback_raise(probe: Probe) -> Observation:
    response = probe.handshake("api-fallback-raise", wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    probe.settle()
    outcome = (probe.event("outcome") or {}).get("outcome")
    listed = probe.extension_listed()
    detail = f"listed={listed}; outcome={outcome!r}; {show(response)}"
    if listed:
        conforms = outcome == "response" and response.status == 401
        cell = "401 ok" if conforms else f"{cell}, outcome {outcome}"
    else:
        sent = (probe.event("outcome") or {}).get("sent")
        conforms = outcome == "raised" and sent == 0
        cell = "raised ok" if conforms else f"{cell}, outcome {outcome}"
    return Observation(cell, conforms, response.status, detail)


def run_api_invalid_101(probe: Probe) -> Observation:
    response = probe.handshake("api-invalid-101", wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    probe.settle()
    refused = probe.event("outcome") or {}
    detail = f"first deny(101): {refused!r}; {show(response)}"
    conforms = (
        refused.get("outcome") == "refused"
        and refused.get("sent") == 0
        and response.status == 403
        and b"101" not in response.raw.split(b"\r\n", 1)[0]
    )
    cell = "refused, 403" if conforms else f"{cell}, {refused.get('outcome')}"
    return Observation(cell, conforms, response.status, detail)


def run_api_client_gone(probe: Probe) -> Observation:
    response, events = _client_gone(probe, "api-disconnected")
    if response is not None:
        return Observation(crash_or(probe, response), False, response.status, show(response))
    if probe.h2:
        return Observation("n/a", None, detail="HTTP/1.1 only")
    probe.settle()
    outcome = next((e for e in events if e["event"] == "outcome"), None)
    detail = f"events: {[e['event'] for e in events]}; outcome {outcome!r}"
    if outcome is None:
        cell = "crash" if _died(probe) else "no outcome"
        return Observation(cell, False, None, f"{detail}; log: {probe.log()[-800:]}")
    value = outcome.get("outcome")
    if value == "disconnected":
        cell = "disconnected"
    elif value in ("response", "close"):
        cell = "dropped silently"
    else:
        cell = f"raised {str(outcome.get('error', '')).split(':')[0]}"
    traceback = _traceback(probe)
    if traceback:
        cell += ", traceback"
    conforms = value in ("disconnected", "response", "close") and not traceback
    return Observation(cell, conforms, None, detail)


def run_api_quiet_log(probe: Probe) -> Observation:
    response = probe.handshake("api-deny-single", wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    if cell == "crash":
        return Observation(cell, False, None, show(response))
    probe.settle()
    lines = [
        line
        for line in probe.log().splitlines()
        if "ERROR" in line or "Traceback" in line or "Exception" in line
    ]
    return Observation(
        "clean" if not lines else "error logged",
        not lines,
        response.status,
        "; ".join(lines[:5]) or "no error lines",
    )


GUARD_APP_NOT_CALLED = frozenset(
    {"api-guard-check", "api-guard-check-error", "api-guard-browser-check"}
)


def run_guard_check(probe: Probe) -> Observation:
    headers = [(b"www-authenticate", b"Bearer"), (b"content-length", b"14")]
    return _contract(probe, "api-guard-check", status=401, headers=headers, body=apps.JSON_BODY)


def run_guard_denied(probe: Probe) -> Observation:
    body = b"no such room"
    headers = [(b"x-conformance", b"guard"), (b"content-length", str(len(body)).encode())]
    return _contract(probe, "api-guard-denied", status=404, headers=headers, body=body)


def run_guard_no_handshake(probe: Probe) -> Observation:
    headers = [(b"content-length", b"0")]
    return _contract(probe, "api-guard-no-handshake", status=403, headers=headers, body=b"")


def run_guard_check_error(probe: Probe) -> Observation:
    # The guard logs the check's exception (with its traceback) on purpose: allowed here.
    headers = [(b"content-length", b"0")]
    return _contract(
        probe,
        "api-guard-check-error",
        status=500,
        headers=headers,
        body=b"",
        traceback_ok=True,
    )


# Browser-visible denials: WebSocketGuard(..., browser_policy="origin"). With an Origin header
# a denial before accept is an accept followed at once by a close (4000 + status, a reason);
# without one it is the HTTP denial.

#: The header every browser sends; only its presence matters to the policy.
ORIGIN = ("Origin", "http://127.0.0.1")
#: The subprotocols offered in 5.16, in the client's order of preference.
SUBPROTOCOLS = ("conformance.v1", "conformance.v2")


def _close_reading(probe: Probe, opened: Opened, code: int, reason: bytes) -> tuple[str, bool]:
    """``close 4401 ok`` for an accept then a close with ``code`` and ``reason``, else what came."""
    if not opened.accepted:
        return crash_or(probe, opened.response), False
    close = opened.close
    if close is None:
        return "accepted, no close", False
    got_code, got_reason = close
    if got_code != code:
        return f"close {got_code}", False
    if got_reason == reason:
        return f"close {code} ok", True
    if not got_reason:
        return f"close {code}, no reason", False
    return f"close {code}, reason changed", False


def _opened_detail(opened: Opened) -> str:
    return f"close frame {opened.close!r}; frames {opened.frames[:4]!r}; {show(opened.response)}"


def _browser_visible(
    probe: Probe, behaviour: str, code: int, reason: bytes, *, subprotocols: bool = False
) -> Observation:
    headers = [ORIGIN]
    if subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(SUBPROTOCOLS)))
    opened = probe.open(probe.target(behaviour), headers=headers)
    cell, conforms = _close_reading(probe, opened, code, reason)
    if cell == "crash":
        return Observation(
            cell, False, None, f"{_opened_detail(opened)}; log: {probe.log()[-800:]}"
        )
    probe.settle()
    outcome = probe.event("outcome") or {}
    if outcome.get("outcome") == "no guard":
        return Observation("no guard", False, None, "asgi_ws_deny.guard not importable")
    problems: list[str] = []
    extras = []
    if subprotocols and opened.accepted:
        named = opened.response.header("sec-websocket-protocol")
        if named != [SUBPROTOCOLS[0].encode()]:
            extras.append("no subprotocol" if not named else "subprotocol changed")
            problems.append(f"the accept names {named!r}, the client offered {SUBPROTOCOLS!r}")
    if probe.event("app-called") is not None and behaviour in GUARD_APP_NOT_CALLED:
        extras.append("app called")
        problems.append("the check refused, yet the application was called")
    if _traceback(probe):
        extras.append("traceback")
        problems.append("a traceback in the server log")
    if extras:
        cell += ", " + ", ".join(extras)
    detail = "; ".join([*problems, _opened_detail(opened)])
    return Observation(cell, conforms and not extras, opened.response.status, detail)


def run_guard_browser_check(probe: Probe) -> Observation:
    return _browser_visible(probe, "api-guard-browser-check", 4401, b"Unauthorized")


def run_guard_browser_denied(probe: Probe) -> Observation:
    reason = apps.BROWSER_REASON.encode()
    return _browser_visible(probe, "api-guard-browser-denied", 4404, reason)


def run_guard_browser_subprotocol(probe: Probe) -> Observation:
    return _browser_visible(
        probe, "api-guard-browser-check", 4401, b"Unauthorized", subprotocols=True
    )


def run_guard_browser_no_origin(probe: Probe) -> Observation:
    headers = [(b"www-authenticate", b"Bearer"), (b"content-length", b"14")]
    return _contract(
        probe, "api-guard-browser-check", status=401, headers=headers, body=apps.JSON_BODY
    )


# --- Group 6: real clients ------------------------------------------------------------------


def run_websockets_client(probe: Probe) -> Observation:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    target = probe.target("api-deny-single")
    uri = f"ws://{probe.server.host}:{probe.server.port}{target}"

    async def attempt() -> Observation:
        try:
            async with connect(uri, open_timeout=HANG, close_timeout=0.5):
                return Observation("opened!", False, 101, "the client opened the connection")
        except InvalidStatus as exc:
            got = exc.response
            body = bytes(got.body or b"")
            listed = probe.extension_listed()
            want, want_body = (401, apps.JSON_BODY) if listed else (403, b"")
            ok = got.status_code == want and body == want_body
            cell = f"{got.status_code} {'body ok' if ok and body else 'ok' if ok else 'body?'}"
            detail = f"InvalidStatus: {got.status_code} {got.reason_phrase!r} body={body!r}"
            return Observation(cell, ok, got.status_code, detail)
        except TimeoutError as exc:
            return Observation("timeout", False, None, repr(exc))
        except Exception as exc:
            return Observation(type(exc).__name__, False, None, f"{type(exc).__name__}: {exc}")

    observation = asyncio.run(attempt())
    if observation.status is None and _died(probe, 0.5):
        return Observation("crash", False, None, observation.detail)
    return observation


def run_wsproto_client(probe: Probe) -> Observation:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request

    target = probe.target("api-deny-single")
    connection = WSConnection(ConnectionType.CLIENT)
    status: int | None = None
    body = b""
    finished = False
    error = ""
    deadline = time.monotonic() + HANG
    host, port = probe.server.host, probe.server.port
    with socket.create_connection((host, port), timeout=HANG) as sock:
        sock.sendall(connection.send(Request(host=f"{host}:{port}", target=target)))
        while not finished:
            left = deadline - time.monotonic()
            if left <= 0:
                error = "timeout"
                break
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                error = "timeout"
                break
            except OSError as exc:
                error = type(exc).__name__
                break
            try:
                connection.receive_data(data or None)
                for event in connection.events():
                    if isinstance(event, RejectConnection):
                        status = event.status_code
                        finished = not event.has_body
                    elif isinstance(event, RejectData):
                        body += event.data
                        finished = event.body_finished
                    elif isinstance(event, AcceptConnection):
                        status = 101
                        finished = True
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            if not data:
                break
    listed = probe.extension_listed()
    want, want_body = (401, apps.JSON_BODY) if listed else (403, b"")
    ok = status == want and body == want_body and finished
    detail = f"RejectConnection {status}, RejectData {body!r}, finished={finished} {error}"
    if status is None:
        cell = "crash" if _died(probe, 0.5) else (error.split(":")[0] or "no response")
        return Observation(cell, False, None, detail)
    if status == 101:
        return Observation("101!", False, 101, detail)
    cell = f"{status} {'body ok' if ok and body else 'ok' if ok else 'body?'}"
    return Observation(cell, ok, status, detail)


# --- Group 7: the framework example apps ----------------------------------------------------


@dataclass(frozen=True)
class FrameworkApp:
    """A framework's example app (``examples/frameworks/``), served as its docstring says."""

    name: str
    app: str
    requires: tuple[str, ...]
    loops: frozenset[str] = frozenset({"asyncio", "trio"})


ASYNCIO_ONLY = frozenset({"asyncio"})
FRAMEWORK_APPS: dict[str, FrameworkApp] = {
    "starlette": FrameworkApp("Starlette", "examples.frameworks.starlette_app:app", ("starlette",)),
    "fastapi": FrameworkApp("FastAPI", "examples.frameworks.fastapi_app:app", ("fastapi",)),
    "channels": FrameworkApp(
        "Channels",
        "examples.frameworks.channels_app:application",
        ("channels", "django"),
        ASYNCIO_ONLY,
    ),
    "quart": FrameworkApp("Quart", "examples.frameworks.quart_app:app", ("quart",), ASYNCIO_ONLY),
    "falcon": FrameworkApp(
        "Falcon", "examples.frameworks.falcon_app:app", ("falcon",), ASYNCIO_ONLY
    ),
    "litestar": FrameworkApp("Litestar", "examples.frameworks.litestar_app:app", ("litestar",)),
}

#: What every example refuses a user other than alice with, where the extension is listed.
CHALLENGE = b'Bearer realm="chat"'
UNKNOWN_USER = b'{"error":"unknown user"}'
JSON_TYPE = b"application/json"
#: The header that admits: every example greets alice with "hello alice", then closes (1000).
ALICE = ("X-User", "alice")

#: Server log lines that say nothing about the application: uvicorn's websockets-sansio logs
#: this ERROR after every completed denial response (case 5.9 measures it on its own;
#: https://github.com/Kludex/uvicorn/pull/3138).
SPURIOUS_LOG_LINES = ("ASGI callable returned without completing handshake.",)


def _log_problems(log: str) -> tuple[list[str], list[str]]:
    """The extras for a server log (``traceback`` or ``error logged``) and the lines behind."""
    lines = [
        line
        for line in log.splitlines()
        if ("ERROR" in line or "Error" in line or "Traceback" in line)
        and not any(spurious in line for spurious in SPURIOUS_LOG_LINES)
    ]
    if "Traceback (most recent call last)" in log:
        return ["traceback"], lines
    return (["error logged"] if lines else []), lines


def _greeting(opened: Opened) -> str:
    """What differs from alice's greeting ("hello alice", then a close with 1000), or ""."""
    if not opened.accepted:
        return base_cell(opened.response)
    if opened.texts[:1] != [b"hello alice"]:
        return "no hello"
    if opened.close is None:
        return "no close"
    if opened.close[0] != 1000:
        return f"close {opened.close[0]}"
    return ""


def _framework_denial(
    probe: Probe, path: str, *, content_type: bytes = JSON_TYPE, body: bytes = UNKNOWN_USER
) -> Observation:
    """The example's promise on ``path``: without ``x-user: alice`` the 401 (or 403 where the
    extension is not listed), closed, never an upgrade; alice greeted; nothing in the log."""
    response = probe.request(path, wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    if cell == "crash":
        return Observation(cell, False, None, f"{show(response)}; log: {probe.log()[-800:]}")
    alice = probe.open(path, headers=[ALICE])
    probe.settle(events=False)
    listed = probe.extension_listed_on_server()
    problems: list[str] = []
    if listed is False:
        want, label = 403, "fallback"
        if response.status == want and response.body:
            problems.append(f"body {response.body!r}")
    else:
        want, label = 401, "ok"
        if response.status == want:
            expected = {
                "www-authenticate": CHALLENGE,
                "content-type": content_type,
                "content-length": str(len(body)).encode(),
            }
            for name, value in expected.items():
                if response.header(name) != [value]:
                    problems.append(f"{name}: got {response.header(name)!r}, want [{value!r}]")
            if response.body != body:
                problems.append(f"body {response.body!r}")
    if response.status == want:
        cell = f"{want} {label}" if not problems else f"{want} changed"
    extras = []
    bad_upgrade = upgrade_headers(response)
    if bad_upgrade:
        extras.append("+upgrade")
        problems.append(f"upgrade headers on a denial: {bad_upgrade}")
    if response.status is not None and not response.closed:
        extras.append("open")
        problems.append("the connection stayed open after the denial")
    logged, lines = _log_problems(probe.log())
    extras += logged
    problems += lines[:3]
    greeting = _greeting(alice)
    if greeting:
        extras.append(f"alice: {greeting}")
        problems.append(f"alice was not greeted and closed with 1000: {_opened_detail(alice)}")
    if extras:
        cell += ", " + ", ".join(extras)
    conforms = cell == f"{want} {label}"
    detail = "; ".join([*problems, f"listed={listed}", show(response)])
    return Observation(cell, conforms, response.status, detail)


def _denies(path: str, **expected: bytes) -> Callable[[Probe], Observation]:
    def run(probe: Probe) -> Observation:
        return _framework_denial(probe, path, **expected)

    run.__name__ = f"run_framework_denial_{path.strip('/')}"
    return run


def run_starlette_late(probe: Probe) -> Observation:
    opened = probe.open("/late", headers=[ALICE])
    cell, conforms = _close_reading(probe, opened, 4403, b"too late to deny")
    if cell == "crash":
        return Observation(
            cell, False, None, f"{_opened_detail(opened)}; log: {probe.log()[-800:]}"
        )
    probe.settle(events=False)
    logged, lines = _log_problems(probe.log())
    if logged:
        cell += ", " + ", ".join(logged)
    detail = "; ".join([*lines[:3], _opened_detail(opened)])
    return Observation(cell, conforms and not logged, opened.response.status, detail)


def _framework_case(
    case_id: str,
    slug: str,
    framework: str,
    title: str,
    description: str,
    reference: str,
    run: Callable[[Probe], Observation],
) -> Case:
    """A group 7 case: a helper-contract MUST on the framework's example app."""
    example = FRAMEWORK_APPS[framework]
    return Case(
        case_id,
        slug,
        f"{example.name}: {title}",
        description,
        f"{reference}; {example.app.split(':')[0].replace('.', '/')}.py",
        "MUST",
        run,
        contract=True,
        app=example.app,
        requires=example.requires,
        loops=example.loops,
    )


FRAMEWORK_PROMISE = (
    "Without x-user: alice: 401, www-authenticate 'Bearer realm=\"chat\"', {what} with its "
    "content-type and content-length (403 with no body where the extension is not listed); "
    "closed; never an upgrade; no traceback or error line in the server log. With it: 101 "
    "(200 over HTTP/2), the text frame 'hello alice', a close with 1000."
)


# --- The catalogue --------------------------------------------------------------------------

H1 = frozenset({"http/1.1"})

CASES: tuple[Case, ...] = (
    Case(
        "1.1",
        "extension",
        "Extension listed",
        "Does scope['extensions'] list websocket.http.response?",
        ASGI_EXT,
        "INFO",
        run_extension,
        default="listed",
    ),
    Case(
        "1.2",
        "spec-version",
        "asgi.spec_version",
        "The HTTP & WebSocket spec version the server claims (2.4: send raises OSError once "
        "the client has gone).",
        f"{ASGI_WWW}, WebSocket connection scope",
        "INFO",
        run_spec_version,
        default="2.4",
    ),
    Case(
        "2.1",
        "exact",
        "Response byte-exact",
        "start(401, headers) + body: the status, each header value (case kept) and the body "
        "arrive exactly as sent.",
        f"{ASGI_EXT}; {ASGI_WWW}, Response Start",
        "MUST",
        run_exact,
    ),
    Case(
        "2.2",
        "added-headers",
        "Headers added",
        "Which headers the server adds beyond date, server, content-length and "
        "connection: close (start with only content-length).",
        "RFC 9110 section 6.4 (content belongs to the application)",
        "SHOULD",
        run_added_headers,
    ),
    Case(
        "2.3",
        "order",
        "Header order, repeated set-cookie",
        "Header order is kept and two set-cookie headers both arrive, in order.",
        f"{ASGI_WWW}, Response Start ('Order must be preserved'); RFC 6265 section 3",
        "MUST",
        run_order,
    ),
    Case(
        "2.4",
        "more-body",
        "Chunked more_body",
        "Three body messages with more_body=True, no content-length: the whole body arrives.",
        f"{ASGI_EXT} (messages match http.response.body); {ASGI_WWW}, Response Body",
        "MUST",
        run_more_body,
    ),
    Case(
        "2.5",
        "more-body-await",
        "more_body with awaits between",
        "The same with the event loop running between chunks, as a streaming app does.",
        f"{ASGI_WWW}, Response Body",
        "MUST",
        run_more_body_await,
    ),
    Case(
        "2.6",
        "large",
        "1 MiB body",
        "A 1 MiB body with its content-length arrives intact.",
        f"{ASGI_WWW}, Response Body",
        "MUST",
        run_large,
    ),
    Case(
        "2.7",
        "start-only",
        "Start without body",
        "The app sends the start and returns without any body message.",
        f"{ASGI_WWW}, Response Body (the response ends with more_body False)",
        "INFO",
        run_start_only,
        default="500",
    ),
    Case(
        "2.8",
        "start-twice",
        "Start twice",
        "A second websocket.http.response.start before the body.",
        ASGI_ERRORS,
        "INFO",
        run_start_twice,
        default="401, send raised",
    ),
    Case(
        "2.9",
        "body-first",
        "Body before start",
        "A websocket.http.response.body before any start.",
        ASGI_ERRORS,
        "INFO",
        run_body_first,
        default="401, send raised",
    ),
    Case(
        "2.10",
        "status-101",
        "Status 101",
        "A denial with status 101 must not complete (or pretend to complete) the upgrade.",
        "RFC 6455 section 4.2.2; RFC 9110 section 15.2.2",
        "SHOULD",
        run_status_101,
    ),
    Case(
        "2.11",
        "status-99",
        "Status 99",
        "A status outside 100..599 is refused, not written.",
        "RFC 9110 section 15 (three-digit status codes 100..599)",
        "SHOULD",
        run_status_99,
    ),
    Case(
        "2.12",
        "status-600",
        "Status 600",
        "A status outside 100..599 is refused, not written.",
        "RFC 9110 section 15 (three-digit status codes 100..599)",
        "SHOULD",
        run_status_600,
    ),
    Case(
        "2.13",
        "crlf",
        "CR/LF in a header value",
        "A header value with CR LF never splits the response on the wire.",
        "RFC 9110 section 5.5; RFC 9112 section 2.2",
        "MUST",
        run_crlf,
    ),
    Case(
        "2.14",
        "length-long",
        "Content-Length above the body",
        "content-length 20 with a 14-byte body: the server refuses rather than writing a "
        "message that does not match its length.",
        "RFC 9110 section 8.6; RFC 9112 section 6.3",
        "SHOULD",
        run_length_long,
    ),
    Case(
        "2.15",
        "length-short",
        "Content-Length below the body",
        "content-length 5 with a 14-byte body: the extra bytes must not reach the connection.",
        "RFC 9110 section 8.6; RFC 9112 section 6.3",
        "SHOULD",
        run_length_short,
    ),
    Case(
        "2.16",
        "closes",
        "Connection closed after the denial",
        "After the final body the server closes the connection (or ends the HTTP/2 stream).",
        f"{ASGI_EXT} ('send a HTTP response and then close the connection')",
        "SHOULD",
        run_closes,
    ),
    Case(
        "2.17",
        "reuse",
        "Connection reuse",
        "A second handshake on the connection after a denial, where it stays open.",
        "RFC 9112 section 9.3 (persistence)",
        "INFO",
        run_reuse,
        default="closed",
        protocols=H1,
    ),
    Case(
        "2.18",
        "unadvertised",
        "Response messages without the extension",
        "start + body sent whatever the scope lists: what a server without the extension does.",
        ASGI_ERRORS,
        "INFO",
        run_unadvertised,
        default="401",
    ),
    Case(
        "3.1",
        "close-403",
        "Close before accept",
        "websocket.close before accept gives 403 Forbidden.",
        f"{ASGI_WWW}, Close - send event ('must close the connection with a HTTP 403')",
        "MUST",
        run_close_403,
    ),
    Case(
        "3.2",
        "close-reason",
        "Close code and reason before accept",
        "websocket.close with code 4001 and a reason before accept: are they sent?",
        f"{ASGI_WWW}, Close - send event",
        "INFO",
        run_close_reason,
        default="403, no reason",
    ),
    Case(
        "3.3",
        "return",
        "Return without a handshake",
        "The app returns without sending anything: an error status, closed, never an upgrade.",
        f"{ASGI_WWW}, Connect - receive event; {ASGI_ERRORS}",
        "SHOULD",
        run_return,
    ),
    Case(
        "3.4",
        "raise-before",
        "Exception before any message",
        "The app raises before sending: an error status, closed, never an upgrade.",
        f"{ASGI_ERRORS} ('must terminate the application instance and its connection')",
        "SHOULD",
        run_raise_before,
    ),
    Case(
        "3.5",
        "raise-after-start",
        "Exception after the start",
        "The app raises between start and body: the connection is terminated.",
        ASGI_ERRORS,
        "SHOULD",
        run_raise_after_start,
    ),
    Case(
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
    ),
    Case(
        "4.2",
        "client-gone",
        "Client gone before the denial",
        "The client closes before the app sends the start: the send raises OSError (spec 2.4) "
        "or is a no-op (before 2.4).",
        f"{ASGI_WWW}, Disconnected Client - send exception (spec 2.4)",
        "SHOULD",
        run_client_gone_raw,
        protocols=H1,
    ),
    Case(
        "5.1",
        "deny",
        "deny() with repeated set-cookie",
        "deny(scope, send, 401, [www-authenticate, set-cookie x2], json): that response where "
        "the extension is listed, else 403; closed; never 101; no traceback.",
        "asgi_ws_deny docs: deny()",
        "MUST",
        run_api_deny,
        contract=True,
    ),
    Case(
        "5.2",
        "deny-single",
        "deny() with one header",
        "deny(scope, send, 401, [www-authenticate], json): the same promise.",
        "asgi_ws_deny docs: deny()",
        "MUST",
        run_api_deny_single,
        contract=True,
    ),
    Case(
        "5.3",
        "deny-default",
        "deny() defaults",
        "deny(scope, send): 403 with an empty body; closed.",
        "asgi_ws_deny docs: deny()",
        "MUST",
        run_api_deny_default,
        contract=True,
    ),
    Case(
        "5.4",
        "denial-app",
        "Denial as an ASGI app",
        "await Denial.json(429, ...)(scope, receive, send): that response, or 403.",
        "asgi_ws_deny docs: Denial",
        "MUST",
        run_api_denial_app,
        contract=True,
    ),
    Case(
        "5.5",
        "denial-text",
        "deny() with a Denial.text",
        "deny(scope, send, Denial.text(403, ...)): that response, or 403.",
        "asgi_ws_deny docs: Denial.text",
        "MUST",
        run_api_denial_text,
        contract=True,
    ),
    Case(
        "5.6",
        "fallback-raise",
        "fallback='raise'",
        "Where the extension is missing, DenialUnsupportedError before anything is sent.",
        "asgi_ws_deny docs: deny(fallback='raise')",
        "MUST",
        run_api_fallback_raise,
        contract=True,
    ),
    Case(
        "5.7",
        "invalid-101",
        "deny(101) refused",
        "deny(scope, send, 101) raises InvalidDenialError having sent nothing; the client "
        "never sees 101.",
        "asgi_ws_deny docs: validation",
        "MUST",
        run_api_invalid_101,
        contract=True,
    ),
    Case(
        "5.8",
        "client-gone",
        "deny() after the client left",
        "deny() returns ('disconnected', or the server dropped it silently); nothing escapes, "
        "no traceback.",
        "asgi_ws_deny docs: deny() outcome 'disconnected'",
        "MUST",
        run_api_client_gone,
        protocols=H1,
        contract=True,
    ),
    Case(
        "5.9",
        "quiet-log",
        "No error logged for a denial",
        "A completed deny() leaves no ERROR line or traceback in the server log.",
        "asgi_ws_deny docs: deny()",
        "SHOULD",
        run_api_quiet_log,
        contract=True,
    ),
    # Guard contract: asgi_ws_deny.WebSocketGuard and Denied (apps: conformance.apps api_guard_*).
    # Further guard cases go here, ids 5.14 and up, with contract=True.
    Case(
        "5.10",
        "guard-check",
        "Guard check refuses",
        "WebSocketGuard(app, check=...) whose check returns Denial(401, ...): that response "
        "(or 403), closed, and the application is never called.",
        "asgi_ws_deny docs: WebSocketGuard",
        "MUST",
        run_guard_check,
        contract=True,
    ),
    Case(
        "5.11",
        "guard-denied",
        "Denied raised in the app",
        "The application raises Denied(404, ...) under the guard: that response, or 403.",
        "asgi_ws_deny docs: Denied",
        "MUST",
        run_guard_denied,
        contract=True,
    ),
    Case(
        "5.12",
        "guard-no-handshake",
        "Guard: app returns without a handshake",
        "The guard answers 403 where the server alone gives 500, a hang or a 101 (case 3.3).",
        "asgi_ws_deny docs: WebSocketGuard (no_handshake_denial)",
        "MUST",
        run_guard_no_handshake,
        contract=True,
    ),
    Case(
        "5.13",
        "guard-check-error",
        "Guard: the check raises",
        "A check that raises fails closed: 500 (or 403), closed, the application never called.",
        "asgi_ws_deny docs: WebSocketGuard (error_denial)",
        "MUST",
        run_guard_check_error,
        contract=True,
    ),
    # Browser-visible denials: WebSocketGuard(..., browser_policy="origin").
    Case(
        "5.14",
        "guard-browser-origin",
        "Browser policy: check refuses, Origin",
        "browser_policy='origin', a check returning Denial(401, ...), a handshake with Origin: "
        "an accept, then at once a close with 4401 and the status phrase 'Unauthorized'; the "
        "application never called; no traceback.",
        "asgi_ws_deny docs: WebSocketGuard (browser-visible denials); RFC 6455 section 7.4.2",
        "MUST",
        run_guard_browser_check,
        contract=True,
    ),
    Case(
        "5.15",
        "guard-browser-denied",
        "Browser policy: Denied in the app, Origin",
        "The application raises Denied(404, ..., reason='no such room') under "
        "browser_policy='origin', with Origin: an accept, then a close with 4404 and that reason.",
        "asgi_ws_deny docs: Denied (reason); WebSocketGuard (browser-visible denials)",
        "MUST",
        run_guard_browser_denied,
        contract=True,
    ),
    Case(
        "5.16",
        "guard-browser-subprotocol",
        "Browser policy: subprotocol offered",
        "As 5.14 with two subprotocols offered: the accept names the first (a browser fails an "
        "accept without one, and the close is lost), then the close 4401.",
        "asgi_ws_deny docs: WebSocketGuard (browser-visible denials); RFC 6455 section 4.2.2",
        "MUST",
        run_guard_browser_subprotocol,
        contract=True,
    ),
    Case(
        "5.17",
        "guard-browser-no-origin",
        "Browser policy: no Origin",
        "The guard of 5.14, a handshake without Origin: the HTTP denial (401, or 403 where the "
        "extension is not listed), closed, the application never called.",
        "asgi_ws_deny docs: WebSocketGuard (browser_policy='origin')",
        "MUST",
        run_guard_browser_no_origin,
        contract=True,
    ),
    Case(
        "6.1",
        "websockets",
        "websockets client",
        "The websockets asyncio client's InvalidStatus.response: status and body of a deny().",
        "websockets docs: InvalidStatus.response",
        "INFO",
        run_websockets_client,
        default="401 body ok",
        protocols=H1,
    ),
    Case(
        "6.2",
        "wsproto",
        "wsproto client",
        "wsproto's RejectConnection and RejectData events for a deny().",
        "wsproto docs: RejectConnection, RejectData",
        "INFO",
        run_wsproto_client,
        default="401 body ok",
        protocols=H1,
    ),
    # Frameworks: each example app of examples/frameworks/ unchanged, on a server of its own.
    _framework_case(
        "7.1",
        "starlette-deny",
        "starlette",
        "deny() with a JSONResponse",
        "/ws: deny(websocket, JSONResponse(..., 401, headers)) before accept. "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/starlette (deny)",
        _denies("/ws"),
    ),
    _framework_case(
        "7.2",
        "starlette-http-exception",
        "starlette",
        "HTTPException before accept",
        "/raise: HTTPException(401, 'unknown user', headers) before accept, through "
        "add_exception_handlers. "
        + FRAMEWORK_PROMISE.format(what="the text/plain body 'unknown user'"),
        "asgi_ws_deny docs: frameworks/starlette (add_exception_handlers)",
        _denies("/raise", content_type=b"text/plain; charset=utf-8", body=b"unknown user"),
    ),
    _framework_case(
        "7.3",
        "starlette-denied",
        "starlette",
        "Denied before accept",
        "/denied: raise Denied(Denial.json(401, ...)) before accept. "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/starlette (add_exception_handlers)",
        _denies("/denied"),
    ),
    _framework_case(
        "7.4",
        "starlette-late",
        "starlette",
        "HTTPException after accept",
        "/late: accept, then HTTPException(403, 'too late to deny'): a close with 4403 and "
        "that reason; nothing in the server log.",
        "asgi_ws_deny docs: frameworks/starlette (after accept); RFC 6455 section 7.4.2",
        run_starlette_late,
    ),
    _framework_case(
        "7.5",
        "fastapi-check",
        "fastapi",
        "check_handshake dependency",
        "/ws: the route dependency check_handshake(check) refuses before the endpoint runs. "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/fastapi (check_handshake)",
        _denies("/ws"),
    ),
    _framework_case(
        "7.6",
        "fastapi-http-exception",
        "fastapi",
        "HTTPException from a dependency",
        "/raise: an ordinary dependency raises HTTPException(401, 'unknown user', headers). "
        + FRAMEWORK_PROMISE.format(what='the JSON body {"detail":"unknown user"}'),
        "asgi_ws_deny docs: frameworks/fastapi (add_exception_handlers)",
        _denies("/raise", body=b'{"detail":"unknown user"}'),
    ),
    _framework_case(
        "7.7",
        "channels-deny",
        "channels",
        "self.deny() in connect()",
        "/ws: a DenialMixin consumer awaits self.deny(Denial) in connect(). "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/channels (DenialMixin)",
        _denies("/ws"),
    ),
    _framework_case(
        "7.8",
        "channels-denied",
        "channels",
        "Denied in connect()",
        "/denied: the consumer raises Denied(Denial) in connect(). "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/channels (DenialMixin)",
        _denies("/denied"),
    ),
    _framework_case(
        "7.9",
        "quart-denied",
        "quart",
        "Denied and the error handler",
        "/ws: the view raises Denied before accept; add_error_handler answers (one_body around "
        "the app, the scheme shim of the example for daphne). "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/quart (add_error_handler, one_body)",
        _denies("/ws"),
    ),
    _framework_case(
        "7.10",
        "quart-returned",
        "quart",
        "denial_response() returned",
        "/returned: the view returns denial_response(Denial) before accept. "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/quart (denial_response)",
        _denies("/returned"),
    ),
    _framework_case(
        "7.11",
        "falcon-denied",
        "falcon",
        "Denied in on_websocket",
        "/ws: on_websocket raises Denied before accept; guard(app, check) lets it out of Falcon. "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/falcon (guard)",
        _denies("/ws"),
    ),
    _framework_case(
        "7.12",
        "falcon-checked",
        "falcon",
        "guard check",
        "/checked: the check of guard(app, check) refuses before Falcon sees the connection. "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/falcon (guard)",
        _denies("/checked"),
    ),
    _framework_case(
        "7.13",
        "litestar-deny",
        "litestar",
        "deny() in the handler",
        "/ws: the handler awaits deny(socket, Denial) before accept. "
        + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/litestar (deny)",
        _denies("/ws"),
    ),
    _framework_case(
        "7.14",
        "litestar-checked",
        "litestar",
        "WebSocketGuard route middleware",
        "/checked: DefineMiddleware(WebSocketGuard, check=...) on the route refuses before the "
        "handler runs. " + FRAMEWORK_PROMISE.format(what="the JSON body"),
        "asgi_ws_deny docs: frameworks/litestar (WebSocketGuard)",
        _denies("/checked"),
    ),
)


def case_by_id(case_id: str) -> Case:
    """The case with id ``case_id`` (``"2.3"``)."""
    for case in CASES:
        if case.id == case_id:
            return case
    raise KeyError(f"no case {case_id!r}")


def run_case(case: Case, probe: Probe) -> Observation:
    """Run ``case``; ``n/a`` where it does not apply; any client error is a result."""
    skip = not_applicable(case, probe.variant)
    if skip is not None:
        return skip
    try:
        return case.run(probe)
    except Exception as exc:
        # A client-side error is an observation of the server, never a stalled run.
        return Observation("client error", False, None, f"{type(exc).__name__}: {exc}")

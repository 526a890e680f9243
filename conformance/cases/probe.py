"""The probe, one case's access to a running server, and the functions that read its answers.

A `Probe` makes the handshakes of a case (raw HTTP/1.1, or an extended CONNECT: RFC 8441 over
HTTP/2 through `conformance.client_h2`, RFC 9220 over HTTP/3 through `conformance.h3`), reads the
events the app recorded for them (`conformance.apps`) and the server's output. The reading
functions turn what came back into the short, deterministic words of a cell (``401``, ``hang``,
``crash``, ``101!``) and the detail behind it.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asgi_ws_deny import EXTENSION
from conformance import apps
from conformance.client import (
    CLOSE,
    TEXT,
    WireConnection,
    WireResponse,
    build_handshake,
    close_frame,
    ws_frames,
    ws_handshake,
)
from conformance.client_h2 import h2_ws_handshake
from conformance.h3 import h3_ws_handshake

if TYPE_CHECKING:
    from conformance.servers import RunningServer, Variant

__all__ = (
    "CLOSE_WAIT",
    "EVENT_WAIT",
    "HANG",
    "TUNNELS",
    "UPGRADE_HEADERS",
    "Observation",
    "Opened",
    "Probe",
    "app_headers_intact",
    "base_cell",
    "client_gone",
    "close_reading",
    "crash_or",
    "died",
    "not_listed",
    "opened_detail",
    "sent_raised",
    "show",
    "traceback_logged",
    "upgrade_headers",
)

#: The handshake of each protocol a variant is reached with.
_CLIENTS: dict[str, Callable[..., WireResponse]] = {
    "http/1.1": ws_handshake,
    "h2": h2_ws_handshake,
    "h3": h3_ws_handshake,
}
#: The HTTP versions that carry a WebSocket as a stream, with their short names.
TUNNELS = {b"HTTP/2": "h2", b"HTTP/3": "h3"}

#: How long a client waits for a response before calling it a hang.
HANG = 2.0
#: How long a client waits, after a complete response, for the server to close the connection.
CLOSE_WAIT = 0.5
#: How long the checks wait for an event the app records.
EVENT_WAIT = apps.APP_WAIT + 1.0


@dataclass(frozen=True)
class Observation:
    """What one case saw on one server."""

    cell: str
    conforms: bool | None = None
    status: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Opened:
    """An accepted handshake as the client saw it: the response and the server's frames."""

    response: WireResponse
    frames: list[tuple[int, bytes]]

    @property
    def accepted(self) -> bool:
        """A 101 (HTTP/1.1), or a 2xx that opens the tunnel (RFC 8441 section 5 over HTTP/2,
        RFC 9220 section 3 over HTTP/3)."""
        status = self.response.status
        if self.response.http_version in TUNNELS:
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
    #: The answers the client had to reject as malformed (`WireResponse.malformed`).
    malformed: list[WireResponse] = field(default_factory=list)

    @property
    def variant(self) -> Variant:
        return self.server.variant

    @property
    def tunnel(self) -> bool:
        """Whether the variant is reached by an extended CONNECT (HTTP/2 or HTTP/3), where the
        WebSocket is a stream, not the connection."""
        return self.variant.protocol in ("h2", "h3")

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
        client = _CLIENTS[self.variant.protocol]
        response = client(
            self.server.host,
            self.server.port,
            target,
            headers,
            timeout=timeout,
            wait_close=wait_close,
        )
        if response.malformed:
            self.malformed.append(response)
        return response

    def open(self, target: str, *, headers: Sequence[tuple[str, str]] = ()) -> Opened:
        """A handshake the server may accept: the response, then the frames up to the server's
        close frame, which the client answers (HTTP/1.1; over HTTP/2 and HTTP/3 the stream's
        end). After a first frame, ``CLOSE_WAIT`` of silence ends the wait for the close."""
        if self.tunnel:
            response = self.request(target, headers=headers, wait_close=CLOSE_WAIT)
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

    def wait_log(self, text: str, *, timeout: float = EVENT_WAIT) -> bool:
        """Whether ``text`` is in the server's output of this case, waiting up to ``timeout``
        for it (a server logs an app's exception after the app's last event)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline or not self.server.alive():
                return False
            time.sleep(0.01)
        return True

    def go(self) -> None:
        """Tell a waiting app that the client has gone (see ``apps._wait_for_go``)."""
        Path(f"{self.events_path}.{self.token}.go").touch()


def base_cell(response: WireResponse) -> str:
    """The short reading of a response: its status, or how it failed to come."""
    if response.status is None:
        if response.error and response.error.startswith("connect"):
            return "refused"
        if response.malformed:
            return "malformed"
        if response.timed_out:
            return "hang"
        if response.reset:
            return "reset"
        return "no response"
    if response.status == 101:
        return "101!"
    return str(response.status)


def show(response: WireResponse, limit: int = 600) -> str:
    """The bytes received, for a detail line (HTTP/2 and HTTP/3: status, headers, body)."""
    if response.http_version in TUNNELS:
        text = (
            f"{TUNNELS[response.http_version]} :status {response.status} "
            f"headers {response.headers!r} body {response.body!r}"
        )
    else:
        text = repr(response.raw)
    if response.malformed:
        # What the server sent, as decoded before the client rejected it.
        text += f" trace {response.raw!r}"
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
    if response.status is None and not response.malformed:
        # A connection that ends without a response may be a dying server: give it a moment.
        # A timeout is a hang of a living server unless it is already gone.
        dead = not probe.server.alive() if response.timed_out else died(probe)
        if dead:
            return "crash"
    return base_cell(response)


def died(probe: Probe, within: float = 0.5) -> bool:
    deadline = time.monotonic() + within
    while probe.server.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def sent_raised(probe: Probe) -> list[str]:
    return [f"{e['message']}: {e['error']}" for e in probe.events() if e["event"] == "send-raised"]


def not_listed() -> Observation:
    return Observation("n/a", None, detail="the server does not list the extension")


TRACEBACK = "Traceback (most recent call last)"


def traceback_logged(probe: Probe, *, wait: float = 0.0) -> bool:
    """Whether the server logged a traceback in this case (``wait``: up to so long for it)."""
    return probe.wait_log(TRACEBACK, timeout=wait) if wait else TRACEBACK in probe.log()


def close_reading(probe: Probe, opened: Opened, code: int, reason: bytes) -> tuple[str, bool]:
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


def opened_detail(opened: Opened) -> str:
    return f"close frame {opened.close!r}; frames {opened.frames[:4]!r}; {show(opened.response)}"


def client_gone(probe: Probe, behaviour: str) -> tuple[WireResponse | None, list[dict[str, Any]]]:
    """Send a handshake, wait until the app is waiting, leave, then let the app go on.

    The client leaves with a FIN and waits (up to ``CLOSE_WAIT``) for the server to close its
    side too, the sign that it has read the FIN, before it closes and lets the app go on:
    otherwise the app's send races the server's reading of the FIN, and a loaded machine
    decides which comes first."""
    target = probe.target(behaviour)
    if probe.tunnel:
        return None, []
    with WireConnection(probe.server.host, probe.server.port, timeout=HANG) as connection:
        connection.send(build_handshake(probe.server.host, probe.server.port, target))
        waiting = probe.wait_event("waiting", timeout=HANG)
        if waiting is None:
            response = connection.read(timeout=0.2)
            return response, probe.events()
        connection.leave(CLOSE_WAIT)
    probe.go()
    probe.wait_event("returned", timeout=EVENT_WAIT)
    return None, probe.events()

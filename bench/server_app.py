"""The application every server variant runs during a benchmark (``bench.server_app:app``).

Five ways to refuse a WebSocket handshake, one per path, so that one server process serves all
of them and the repetitions can be interleaved:

``/deny``
    the helper: ``deny(scope, send, 401, HEADERS, BODY)``, validated on every call;
``/deny-denial``
    the helper with a `Denial` validated once at import: ``deny(scope, send, DENIAL)``;
``/raw``
    the same messages written by hand (the two extension messages where the server lists the
    extension, else the close the helper falls back to), with no validation at all;
``/close``
    a bare ``websocket.close`` before accept (the server answers 403);
``/accept-close``
    the common workaround: accept, send a text message, close with 1008.

And two ways to admit one, for the guard's cost on a real server:

``/admit``
    a minimal Starlette application whose WebSocket endpoint accepts, then closes;
``/admit-guarded``
    the same application inside `WebSocketGuard`, with a check that admits.

The denial has no two headers of the same name: granian's worker panics on a repeated name
in a denial response, which would measure a crash instead of a denial.

Every path runs through the same clocked ``send`` and ``receive`` wrappers, so the time the
application itself takes (the server's ``send`` and ``receive`` excluded) can be read per path
from ``GET /stats``: the helper's and the guard's cost measured inside each real server, where
the whole-server figures are too coarse for them. That clock is the CPU time of the thread
that runs the handshake (``time.thread_time_ns``), so a moment the process waits for a CPU
that other work on the machine holds is not counted, as it is not in the server CPU time the
figure is set against; the wall-clock time is kept beside it. A handshake whose code resumes
on another thread after an await would make the thread clock meaningless: each path counts
those (none on any server so far).
``/stats`` also gives the CPU time the process spent in Python's garbage collector, and its
full collections, since the last call: a server whose heap grows pays for ever larger
collections, which falls on whichever run they happen in.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import MutableMapping
from time import perf_counter_ns, thread_time_ns
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from asgi_ws_deny import EXTENSION, Denial, WebSocketGuard, deny

HEADERS = (("www-authenticate", 'Bearer realm="api"'), ("content-type", "application/json"))
BODY = b'{"error":"unauthorized"}'
STATUS = 401
DENIAL = Denial(STATUS, HEADERS, BODY)
CLOSE: dict[str, Any] = {"type": "websocket.close", "code": 1008, "reason": ""}

#: Per path: handshakes; the application's own CPU nanoseconds (its thread's), the server's
#: ``send`` and ``receive`` and full garbage collections excluded; the same by the wall clock;
#: and the handshakes whose code resumed on another thread. ``GET /stats`` returns them as
#: JSON and starts them again.
STATS: dict[str, list[int]] = {}
#: Since the last ``GET /stats``: full (generation 2) collections of this process, the CPU
#: nanoseconds they took, and the CPU nanoseconds of every collection. ``/stats`` key ``"gc"``.
GC = [0, 0, 0]
_collecting = [0]
#: The full-collection clock of the handshake whose application code runs now, if any: a full
#: collection walks everything the process holds, so the handshake it happens to fall in does
#: not own its cost (one of 20 ms would add 13 us to each of 1,500 handshakes).
_running: list[list[int] | None] = [None]


def _clock_collections(phase: str, info: dict[str, int]) -> None:
    # A collection runs on the thread that triggered it, from start to stop.
    if phase == "start":
        _collecting[0] = thread_time_ns()
        return
    took = thread_time_ns() - _collecting[0]
    GC[2] += took
    if info["generation"] == 2:
        GC[0] += 1
        GC[1] += took
        running = _running[0]
        if running is not None:
            running[0] += took


gc.callbacks.append(_clock_collections)


async def _endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close()


def _admit(handshake: object) -> None:
    return None


#: A minimal Starlette application, as in the in-process guard benchmark: bare and guarded.
ADMIT = Starlette(
    routes=[WebSocketRoute("/admit", _endpoint), WebSocketRoute("/admit-guarded", _endpoint)]
)
GUARDED = WebSocketGuard(ADMIT, check=_admit)


async def refuse(path: str, scope: dict[str, Any], send: Any) -> None:
    """The refusal of ``path``; every one sends what the server gets through ``send``."""
    if path == "/deny":
        await deny(scope, send, STATUS, HEADERS, BODY)
    elif path == "/deny-denial":
        await deny(scope, send, DENIAL)
    elif path == "/raw":
        # What a careful hand-written application does: check the extension, then send the
        # messages `deny` would send, written out.
        if EXTENSION in (scope.get("extensions") or {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 401,
                    "headers": [
                        (b"www-authenticate", b'Bearer realm="api"'),
                        (b"content-type", b"application/json"),
                        (b"content-length", b"24"),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": BODY, "more_body": False})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
    elif path == "/accept-close":
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        await send({"type": "websocket.send", "bytes": None, "text": "unauthorized"})
        await send({"type": "websocket.close", "code": 1008, "reason": ""})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": ""})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "websocket":
        path = scope["path"]
        in_server = in_server_wall = 0
        full_gc = [0]
        thread = threading.get_ident()
        moved = 0

        async def timed_send(message: MutableMapping[str, Any]) -> None:
            # The server's own work on a message is the same for every path; only the
            # application's part differs, so that is what is clocked.
            nonlocal in_server, in_server_wall, moved
            _running[0] = None  # other handshakes run while this one waits for the server
            sent, sent_wall = thread_time_ns(), perf_counter_ns()
            try:
                await send(message)
            finally:
                in_server += thread_time_ns() - sent
                in_server_wall += perf_counter_ns() - sent_wall
                moved |= threading.get_ident() != thread
                _running[0] = full_gc

        async def timed_receive() -> Any:
            nonlocal in_server, in_server_wall, moved
            _running[0] = None
            asked, asked_wall = thread_time_ns(), perf_counter_ns()
            try:
                return await receive()
            finally:
                in_server += thread_time_ns() - asked
                in_server_wall += perf_counter_ns() - asked_wall
                moved |= threading.get_ident() != thread
                _running[0] = full_gc

        started, started_wall = thread_time_ns(), perf_counter_ns()
        _running[0] = full_gc
        try:
            if path == "/admit":
                await ADMIT(scope, timed_receive, timed_send)
            elif path == "/admit-guarded":
                await GUARDED(scope, timed_receive, timed_send)
            else:
                await refuse(path, scope, timed_send)
        finally:
            _running[0] = None
        ended, ended_wall = thread_time_ns(), perf_counter_ns()
        entry = STATS.setdefault(path, [0, 0, 0, 0])
        entry[0] += 1
        entry[1] += ended - started - in_server - full_gc[0]
        entry[2] += ended_wall - started_wall - in_server_wall - full_gc[0]
        entry[3] += moved or threading.get_ident() != thread
    elif kind == "http":
        body = b""
        if scope["path"] == "/stats":
            body = json.dumps({**STATS, "gc": GC}).encode()
            STATS.clear()
            GC[:] = [0, 0, 0]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
    elif kind == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

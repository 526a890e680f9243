"""In-process benchmarks: what the helpers cost on top of the messages they send.

Every arm is an ``async`` callable awaited ``number`` times in a row inside one event loop, with
the garbage collector off for the batch (as ``timeit`` does). The arms of one comparison run
one after another within a repetition, in an order that rotates from one repetition to the
next, so slow phases of a noisy machine fall on all of them alike; a ratio is taken within each
repetition and the median of those is reported, next to the median nanoseconds of each arm.

Denial arms, each sending the same two ``websocket.http.response.*`` messages:

``raw``          the messages written by hand after the one check a correct app needs (is
                 the extension listed?), as ``bench.server_app`` does on ``/raw``;
``floor``        the same code moved into a coroutine function of its own and awaited: what
                 calling any helper costs before it does anything (no helper can beat it);
``deny``         ``deny(scope, send, 401, HEADERS, BODY)``: validates and builds every call;
``deny_denial``  ``deny(scope, send, DENIAL)`` with a `Denial` validated once, ahead of time;
``denial_app``   ``await DENIAL(scope, receive, send)``, the `Denial` as an ASGI application.

Validation arms, plain calls (no coroutine, no ``send``), each validating one typical denial, a
401 with two headers and a small JSON body:

``denial``       ``Denial(401, HEADERS, BODY)``: what ``deny(scope, send, 401, headers, body)``
                 does before it builds the messages;
``denial_json``  ``Denial.json(401, {"error": "unauthorized"}, [www-authenticate])``, which
                 encodes the body and adds the content type;
``messages``     ``DENIAL.messages(SCOPE)``: building the two messages from a valid `Denial`,
                 the step that follows validation in every call of `deny`.

Each is measured against two ``send`` callables: ``noop`` returns at once (the helper's own cost,
nothing to hide it) and ``wire`` does the least an HTTP/1.1 server must do with the messages
(write the status line, headers and body into a buffer), a floor under any real server's send.

Guard arms wrap a minimal Starlette application (one HTTP route, one WebSocket route that
accepts and closes) in `WebSocketGuard` with a check that admits, against the same application
bare: ``http`` requests pass straight through; admitted ``websocket`` handshakes pay for the
check and the tracking ``send``. The ``layer`` arm wraps the application in a middleware that
only passes the call on: what any middleware costs (the floor under the guard's figure). The
``observe`` arm also hands the application a ``send`` of its own that passes each message on:
the floor under any middleware that must see what the application sends, as the guard must.
The ``least`` arm does, for a websocket, only what any guard with a check must: build the
check's `Handshake`, call the check, and pass ``send`` through a function of its own. The
``unchecked`` arm is `WebSocketGuard` without a check: what following the handshake (to convert
`Denied`, a missing handshake, an error before accept) costs on its own.

Echo arms: one admitted connection that receives ``ECHO_MESSAGES`` text messages and echoes
each, then ends on the client's disconnect: ``bare`` (the application alone), ``guard``
(`WebSocketGuard` without a check or limits: the tracking ``send`` and the guard's ``receive``),
``wrapped`` (the same, its ``receive`` wrapped in one coroutine more: the floor under any
``receive`` that looks at each message) and ``limits`` (the guard with `MessageLimits` on the
size, the message rate and the byte rate, never passed). Per message: ``guard`` against
``bare`` is what following the connection costs, ``limits`` against ``guard`` what limits cost,
and ``limits`` against ``wrapped`` what counting itself costs.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from asgi_ws_deny import EXTENSION, Denial, deny
from bench.server_app import BODY, HEADERS, STATUS

#: `Denial.json`'s form of the same denial: the body as data, the content type added by it.
JSON_DATA = {"error": "unauthorized"}
JSON_HEADERS = HEADERS[:1]

__all__ = ("ECHO_MESSAGES", "Comparison", "echo_figures", "run_echo", "run_in_process")

Arm = Callable[[], Awaitable[None]]
Call = Callable[[], object]

SCOPE: dict[str, Any] = {
    "type": "websocket",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "scheme": "ws",
    "path": "/ws",
    "raw_path": b"/ws",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "subprotocols": [],
    "extensions": {EXTENSION: {}},
}
DENIAL = Denial(STATUS, HEADERS, BODY)


@dataclass
class Comparison:
    """The arms of one comparison, in nanoseconds per call, with ratios to ``baseline``."""

    baseline: str
    samples: dict[str, list[float]]

    def median_ns(self, arm: str) -> float:
        return statistics.median(self.samples[arm])

    def ratio(self, arm: str) -> float:
        """Median over repetitions of ``arm / baseline`` within each repetition."""
        pairs = zip(self.samples[arm], self.samples[self.baseline], strict=True)
        return statistics.median(a / b for a, b in pairs)

    def added_ns(self, arm: str) -> float:
        """Median over repetitions of ``arm - baseline`` within each repetition."""
        pairs = zip(self.samples[arm], self.samples[self.baseline], strict=True)
        return statistics.median(a - b for a, b in pairs)


async def _noop_send(message: Mapping[str, Any]) -> None:
    return None


class _WireSend:
    """The least an HTTP/1.1 server does with a denial: serialize it into an output buffer."""

    def __init__(self) -> None:
        self.out = bytearray()

    async def __call__(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.http.response.start":
            out = self.out
            out += b"HTTP/1.1 %d \r\n" % message["status"]
            for name, value in message["headers"]:
                out += name + b": " + value + b"\r\n"
            out += b"\r\n"
        elif kind == "websocket.http.response.body":
            self.out += message["body"]
        else:
            self.out += b"HTTP/1.1 403 \r\ncontent-length: 0\r\n\r\n"
        if len(self.out) > 1 << 16:
            self.out.clear()


async def _no_receive() -> Any:
    raise AssertionError("a denial never calls receive()")


def _denial_arms(send: Callable[[Any], Awaitable[None]]) -> dict[str, Arm]:
    scope = SCOPE

    async def raw() -> None:
        # What a careful hand-written app does: check the extension, send the two messages.
        if EXTENSION in (scope.get("extensions") or {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": STATUS,
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

    async def floor() -> None:
        await raw()

    async def with_deny() -> None:
        await deny(scope, send, STATUS, HEADERS, BODY)

    async def with_deny_denial() -> None:
        await deny(scope, send, DENIAL)

    async def with_denial_app() -> None:
        await DENIAL(scope, _no_receive, send)

    return {
        "raw": raw,
        "floor": floor,
        "deny": with_deny,
        "deny_denial": with_deny_denial,
        "denial_app": with_denial_app,
    }


def _validation_arms() -> dict[str, Call]:
    scope = SCOPE

    def denial() -> object:
        return Denial(STATUS, HEADERS, BODY)

    def denial_json() -> object:
        return Denial.json(STATUS, JSON_DATA, JSON_HEADERS)

    def messages() -> object:
        return DENIAL.messages(scope)

    return {"denial": denial, "denial_json": denial_json, "messages": messages}


def _check_validation_arms() -> None:
    """Both validation arms must build the benchmark's denial, or they time something else."""
    built = {name: arm() for name, arm in _validation_arms().items() if name != "messages"}
    if any(denial != DENIAL for denial in built.values()):
        raise AssertionError(f"the validation arms build other denials: {built}")


def _check_arms_agree(send_factory: Callable[[], Any]) -> None:
    """Every denial arm must put the same bytes on the wire, or the comparison is void."""
    outputs: dict[str, bytes] = {}
    for name in ("raw", "floor", "deny", "deny_denial", "denial_app"):
        send = send_factory()
        arm = _denial_arms(send)[name]

        async def once(arm: Arm = arm) -> None:
            await arm()

        asyncio.run(once())
        outputs[name] = bytes(send.out)
    if len(set(outputs.values())) != 1 or BODY not in outputs["raw"]:
        raise AssertionError(f"the denial arms differ on the wire: {outputs}")


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def homepage(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    return Starlette(routes=[Route("/", homepage), WebSocketRoute("/ws", endpoint)])


def _guard_arms() -> dict[str, dict[str, Arm]]:
    from asgi_ws_deny import Handshake, WebSocketGuard

    bare = _starlette_app()

    def admit(handshake: Any) -> None:
        return None

    guarded = WebSocketGuard(bare, check=admit)
    unchecked = WebSocketGuard(bare)

    async def layer(scope: Any, receive: Any, send: Any) -> None:
        await bare(scope, receive, send)

    async def observe(scope: Any, receive: Any, send: Callable[[Any], Awaitable[None]]) -> None:
        def passed_on(message: Any) -> Awaitable[None]:
            return send(message)

        await bare(scope, receive, passed_on)

    async def least(scope: Any, receive: Any, send: Callable[[Any], Awaitable[None]]) -> None:
        # What any guard with a check must do for a websocket: give the check its view of the
        # handshake, call it, and see the messages the application sends (nothing else).
        if scope["type"] != "websocket":
            await bare(scope, receive, send)
            return
        admit(Handshake(scope))

        def passed_on(message: Any) -> Awaitable[None]:
            return send(message)

        await bare(scope, receive, passed_on)

    http_scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    ws_scope = dict(SCOPE)
    sent: list[str] = []

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message["type"])
        if len(sent) > 1024:
            sent.clear()

    async def http_receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def ws_receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    def call(app: Any, scope: dict[str, Any], receive: Any) -> Arm:
        async def arm() -> None:
            # A fresh scope each call, as a server gives: Starlette stores state in it.
            await app(dict(scope), receive, send)

        return arm

    return {
        "http": {
            "bare": call(bare, http_scope, http_receive),
            "layer": call(layer, http_scope, http_receive),
            "observe": call(observe, http_scope, http_receive),
            "least": call(least, http_scope, http_receive),
            "unchecked": call(unchecked, http_scope, http_receive),
            "guard": call(guarded, http_scope, http_receive),
        },
        "websocket": {
            "bare": call(bare, ws_scope, ws_receive),
            "layer": call(layer, ws_scope, ws_receive),
            "observe": call(observe, ws_scope, ws_receive),
            "least": call(least, ws_scope, ws_receive),
            "unchecked": call(unchecked, ws_scope, ws_receive),
            "guard": call(guarded, ws_scope, ws_receive),
        },
    }


#: Messages per echo connection: enough that the per-message costs outweigh the handshake's.
ECHO_MESSAGES = 100


def _echo_arms() -> dict[str, Arm]:
    from asgi_ws_deny import MessageLimits, WebSocketGuard

    accept: dict[str, Any] = {"type": "websocket.accept", "subprotocol": None, "headers": []}

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(accept)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "bytes": None, "text": message["text"]})

    guarded = WebSocketGuard(echo)
    limits = MessageLimits(max_size=1 << 20, max_messages=1_000_000, max_bytes=1 << 30)
    limited = WebSocketGuard(echo, message_limits=limits)
    script = [
        {"type": "websocket.connect"},
        *[{"type": "websocket.receive", "bytes": None, "text": '{"op":"ping"}'}] * ECHO_MESSAGES,
        {"type": "websocket.disconnect", "code": 1000, "reason": ""},
    ]

    def call(app: Any) -> Arm:
        async def arm() -> None:
            messages = iter(script)

            async def receive() -> Any:
                return next(messages)

            await app(dict(SCOPE), receive, _noop_send)

        return arm

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        # The guard without limits, its receive wrapped in one coroutine more: the floor under
        # any receive that looks at each message, as counting must.
        async def passed_on() -> Any:
            return await receive()

        await guarded(scope, passed_on, send)

    return {
        "bare": call(echo),
        "guard": call(guarded),
        "wrapped": call(wrapped),
        "limits": call(limited),
    }


async def _time(arm: Arm, number: int) -> float:
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter_ns()
        for _ in range(number):
            await arm()
        return (time.perf_counter_ns() - started) / number
    finally:
        gc.enable()


async def _time_call(arm: Call, number: int) -> float:
    """`_time` for a plain call: no coroutine around it, so none is counted in its figure."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter_ns()
        for _ in range(number):
            arm()
        return (time.perf_counter_ns() - started) / number
    finally:
        gc.enable()


Timer = Callable[[Any, int], Awaitable[float]]


async def _calibrate(arm: Any, target_s: float, timer: Timer) -> int:
    """How many calls make a batch of about ``target_s`` seconds."""
    number = 100
    while True:
        per_call = await timer(arm, number)
        if per_call * number >= target_s * 1e9 / 4 or number >= 1_000_000:
            return max(100, int(target_s * 1e9 / per_call))
        number *= 4


async def _compare(
    arms: Mapping[str, Any],
    baseline: str,
    repeats: int,
    target_s: float,
    timer: Timer = _time,
) -> Comparison:
    names = list(arms)
    for arm in arms.values():  # warm up: Starlette builds its middleware stack on the first call
        await timer(arm, 200)
    number = min([await _calibrate(arms[name], target_s, timer) for name in names])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(await timer(arms[name], number))
    return Comparison(baseline, samples)


def run_in_process(
    *, repeats: int = 15, target_s: float = 0.02, guard: bool = True
) -> dict[str, Comparison]:
    """Every in-process comparison, by name: ``denial_noop``, ``denial_wire``, ``validation``
    and, when the guard exists and ``guard`` is true, ``guard_http``, ``guard_websocket`` and
    ``guard_echo``."""
    _check_arms_agree(_WireSend)
    _check_validation_arms()

    async def main() -> dict[str, Comparison]:
        results = {
            "denial_noop": await _compare(_denial_arms(_noop_send), "raw", repeats, target_s),
            "denial_wire": await _compare(_denial_arms(_WireSend()), "raw", repeats, target_s),
            "validation": await _compare(
                _validation_arms(), "denial", repeats, target_s, _time_call
            ),
        }
        if guard:
            for kind, arms in _guard_arms().items():
                results[f"guard_{kind}"] = await _compare(arms, "bare", repeats, target_s)
            results["guard_echo"] = await _compare(_echo_arms(), "bare", repeats, target_s)
        return results

    return asyncio.run(main())


def run_echo(*, repeats: int = 15, target_s: float = 0.02) -> Comparison:
    """The echo comparison alone (``python -m bench.in_process``)."""
    return asyncio.run(_compare(_echo_arms(), "bare", repeats, target_s))


def echo_figures(comparison: Comparison) -> dict[str, Any]:
    """The echo comparison's figures: ns per connection, and added ns per message."""
    per_message = ECHO_MESSAGES
    return {
        "messages": per_message,
        "bare_ns": round(comparison.median_ns("bare")),
        "guard_ns": round(comparison.median_ns("guard")),
        "limits_ns": round(comparison.median_ns("limits")),
        "guard_added_ns_per_message": round(comparison.added_ns("guard") / per_message, 1),
        "limits_added_ns_per_message": round(
            (comparison.added_ns("limits") - comparison.added_ns("guard")) / per_message, 1
        ),
        "counting_added_ns_per_message": round(
            (comparison.added_ns("limits") - comparison.added_ns("wrapped")) / per_message, 1
        ),
        "guard_cost_vs_bare": round(comparison.ratio("guard"), 4),
        "limits_cost_vs_bare": round(comparison.ratio("limits"), 4),
    }


if __name__ == "__main__":
    import json
    import sys

    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    print(json.dumps(echo_figures(run_echo(repeats=repeats)), indent=2))

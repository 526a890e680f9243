"""Group 7, the framework example apps (helper contract too).

Each example app of ``examples/frameworks/`` runs unchanged, as its docstring says, on a server
of its own (`conformance.runner`): one case per way it refuses. Without ``x-user: alice`` the
denial (403 where the extension is not listed), closed, never an upgrade, nothing in the log;
with it, alice is greeted and the connection closed with 1000.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.cases.case import Case
from conformance.cases.probe import (
    CLOSE_WAIT,
    Observation,
    Opened,
    Probe,
    base_cell,
    close_reading,
    crash_or,
    opened_detail,
    show,
    upgrade_headers,
)

__all__ = ("CASES", "GROUP", "TITLE", "framework_denial")

GROUP = "7"
TITLE = "The framework example apps"


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


def framework_denial(
    probe: Probe,
    path: str,
    *,
    content_type: bytes = JSON_TYPE,
    body: bytes = UNKNOWN_USER,
    challenge: bytes = CHALLENGE,
    alice: tuple[str, list[tuple[str, str]]] | None = None,
) -> Observation:
    """The example's promise on ``path``: without alice's credential the 401 (or 403 where the
    extension is not listed), closed, never an upgrade; alice greeted; nothing in the log.

    ``alice`` is the path and headers that present her credential (``x-user: alice`` on
    ``path`` by default)."""
    response = probe.request(path, wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    if cell == "crash":
        return Observation(cell, False, None, f"{show(response)}; log: {probe.log()[-800:]}")
    alice_path, alice_headers = alice or (path, [ALICE])
    opened = probe.open(alice_path, headers=alice_headers)
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
                "www-authenticate": challenge,
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
    greeting = _greeting(opened)
    if greeting:
        extras.append(f"alice: {greeting}")
        problems.append(f"alice was not greeted and closed with 1000: {opened_detail(opened)}")
    if extras:
        cell += ", " + ", ".join(extras)
    conforms = cell == f"{want} {label}"
    detail = "; ".join([*problems, f"listed={listed}", show(response)])
    return Observation(cell, conforms, response.status, detail)


def _denies(
    path: str, *, content_type: bytes = JSON_TYPE, body: bytes = UNKNOWN_USER
) -> Callable[[Probe], Observation]:
    def run(probe: Probe) -> Observation:
        return framework_denial(probe, path, content_type=content_type, body=body)

    run.__name__ = f"run_framework_denial_{path.strip('/')}"
    return run


def run_starlette_late(probe: Probe) -> Observation:
    opened = probe.open("/late", headers=[ALICE])
    cell, conforms = close_reading(probe, opened, 4403, b"too late to deny")
    if cell == "crash":
        return Observation(cell, False, None, f"{opened_detail(opened)}; log: {probe.log()[-800:]}")
    probe.settle(events=False)
    logged, lines = _log_problems(probe.log())
    if logged:
        cell += ", " + ", ".join(logged)
    detail = "; ".join([*lines[:3], opened_detail(opened)])
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


# Each example app of examples/frameworks/ unchanged, on a server of its own.
STARLETTE_DENY = _framework_case(
    "7.1",
    "starlette-deny",
    "starlette",
    "deny() with a JSONResponse",
    "/ws: deny(websocket, JSONResponse(..., 401, headers)) before accept. "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/starlette (deny)",
    _denies("/ws"),
)


STARLETTE_HTTP_EXCEPTION = _framework_case(
    "7.2",
    "starlette-http-exception",
    "starlette",
    "HTTPException before accept",
    "/raise: HTTPException(401, 'unknown user', headers) before accept, through "
    "add_exception_handlers. "
    + FRAMEWORK_PROMISE.format(what="the text/plain body 'unknown user'"),
    "asgi_ws_deny docs: frameworks/starlette (add_exception_handlers)",
    _denies("/raise", content_type=b"text/plain; charset=utf-8", body=b"unknown user"),
)


STARLETTE_DENIED = _framework_case(
    "7.3",
    "starlette-denied",
    "starlette",
    "Denied before accept",
    "/denied: raise Denied(Denial.json(401, ...)) before accept. "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/starlette (add_exception_handlers)",
    _denies("/denied"),
)


STARLETTE_LATE = _framework_case(
    "7.4",
    "starlette-late",
    "starlette",
    "HTTPException after accept",
    "/late: accept, then HTTPException(403, 'too late to deny'): a close with 4403 and "
    "that reason; nothing in the server log.",
    "asgi_ws_deny docs: frameworks/starlette (after accept); RFC 6455 section 7.4.2",
    run_starlette_late,
)


FASTAPI_CHECK = _framework_case(
    "7.5",
    "fastapi-check",
    "fastapi",
    "check_handshake dependency",
    "/ws: the route dependency check_handshake(check) refuses before the endpoint runs. "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/fastapi (check_handshake)",
    _denies("/ws"),
)


FASTAPI_HTTP_EXCEPTION = _framework_case(
    "7.6",
    "fastapi-http-exception",
    "fastapi",
    "HTTPException from a dependency",
    "/raise: an ordinary dependency raises HTTPException(401, 'unknown user', headers). "
    + FRAMEWORK_PROMISE.format(what='the JSON body {"detail":"unknown user"}'),
    "asgi_ws_deny docs: frameworks/fastapi (add_exception_handlers)",
    _denies("/raise", body=b'{"detail":"unknown user"}'),
)


CHANNELS_DENY = _framework_case(
    "7.7",
    "channels-deny",
    "channels",
    "self.deny() in connect()",
    "/ws: a DenialMixin consumer awaits self.deny(Denial) in connect(). "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/channels (DenialMixin)",
    _denies("/ws"),
)


CHANNELS_DENIED = _framework_case(
    "7.8",
    "channels-denied",
    "channels",
    "Denied in connect()",
    "/denied: the consumer raises Denied(Denial) in connect(). "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/channels (DenialMixin)",
    _denies("/denied"),
)


QUART_DENIED = _framework_case(
    "7.9",
    "quart-denied",
    "quart",
    "Denied and the error handler",
    "/ws: the view raises Denied before accept; add_error_handler answers (one_body around "
    "the app, the scheme shim of the example for daphne). "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/quart (add_error_handler, one_body)",
    _denies("/ws"),
)


QUART_RETURNED = _framework_case(
    "7.10",
    "quart-returned",
    "quart",
    "denial_response() returned",
    "/returned: the view returns denial_response(Denial) before accept. "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/quart (denial_response)",
    _denies("/returned"),
)


FALCON_DENIED = _framework_case(
    "7.11",
    "falcon-denied",
    "falcon",
    "Denied in on_websocket",
    "/ws: on_websocket raises Denied before accept; guard(app, check) lets it out of Falcon. "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/falcon (guard)",
    _denies("/ws"),
)


FALCON_CHECKED = _framework_case(
    "7.12",
    "falcon-checked",
    "falcon",
    "guard check",
    "/checked: the check of guard(app, check) refuses before Falcon sees the connection. "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/falcon (guard)",
    _denies("/checked"),
)


LITESTAR_DENY = _framework_case(
    "7.13",
    "litestar-deny",
    "litestar",
    "deny() in the handler",
    "/ws: the handler awaits deny(socket, Denial) before accept. "
    + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/litestar (deny)",
    _denies("/ws"),
)


LITESTAR_CHECKED = _framework_case(
    "7.14",
    "litestar-checked",
    "litestar",
    "WebSocketGuard route middleware",
    "/checked: DefineMiddleware(WebSocketGuard, check=...) on the route refuses before the "
    "handler runs. " + FRAMEWORK_PROMISE.format(what="the JSON body"),
    "asgi_ws_deny docs: frameworks/litestar (WebSocketGuard)",
    _denies("/checked"),
)


CASES: tuple[Case, ...] = (
    STARLETTE_DENY,
    STARLETTE_HTTP_EXCEPTION,
    STARLETTE_DENIED,
    STARLETTE_LATE,
    FASTAPI_CHECK,
    FASTAPI_HTTP_EXCEPTION,
    CHANNELS_DENY,
    CHANNELS_DENIED,
    QUART_DENIED,
    QUART_RETURNED,
    FALCON_DENIED,
    FALCON_CHECKED,
    LITESTAR_DENY,
    LITESTAR_CHECKED,
)

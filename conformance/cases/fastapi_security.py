"""Group 7 cases for FastAPI's own security classes on a WebSocket, on every server.

Each case runs ``examples/frameworks/fastapi_security_app.py`` unchanged. A route takes its
credential through one of ``HTTPBearer``, ``APIKeyHeader``, ``APIKeyQuery`` and
``OAuth2PasswordBearer``; without it FastAPI raises ``HTTPException(401, "Not authenticated")``
with its challenge, and `asgi_ws_deny.contrib.starlette.add_exception_handlers` answers that as
a denial. The promise: where the extension is listed, 401 with FastAPI's challenge, its JSON
body ``{"detail":"Not authenticated"}`` and its content-type and content-length; where it is not
(daphne, gunicorn), the fallback 403 without a body, where FastAPI alone would send a response
start the server cannot send (daphne 4.2 then answers nothing); closed, never an upgrade, nothing
in the server log; and with alice's credential, 101 (200 over HTTP/2), ``hello alice`` and a
close with 1000.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.cases.case import Case
from conformance.cases.frameworks import GROUP, SPURIOUS_LOG_LINES, TITLE
from conformance.cases.probe import (
    CLOSE_WAIT,
    Observation,
    Opened,
    Probe,
    base_cell,
    crash_or,
    show,
    upgrade_headers,
)

__all__ = ("APP", "CASES", "GROUP", "TITLE")

#: The example the cases run, as a server imports it.
APP = "examples.frameworks.fastapi_security_app:app"
NOT_AUTHENTICATED = b'{"detail":"Not authenticated"}'
REFERENCE = (
    "FastAPI security (fastapi/security/*.py: HTTPException 401 'Not authenticated'); "
    "asgi_ws_deny docs: frameworks/fastapi (add_exception_handlers); "
    "examples/frameworks/fastapi_security_app.py"
)


def _log_problems(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if ("ERROR" in line or "Error" in line or "Traceback" in line)
        and not any(spurious in line for spurious in SPURIOUS_LOG_LINES)
    ]


def _greeted(opened: Opened) -> str:
    """What differs from alice's greeting ("hello alice", then a close with 1000), or ""."""
    if not opened.accepted:
        return base_cell(opened.response)
    if opened.texts[:1] != [b"hello alice"]:
        return "no hello"
    if opened.close is None or opened.close[0] != 1000:
        return "no close 1000"
    return ""


def _security_run(
    path: str, challenge: bytes, credential: tuple[str, str] | None, query: str = ""
) -> Callable[[Probe], Observation]:
    def run(probe: Probe) -> Observation:
        response = probe.request(path, wait_close=CLOSE_WAIT)
        cell = crash_or(probe, response)
        if cell == "crash":
            return Observation(cell, False, None, f"{show(response)}; log: {probe.log()[-800:]}")
        headers = [credential] if credential is not None else []
        alice = probe.open(path + query, headers=headers)
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
                    "content-type": b"application/json",
                    "content-length": str(len(NOT_AUTHENTICATED)).encode(),
                }
                for name, value in expected.items():
                    if response.header(name) != [value]:
                        problems.append(f"{name}: got {response.header(name)!r}, want {value!r}")
                if response.body != NOT_AUTHENTICATED:
                    problems.append(f"body {response.body!r}")
        if response.status == want:
            cell = f"{want} {label}" if not problems else f"{want} changed"
        extras = []
        if upgrade_headers(response):
            extras.append("+upgrade")
            problems.append(f"upgrade headers on a denial: {upgrade_headers(response)}")
        if response.status is not None and not response.closed:
            extras.append("open")
            problems.append("the connection stayed open after the denial")
        logged = _log_problems(probe.log())
        if logged:
            extras.append("traceback" if "Traceback" in probe.log() else "error logged")
            problems += logged[:3]
        greeting = _greeted(alice)
        if greeting:
            extras.append(f"alice: {greeting}")
            problems.append(f"alice was not greeted and closed with 1000: {show(alice.response)}")
        if extras:
            cell += ", " + ", ".join(extras)
        conforms = cell == f"{want} {label}"
        detail = "; ".join([*problems, f"listed={listed}", show(response)])
        return Observation(cell, conforms, response.status, detail)

    run.__name__ = f"run_fastapi_security_{path.strip('/').replace('-', '_')}"
    return run


def _case(case_id: str, slug: str, scheme: str, run: Callable[[Probe], Observation]) -> Case:
    return Case(
        case_id,
        slug,
        f"FastAPI: {scheme} without a credential",
        f"A WebSocket route depending on FastAPI's {scheme}, with add_exception_handlers: "
        "without the credential, 401 with FastAPI's challenge and its JSON body "
        "{'detail': 'Not authenticated'} (403 with no body where the extension is not listed); "
        "closed; never an upgrade; nothing in the server log. With alice's credential: 101 "
        "(200 over HTTP/2), 'hello alice', a close with 1000.",
        REFERENCE,
        "MUST",
        run,
        contract=True,
        app=APP,
        requires=("fastapi",),
    )


BEARER = ("Authorization", "Bearer alice-token")

CASES: tuple[Case, ...] = (
    _case("7.15", "fastapi-http-bearer", "HTTPBearer", _security_run("/bearer", b"Bearer", BEARER)),
    _case(
        "7.16",
        "fastapi-api-key-header",
        "APIKeyHeader",
        _security_run("/api-key-header", b"APIKey", ("x-api-key", "alice-key")),
    ),
    _case(
        "7.17",
        "fastapi-api-key-query",
        "APIKeyQuery",
        _security_run("/api-key-query", b"APIKey", None, query="?api_key=alice-key"),
    ),
    _case(
        "7.18",
        "fastapi-oauth2-bearer",
        "OAuth2PasswordBearer",
        _security_run("/oauth2", b"Bearer", BEARER),
    ),
)

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
from conformance.cases.frameworks import GROUP, TITLE, framework_denial
from conformance.cases.probe import (
    Observation,
    Probe,
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


def _security_run(
    path: str, challenge: bytes, credential: tuple[str, str] | None, query: str = ""
) -> Callable[[Probe], Observation]:
    def run(probe: Probe) -> Observation:
        headers = [credential] if credential is not None else []
        return framework_denial(
            probe,
            path,
            body=NOT_AUTHENTICATED,
            challenge=challenge,
            alice=(path + query, headers),
        )

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

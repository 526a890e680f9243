"""FastAPI's own security classes on a WebSocket: the 401 where the extension is listed, the
fallback 403 where it is not, through add_exception_handlers; in memory and on real servers
through the conformance cases of ``conformance/cases/fastapi_security.py``."""

from __future__ import annotations

import pytest

from asgi_ws_deny.testing import handshake
from conformance.cases.fastapi_security import CASES as FASTAPI_SECURITY_CASES

# (path, the credential as a header, or in the query string, the challenge)
ROUTES = [
    pytest.param("/bearer", {"authorization": "Bearer alice-token"}, "", b"Bearer", id="bearer"),
    pytest.param("/api-key-header", {"x-api-key": "alice-key"}, "", b"APIKey", id="header-key"),
    pytest.param("/api-key-query", {}, "?api_key=alice-key", b"APIKey", id="query-key"),
    pytest.param("/oauth2", {"authorization": "Bearer alice-token"}, "", b"Bearer", id="oauth2"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "headers", "query", "challenge"), ROUTES)
async def test_each_scheme_denies_without_its_credential_on_every_server(
    path: str, headers: dict[str, str], query: str, challenge: bytes
) -> None:
    from examples.frameworks.fastapi_security_app import app

    listed = await handshake(app, path)
    assert (listed.status, listed.body) == (401, b'{"detail":"Not authenticated"}')
    assert listed.header("www-authenticate") == challenge
    assert listed.header("content-type") == b"application/json"
    fallback = await handshake(app, path, extension=False)
    assert (fallback.status, fallback.body) == (403, b"")
    wrong = {name: value.replace("alice", "mallory") for name, value in headers.items()}
    refused = await handshake(app, path + query.replace("alice", "mallory"), headers=wrong)
    assert (refused.status, refused.body) == (401, b'{"detail":"Invalid credentials"}')
    alice = await handshake(app, path + query, headers=headers)
    assert (alice.accepted, alice.data, alice.close_code) == (True, ("hello alice",), 1000)


#: Two servers with the extension, two without (their cells are the fallback).
VARIANTS = ["uvicorn-sansio", "hypercorn-trio", "daphne", "gunicorn"]
FALLBACK = {"daphne", "gunicorn"}


@pytest.mark.servers
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_matrix_cases_conform(variant: str) -> None:
    from conformance.runner import ServerHandle
    from conformance.servers import resolve_variant

    handle = ServerHandle(resolve_variant(variant))
    try:
        results = {case.id: handle.run(case) for case in FASTAPI_SECURITY_CASES}
    finally:
        handle.close()
    want = "403 fallback" if variant in FALLBACK else "401 ok"
    cells = {case_id: result.observation.cell for case_id, result in results.items()}
    assert cells == dict.fromkeys(cells, want), {
        case_id: result.observation.detail for case_id, result in results.items()
    }
    assert all(result.observation.conforms for result in results.values())

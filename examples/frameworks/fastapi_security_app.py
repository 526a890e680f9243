"""FastAPI's own security classes on a WebSocket, on every server.

Each route takes its credential through one of FastAPI's security dependencies, unchanged:

- ``/bearer``: ``HTTPBearer`` (``Authorization: Bearer alice-token``);
- ``/api-key-header``: ``APIKeyHeader`` (``x-api-key: alice-key``);
- ``/api-key-query``: ``APIKeyQuery`` (``?api_key=alice-key``);
- ``/oauth2``: ``OAuth2PasswordBearer`` (``Authorization: Bearer alice-token``).

Without the credential FastAPI raises its ``HTTPException(401, "Not authenticated")`` with a
``www-authenticate`` challenge (``Bearer``, or ``APIKey`` for the API keys) before the endpoint
runs. `add_exception_handlers` answers it as a denial: the 401 with FastAPI's own JSON body
where the server lists the denial-response extension (uvicorn, hypercorn), and the fallback 403
where it does not (daphne, gunicorn), where FastAPI alone sends a response start the server
cannot send (daphne then answers nothing until the client gives up). With the
credential of user ``alice`` the endpoint greets her with ``hello alice`` and closes (1000); a
wrong credential is refused with 401 like a missing one.

Run it with ``uvicorn examples.frameworks.fastapi_security_app:app``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, WebSocket
from fastapi.security import (
    APIKeyHeader,
    APIKeyQuery,
    HTTPAuthorizationCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
)

from asgi_ws_deny.contrib.starlette import add_exception_handlers

#: The one user of this example, by the credential each scheme carries.
TOKENS = {"alice-token": "alice"}
API_KEYS = {"alice-key": "alice"}

bearer = HTTPBearer()
api_key_header = APIKeyHeader(name="x-api-key")
api_key_query = APIKeyQuery(name="api_key")
oauth2 = OAuth2PasswordBearer(tokenUrl="/token")


def known(table: dict[str, str], credential: str, challenge: str) -> str:
    """The user of ``credential``; an unknown one is refused as FastAPI refuses a missing one."""
    user = table.get(credential)
    if user is None:
        raise HTTPException(401, "Invalid credentials", headers={"WWW-Authenticate": challenge})
    return user


def bearer_user(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> str:
    return known(TOKENS, credentials.credentials, "Bearer")


def header_key_user(key: Annotated[str, Depends(api_key_header)]) -> str:
    return known(API_KEYS, key, "APIKey")


def query_key_user(key: Annotated[str, Depends(api_key_query)]) -> str:
    return known(API_KEYS, key, "APIKey")


def oauth2_user(token: Annotated[str, Depends(oauth2)]) -> str:
    return known(TOKENS, token, "Bearer")


app = FastAPI()
add_exception_handlers(app)


async def greet(websocket: WebSocket, user: str) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {user}")
    await websocket.close()


@app.websocket("/bearer")
async def with_bearer(websocket: WebSocket, user: Annotated[str, Depends(bearer_user)]) -> None:
    await greet(websocket, user)


@app.websocket("/api-key-header")
async def with_header_key(
    websocket: WebSocket, user: Annotated[str, Depends(header_key_user)]
) -> None:
    await greet(websocket, user)


@app.websocket("/api-key-query")
async def with_query_key(
    websocket: WebSocket, user: Annotated[str, Depends(query_key_user)]
) -> None:
    await greet(websocket, user)


@app.websocket("/oauth2")
async def with_oauth2(websocket: WebSocket, user: Annotated[str, Depends(oauth2_user)]) -> None:
    await greet(websocket, user)

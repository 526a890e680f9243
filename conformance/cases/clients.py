"""Group 6, real clients: what the ``websockets`` asyncio client (``InvalidStatus.response``)
and ``wsproto`` (``RejectConnection``, ``RejectData``) read of a ``deny()``.
"""

from __future__ import annotations

import asyncio
import socket
import time

from conformance import apps
from conformance.cases.case import H1, Case
from conformance.cases.probe import (
    HANG,
    Observation,
    Probe,
    died,
)

__all__ = ("CASES", "GROUP", "TITLE")

GROUP = "6"
TITLE = "Real clients"


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
    if observation.status is None and died(probe, 0.5):
        return Observation("crash", False, None, observation.detail)
    return observation


WEBSOCKETS = Case(
    "6.1",
    "websockets",
    "websockets client",
    "The websockets asyncio client's InvalidStatus.response: status and body of a deny().",
    "websockets docs: InvalidStatus.response",
    "INFO",
    run_websockets_client,
    default="401 body ok",
    protocols=H1,
)


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
        cell = "crash" if died(probe, 0.5) else (error.split(":")[0] or "no response")
        return Observation(cell, False, None, detail)
    if status == 101:
        return Observation("101!", False, 101, detail)
    cell = f"{status} {'body ok' if ok and body else 'ok' if ok else 'body?'}"
    return Observation(cell, ok, status, detail)


WSPROTO = Case(
    "6.2",
    "wsproto",
    "wsproto client",
    "wsproto's RejectConnection and RejectData events for a deny().",
    "wsproto docs: RejectConnection, RejectData",
    "INFO",
    run_wsproto_client,
    default="401 body ok",
    protocols=H1,
)


CASES: tuple[Case, ...] = (
    WEBSOCKETS,
    WSPROTO,
)

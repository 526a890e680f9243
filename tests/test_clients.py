"""What each client library observes of a refused handshake, and the page that says so.

Every client of `CLIENTS` connects to ``tests.client_apps:app`` on real servers on 127.0.0.1:
the denial on a server that lists the extension (uvicorn), the fallback close on one that does
not (daphne), and the browser policy's accept-then-close (uvicorn). What it observes becomes one
row of the table in ``docs/clients.md``; the test fails when the page says anything else.
``python -m tests.test_clients`` observes again and rewrites the table and its versions line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from conformance.servers import RunningServer, run_server

ROOT = Path(__file__).parent.parent
PAGE = ROOT / "docs" / "clients.md"
START = "<!-- table: written by python -m tests.test_clients -->"
END = "<!-- end of table -->"
CHROMIUM = Path("/usr/bin/chromium")
CURL = Path("/usr/bin/curl")
APP = "tests.client_apps:app"

#: The columns: (heading, server variant, path).
SITUATIONS = (
    ("`deny()`, the server lists the extension (uvicorn)", "uvicorn-sansio", "/deny"),
    ("`deny()`, the fallback close (daphne)", "daphne", "/deny"),
    ('`browser_policy="always"` (uvicorn)', "uvicorn-sansio", "/browser-policy"),
)

pytestmark = pytest.mark.servers


@dataclass(frozen=True)
class Seen:
    """What one client observed, in words for the table."""

    text: str


# --- The clients -------------------------------------------------------------------------------


def _run(main: Callable[[], Coroutine[Any, Any, Seen]]) -> Seen:
    """Run an asyncio client in a thread of its own: Playwright's sync API holds a running
    event loop in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def _quote(body: bytes) -> str:
    return f"body `{body.decode()}`" if body else "empty body"


def _challenge(headers: Any) -> str:
    return "`www-authenticate`" if headers.get("www-authenticate") else "no `www-authenticate`"


def _closed(code: int | None, reason: str) -> str:
    return f'connects, then close {code} "{reason}"' if reason else f"connects, then close {code}"


def _received_close(closed: Any) -> str:
    """The close frame a ``websockets`` client received, or that it received none."""
    if closed.rcvd is None:
        return "connects, then the connection drops without a close frame"
    return _closed(closed.rcvd.code, closed.rcvd.reason)


def websockets_asyncio(url: str) -> Seen:
    import websockets
    from websockets.asyncio.client import connect

    async def run() -> Seen:
        try:
            async with connect(url, open_timeout=5) as websocket:
                try:
                    await asyncio.wait_for(websocket.recv(), 5)
                except websockets.ConnectionClosed as closed:
                    return Seen(_received_close(closed))
                return Seen("connects and receives a message")
        except websockets.InvalidStatus as error:
            response = error.response
            status, headers = response.status_code, response.headers
            return Seen(
                f"raises `InvalidStatus`: {status}, {_challenge(headers)}, "
                f"{_quote(bytes(response.body or b''))}"
            )

    return _run(run)


def websockets_sync(url: str) -> Seen:
    import websockets
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=5) as websocket:
            try:
                websocket.recv(5)
            except websockets.ConnectionClosed as closed:
                return Seen(_received_close(closed))
            return Seen("connects and receives a message")
    except websockets.InvalidStatus as error:
        response = error.response
        return Seen(
            f"raises `InvalidStatus`: {response.status_code}, {_challenge(response.headers)}, "
            f"{_quote(bytes(response.body or b''))}"
        )


def aiohttp_client(url: str) -> Seen:
    import aiohttp

    async def run() -> Seen:
        async with aiohttp.ClientSession() as session:
            try:
                timeout = aiohttp.ClientWSTimeout(ws_receive=5)
                async with session.ws_connect(url, timeout=timeout) as websocket:
                    message = await websocket.receive()
                    if message.type is aiohttp.WSMsgType.CLOSE:
                        return Seen(_closed(message.data, message.extra or ""))
                    return Seen(f"connects and receives {message.type.name}")
            except aiohttp.WSServerHandshakeError as error:
                headers = error.headers or {}
                return Seen(
                    f"raises `WSServerHandshakeError`: {error.status}, {_challenge(headers)}; "
                    "the error carries no body"
                )

    return _run(run)


def httpx_ws_client(url: str) -> Seen:
    import httpx
    import httpx_ws

    with httpx.Client(timeout=5) as client:
        try:
            with httpx_ws.connect_ws(url, client) as websocket:
                try:
                    websocket.receive_text(timeout=5)
                except httpx_ws.WebSocketDisconnect as closed:
                    return Seen(_closed(closed.code, closed.reason or ""))
                return Seen("connects and receives a message")
        except httpx_ws.WebSocketUpgradeError as error:
            response = error.response
            try:
                body = _quote(response.read())
            except Exception as read_error:
                body = f"reading the body raises `{type(read_error).__name__}`"
            return Seen(
                f"raises `WebSocketUpgradeError`: {response.status_code}, "
                f"{_challenge(response.headers)}; {body}"
            )


#: A page script: open the WebSocket, record each event the script gets, until the close.
BROWSER_SCRIPT = """url => new Promise(resolve => {
    const events = [];
    const socket = new WebSocket(url);
    socket.onopen = () => events.push("open");
    socket.onerror = () => events.push("error");
    socket.onmessage = () => events.push("message");
    socket.onclose = e => {
        events.push(`close ${e.code}` + (e.reason ? ` "${e.reason}"` : "") +
            (e.wasClean ? "" : " (not clean)"));
        resolve(events);
    };
})"""


def chromium(url: str, context: Any) -> Seen:
    page = context.new_page()
    try:
        page.goto(url.replace("ws://", "http://", 1).rsplit("/", 1)[0] + "/")
        events = page.evaluate(BROWSER_SCRIPT, url)
    finally:
        page.close()
    return Seen("script gets " + ", then ".join(f"`{event}`" for event in events))


def curl(url: str) -> Seen:
    # Debian 12's curl (7.88.1) has no ws:// support: the handshake is sent by hand, over http.
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    upgrade = ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13"]
    argv = [str(CURL), "-sS", "-i", "--max-time", "2", "-H", f"Sec-WebSocket-Key: {key}"]
    for header in upgrade:
        argv += ["-H", header]
    result = subprocess.run(
        [*argv, url.replace("ws://", "http://", 1)], capture_output=True, check=False
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status == 101:
        code = int.from_bytes(body[2:4], "big") if body[:1] == b"\x88" else None
        return Seen(
            f"prints `101` and the raw close frame ({code} and its reason); "
            "cannot answer it (no WebSocket support)"
        )
    headers = {
        line.split(b":", 1)[0].strip().lower().decode(): line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")[1:]
        if b":" in line
    }
    return Seen(f"prints {status}, {_challenge(headers)}, {_quote(body)}")


#: The rows: (name in the table, the observer). Chromium's needs the browser as well.
CLIENTS: tuple[tuple[str, Callable[..., Seen]], ...] = (
    ("websockets (asyncio)", websockets_asyncio),
    ("websockets (sync)", websockets_sync),
    ("aiohttp", aiohttp_client),
    ("httpx-ws", httpx_ws_client),
    ("Chromium (headless), a page's script", chromium),
    ("curl, the handshake by hand", curl),
)


# --- Observing and the page --------------------------------------------------------------------


def versions() -> str:
    chromium_version = subprocess.run(
        [str(CHROMIUM), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    curl_version = subprocess.run(
        [str(CURL), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    names = ("websockets", "aiohttp", "httpx-ws", "uvicorn", "daphne")
    packages = ", ".join(f"{name} {metadata.version(name)}" for name in names)
    return f"Measured with {packages}, Chromium {chromium_version} and curl {curl_version}."


@contextlib.contextmanager
def browser_context(directory: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.test_browser import FLAGS

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            directory, executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            yield context
        finally:
            context.close()


def observe(context: Any) -> dict[str, list[Seen]]:
    """Each client's observation in each situation, in the order of `SITUATIONS`."""
    rows: dict[str, list[Seen]] = {name: [] for name, _ in CLIENTS}
    servers: dict[str, RunningServer] = {}
    variants = list(dict.fromkeys(variant for _, variant, _ in SITUATIONS))
    managers = [run_server(variant, APP, app_dir=ROOT) for variant in variants]
    try:
        for variant, manager in zip(variants, managers, strict=True):
            servers[variant] = manager.__enter__()
        for _, variant, path in SITUATIONS:
            server = servers[variant]
            url = f"ws://{server.host}:{server.port}{path}"
            for name, client in CLIENTS:
                seen = client(url, context) if client is chromium else client(url)
                rows[name].append(seen)
    finally:
        for manager in reversed(managers):
            manager.__exit__(None, None, None)
    return rows


def table(rows: dict[str, list[Seen]]) -> list[str]:
    lines = [
        "| client | " + " | ".join(heading for heading, _, _ in SITUATIONS) + " |",
        "|---" * (len(SITUATIONS) + 1) + "|",
    ]
    for name, seen in rows.items():
        lines.append(f"| {name} | " + " | ".join(s.text for s in seen) + " |")
    return lines


def page_table() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(START, 1)[1].split(END, 1)[0]
    return [line for line in section.strip().splitlines() if line.startswith("|")]


def write_page(rows: dict[str, list[Seen]], measured: str) -> None:
    text = PAGE.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    section = "\n".join([measured, "", *table(rows)])
    PAGE.write_text(f"{before}{START}\n{section}\n{END}{after}", encoding="utf-8")


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Seen]]:
    if not CHROMIUM.exists() or not CURL.exists():
        message = "chromium and curl are needed: apt-get install chromium curl"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with browser_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        return observe(context)


def test_the_page_shows_what_each_client_observed(observed: dict[str, list[Seen]]) -> None:
    assert page_table() == table(observed), (
        "docs/clients.md disagrees with what the clients observed; "
        "python -m tests.test_clients rewrites its table"
    )


def test_every_client_sees_the_status_where_it_can(observed: dict[str, list[Seen]]) -> None:
    # What the table must show whatever the wording: the denial's status reaches every client
    # but the browser's script, which gets 1006; the browser policy's code reaches all.
    for name, (denial, fallback, policy) in observed.items():
        if name.startswith("Chromium"):
            assert "close 1006" in denial.text
            assert "close 1006" in fallback.text
            assert '4401 "Unauthorized"' in policy.text
        else:
            assert re.search(r"\b401\b", denial.text), (name, denial)
            assert re.search(r"\b403\b", fallback.text), (name, fallback)
            assert "4401" in policy.text, (name, policy)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as profile, browser_context(Path(profile)) as context:
        write_page(observe(context), versions())
    print(f"wrote {PAGE.relative_to(ROOT)}")

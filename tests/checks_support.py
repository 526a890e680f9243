"""Shared by the tests of ``asgi_ws_deny.checks``: a handshake view builder, a recording endpoint,
and a real ``redis-server`` on 127.0.0.1, started per test module and stopped by its pid."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from asgi_ws_deny import Handshake
from tests.helpers import websocket_scope

HOST = "127.0.0.1"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def view(
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    *,
    subprotocols: Iterable[str] = (),
    scheme: str = "ws",
    query: str = "",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
) -> Handshake:
    """A `Handshake` over a websocket scope with exactly these request headers."""
    raw = [
        (
            name.encode("latin-1") if isinstance(name, str) else name,
            value.encode("latin-1") if isinstance(value, str) else value,
        )
        for name, value in headers
    ]
    return Handshake(
        websocket_scope(
            headers=raw,
            subprotocols=list(subprotocols),
            scheme=scheme,
            query_string=query.encode("latin-1"),
            client=client,
        )
    )


class Endpoint:
    """An app that accepts and closes, and counts the handshakes that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        assert (await receive())["type"] == "websocket.connect"
        offered = scope.get("subprotocols") or []
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        await send({"type": "websocket.send", "bytes": None, "text": ",".join(offered) or "ok"})
        await send({"type": "websocket.close", "code": 1000, "reason": ""})


# --- A real Redis ---------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A running ``redis-server``: where it listens and its pid."""

    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


def free_port() -> int:
    """A TCP port the OS reports free on 127.0.0.1 right now (bind port 0, read it, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)


@contextlib.contextmanager
def redis_server(attempts: int = 3, ready_timeout: float = 10.0) -> Iterator[RedisServer]:
    """Start ``redis-server`` on a free loopback port, without persistence, in a temp dir.

    ``--port 0`` would not listen at all, so the port is picked by binding port 0 and releasing
    it; if another process takes it in between, the server exits and the start is retried on a
    new port. A missing ``redis-server`` fails under CI (``.ci/run`` installs it) and skips,
    visibly, elsewhere.
    """
    if not Path(REDIS_SERVER).exists():
        message = "redis-server is missing: apt-get install redis-server"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with tempfile.TemporaryDirectory(prefix="asgi-ws-deny-redis-") as directory:
        log_path = Path(directory) / "redis.log"
        for attempt in range(attempts):
            port = free_port()
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        REDIS_SERVER,
                        "--bind",
                        HOST,
                        "--port",
                        str(port),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        directory,
                        "--daemonize",
                        "no",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + ready_timeout
            while process.poll() is None and not _ping(port):
                if time.monotonic() > deadline:
                    _stop(process)
                    raise RuntimeError(f"redis-server did not answer: {log_path.read_text()}")
                time.sleep(0.01)
            if process.poll() is None:
                break
            output = log_path.read_text()
            if attempt + 1 == attempts or "in use" not in output:
                raise RuntimeError(f"redis-server exited: {output}")
        try:
            yield RedisServer(port, process.pid)
        finally:
            _stop(process)


# --- A Redis that never answers -----------------------------------------------------------------


class HungRedis:
    """A TCP server on 127.0.0.1 that accepts every connection, reads, and never answers.

    What a Redis stuck on a long command, or a half-dead host behind a load balancer, looks
    like to a client. ``connections`` counts the accepted connections, ``requests`` the reads
    that brought bytes; ``asked`` is set once the first request has arrived.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((HOST, 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self.requests = 0
        self.asked = threading.Event()
        self._accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            with self._lock:
                self.connections += 1
                self._accepted.append(connection)
            reader = threading.Thread(target=self._read, args=(connection,), daemon=True)
            reader.start()

    def _read(self, connection: socket.socket) -> None:
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.requests += 1
            self.asked.set()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        with self._lock:
            for connection in self._accepted:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()


@contextlib.contextmanager
def hung_redis() -> Iterator[HungRedis]:
    server = HungRedis()
    try:
        yield server
    finally:
        server.stop()

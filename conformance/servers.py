"""Start an ASGI server for real on 127.0.0.1, wait until its port answers, stop it by its pid.

Theory of operation
-------------------
A `Variant` is a server and the options that select one of its implementations (uvicorn's three
WebSocket stacks, hypercorn's two event loops, hypercorn over HTTP/2, ...), written as a command
template with ``{python}``, ``{app}``, ``{app_dir}``, ``{host}`` and ``{port}`` placeholders (and
``{certfile}`` / ``{keyfile}`` for a server that needs TLS, as QUIC does: `run_server` then writes a
self-signed certificate for the start, `conformance.tls`). Any other server joins the matrix
through `Variant.from_command`.

`run_server` picks a free port (the OS chooses it: bind port 0, read it back, release it), starts
the command in a session of its own with stdout and stderr in one log file, and is ready as soon
as a TCP connection to the port succeeds; it polls with a deadline and never sleeps blindly. A
server that exits first is retried on a new port when the port was taken in between (another
process may bind it after we release it), and otherwise raises `ServerStartError` with its log.

Stopping sends SIGTERM to the server's own pid, waits a bounded time, then SIGKILLs whatever is
left in its process group (gunicorn and granian fork workers) and waits until the group is empty,
so no child and no port outlives the ``with`` block.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

__all__ = (
    "HOST",
    "VARIANTS",
    "EventLoop",
    "Protocol",
    "RunningServer",
    "ServerStartError",
    "Variant",
    "free_port",
    "port_answers",
    "resolve_variant",
    "run_server",
)

#: Servers are only ever bound to, and reached on, the loopback address.
HOST = "127.0.0.1"

#: How the client speaks to a variant: an HTTP/1.1 Upgrade, or an extended CONNECT over HTTP/2
#: (RFC 8441) or HTTP/3 (RFC 9220, see conformance/h3.py).
Protocol = Literal["http/1.1", "h2", "h3"]
#: The event loop a variant runs its applications on.
EventLoop = Literal["asyncio", "trio"]

_PORT_TAKEN = re.compile(r"address already in use|errno 98|eaddrinuse|os error 98", re.IGNORECASE)


class ServerStartError(RuntimeError):
    """The server exited, or its port did not answer, before the start deadline."""

    def __init__(self, variant: str, reason: str, log: str) -> None:
        super().__init__(f"{variant}: {reason}")
        self.variant = variant
        self.reason = reason
        self.log = log


@dataclass(frozen=True)
class Variant:
    """One column of the matrix: a server command line and the protocol to reach it with.

    ``command`` items are formatted with ``{python}`` (this interpreter), ``{app}`` ("module:attr"),
    ``{app_dir}``, ``{host}`` and ``{port}``. ``requires`` names the distributions that must be
    installed; ``server`` is the one whose version the report shows; ``event_loop`` is the loop
    the applications run on (cases whose application needs asyncio are ``n/a`` under trio).
    """

    name: str
    command: tuple[str, ...]
    protocol: Protocol = "http/1.1"
    server: str | None = None
    requires: tuple[str, ...] = ()
    description: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    event_loop: EventLoop = "asyncio"

    @classmethod
    def from_command(
        cls, name: str, command: str | Sequence[str], *, protocol: Protocol = "http/1.1"
    ) -> Variant:
        """A custom variant from a shell-like template such as ``"srv {app} -b {host}:{port}"``."""
        argv = tuple(shlex.split(command)) if isinstance(command, str) else tuple(command)
        if not argv:
            raise ValueError(f"variant {name!r}: empty command")
        text = " ".join(argv)
        for needed in ("{app}", "{port}"):
            if needed not in text:
                raise ValueError(f"variant {name!r}: command {text!r} has no {needed} placeholder")
        return cls(name=name, command=argv, protocol=protocol, description=f"custom: {text}")

    @classmethod
    def parse(cls, spec: str) -> Variant:
        """A custom variant from ``"name=command"`` (the ``--server`` option's syntax)."""
        name, sep, command = spec.partition("=")
        name = name.strip()
        if not sep or not name or not command.strip():
            raise ValueError(f"expected 'name=command {{app}} ... {{port}}', got {spec!r}")
        return cls.from_command(name, command)

    def missing(self) -> list[str]:
        """The required distributions that are not installed in this interpreter."""
        absent = []
        for dist in self.requires:
            try:
                metadata.version(dist)
            except metadata.PackageNotFoundError:
                absent.append(dist)
        return absent

    def version(self) -> str | None:
        """The installed version of the server's distribution, or None for a custom variant."""
        if self.server is None:
            return None
        try:
            return metadata.version(self.server)
        except metadata.PackageNotFoundError:
            return None

    @property
    def tls(self) -> bool:
        """Whether the command takes a certificate (``{certfile}``): QUIC, for HTTP/3."""
        return any("{certfile}" in item for item in self.command)

    def argv(
        self,
        *,
        app: str,
        app_dir: str,
        host: str,
        port: int,
        certificate: tuple[Path, Path] | None = None,
    ) -> list[str]:
        """The command line for one start; ``certificate`` is (certfile, keyfile) for TLS."""
        values = {
            "python": sys.executable,
            "app": app,
            "app_dir": app_dir,
            "host": host,
            "port": str(port),
        }
        if certificate is not None:
            values["certfile"], values["keyfile"] = (str(path) for path in certificate)
        return [item.format_map(values) for item in self.command]


def _module(name: str, *args: str) -> tuple[str, ...]:
    return ("{python}", "-m", name, *args)


_UVICORN = _module("uvicorn", "--host", "{host}", "--port", "{port}", "--app-dir", "{app_dir}")
# --workers 0 serves in the started process itself rather than in one spawned worker, which
# starts and stops faster and behaves the same on the wire.
_HYPERCORN = _module("hypercorn", "--bind", "{host}:{port}", "--workers", "0")
# Anycorn, the AnyIO fork of Hypercorn, keeps its command line.
_ANYCORN = _module("anycorn", "--bind", "{host}:{port}", "--workers", "0")
# HTTP/3: QUIC on the UDP port of the same number as the TCP (TLS) one, which the launcher waits
# for; both need the certificate `run_server` writes for the start.
_QUIC = ("--quic-bind", "{host}:{port}", "--certfile", "{certfile}", "--keyfile", "{keyfile}")
_RFC_9220 = "HTTP/3 over QUIC with RFC 9220 extended CONNECT"

#: The server variants of the matrix, by name.
VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            "uvicorn-sansio",
            (*_UVICORN, "--ws", "websockets-sansio", "{app}"),
            server="uvicorn",
            requires=("uvicorn", "websockets"),
            description="uvicorn --ws websockets-sansio",
        ),
        Variant(
            "uvicorn-legacy",
            (*_UVICORN, "--ws", "websockets", "{app}"),
            server="uvicorn",
            requires=("uvicorn", "websockets"),
            description="uvicorn --ws websockets (the legacy websockets implementation)",
        ),
        Variant(
            "uvicorn-wsproto",
            (*_UVICORN, "--ws", "wsproto", "{app}"),
            server="uvicorn",
            requires=("uvicorn", "wsproto"),
            description="uvicorn --ws wsproto",
        ),
        Variant(
            "hypercorn-asyncio",
            (*_HYPERCORN, "-k", "asyncio", "{app}"),
            server="hypercorn",
            requires=("hypercorn",),
            description="hypercorn -k asyncio, HTTP/1.1",
        ),
        Variant(
            "hypercorn-trio",
            (*_HYPERCORN, "-k", "trio", "{app}"),
            server="hypercorn",
            requires=("hypercorn", "trio"),
            description="hypercorn -k trio, HTTP/1.1",
            event_loop="trio",
        ),
        Variant(
            "hypercorn-h2",
            (*_HYPERCORN, "-k", "asyncio", "{app}"),
            protocol="h2",
            server="hypercorn",
            requires=("hypercorn", "h2"),
            description="hypercorn -k asyncio, HTTP/2 cleartext with RFC 8441 extended CONNECT",
        ),
        Variant(
            "hypercorn-h3",
            (*_HYPERCORN, *_QUIC, "-k", "asyncio", "{app}"),
            protocol="h3",
            server="hypercorn",
            requires=("hypercorn", "aioquic"),
            description=f"hypercorn -k asyncio, {_RFC_9220}",
        ),
        Variant(
            "anycorn-asyncio",
            (*_ANYCORN, "-k", "asyncio", "{app}"),
            server="anycorn",
            requires=("anycorn",),
            description="anycorn -k asyncio, HTTP/1.1",
        ),
        Variant(
            "anycorn-trio",
            (*_ANYCORN, "-k", "trio", "{app}"),
            server="anycorn",
            requires=("anycorn", "trio"),
            description="anycorn -k trio, HTTP/1.1",
            event_loop="trio",
        ),
        Variant(
            "anycorn-h3",
            (*_ANYCORN, *_QUIC, "-k", "asyncio", "{app}"),
            protocol="h3",
            server="anycorn",
            requires=("anycorn", "aioquic"),
            description=f"anycorn -k asyncio, {_RFC_9220}",
        ),
        Variant(
            "anycorn-h3-trio",
            (*_ANYCORN, *_QUIC, "-k", "trio", "{app}"),
            protocol="h3",
            server="anycorn",
            requires=("anycorn", "aioquic", "trio"),
            description=f"anycorn -k trio, {_RFC_9220}",
            event_loop="trio",
        ),
        Variant(
            "daphne",
            _module("daphne", "--bind", "{host}", "--port", "{port}", "{app}"),
            server="daphne",
            requires=("daphne",),
            description="daphne",
        ),
        Variant(
            "granian",
            _module(
                "granian",
                "--interface",
                "asgi",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--workers",
                "1",
                "--working-dir",
                "{app_dir}",
                "{app}",
            ),
            server="granian",
            requires=("granian",),
            description="granian --interface asgi",
        ),
        Variant(
            "gunicorn",
            _module(
                "gunicorn",
                "-k",
                "asgi",
                "--bind",
                "{host}:{port}",
                "--workers",
                "1",
                "--graceful-timeout",
                "2",
                # gunicorn 27 opens a control socket under ~/.gunicorn by default.
                "--no-control-socket",
                "--chdir",
                "{app_dir}",
                "{app}",
            ),
            server="gunicorn",
            requires=("gunicorn",),
            description="gunicorn -k asgi (gunicorn >= 27)",
        ),
    )
}


def resolve_variant(variant: str | Variant) -> Variant:
    """The `Variant` itself, or the one of `VARIANTS` with that name."""
    if isinstance(variant, Variant):
        return variant
    try:
        return VARIANTS[variant]
    except KeyError:
        raise KeyError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}") from None


def free_port(host: str = HOST) -> int:
    """A TCP port the OS reports free on ``host`` right now (bind port 0, read it, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


#: Servers started and not yet stopped: stopped at interpreter exit should a ``with`` block be
#: skipped (a KeyboardInterrupt between start and ``yield``, a worker torn down by pytest).
_RUNNING: set[RunningServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop(timeout=2.0)


class RunningServer:
    """A started server: where it listens, its pid, its captured output."""

    def __init__(
        self,
        variant: Variant,
        process: subprocess.Popen[bytes],
        host: str,
        port: int,
        log_path: Path,
        argv: list[str],
    ) -> None:
        self.variant = variant
        self.process = process
        self.host = host
        self.port = port
        self.pid = process.pid
        self.argv = argv
        self._log_path = log_path
        self._final_log: bytes | None = None
        _RUNNING.add(self)

    def __repr__(self) -> str:
        return f"<RunningServer {self.variant.name} pid={self.pid} {self.host}:{self.port}>"

    def alive(self) -> bool:
        """Whether the server's own process is still running."""
        return self.process.poll() is None

    def log_bytes(self, since: int = 0) -> bytes:
        """Captured stdout and stderr so far, from byte offset ``since``."""
        if self._final_log is not None:
            return self._final_log[since:]
        try:
            with self._log_path.open("rb") as log:
                log.seek(since)
                return log.read()
        except FileNotFoundError:
            return b""

    def log(self, since: int = 0) -> str:
        """Captured stdout and stderr so far (from byte offset ``since``), decoded leniently."""
        return self.log_bytes(since).decode("utf-8", "replace")

    def log_mark(self) -> int:
        """The current end of the log, to read one case's output with ``log(since=mark)``."""
        if self._final_log is not None:
            return len(self._final_log)
        try:
            return self._log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the pid, wait up to ``timeout``, then SIGKILL the whole process group."""
        if self._final_log is not None:
            return
        _terminate(self.process, timeout)
        _RUNNING.discard(self)
        self._final_log = self.log_bytes()
        with contextlib.suppress(FileNotFoundError):
            self._log_path.unlink()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    # The server is a session leader (start_new_session), so its pid is its process group id
    # and every worker it forks is in that group unless it made a session of its own.
    pgid = process.pid
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    process.wait(timeout)
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        # Orphaned workers are reaped by init once SIGKILLed; poll until the group is empty.
        if time.monotonic() > deadline:
            raise RuntimeError(f"process group {pgid} still has members after SIGKILL")
        time.sleep(0.01)


def _environment(app_dir: str, extra: Mapping[str, str] | None, variant: Variant) -> dict[str, str]:
    env = dict(os.environ)
    env.update(variant.env)
    if extra:
        env.update(extra)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = app_dir if not path else os.pathsep.join((app_dir, path))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _listener_is_ours(port: int, pgid: int) -> bool:
    """Whether the socket listening on ``port`` belongs to the process group ``pgid``.

    A free port is found by binding port 0 and releasing it, so another process (a server some
    other test started at the same moment) can take the same port first. Its port then answers
    while ours fails to bind; without this check the client would talk to the wrong server.
    Where ``/proc`` is not there (not Linux), the check cannot be made and passes.
    """
    proc = Path("/proc")
    if not (proc / "net" / "tcp").exists():
        return True
    listening = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), (proc / "net" / table).open() as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                # local_address is ADDR:PORT in hex; state 0A is LISTEN; field 9 is the inode.
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    listening.add(f"socket:[{fields[9]}]")
    if not listening:
        return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in listening:
                        return True
        except (OSError, ValueError):
            continue
    return False


def _start(
    variant: Variant,
    app: str,
    app_dir: str,
    env: dict[str, str],
    ready_timeout: float,
    log_dir: Path,
    certificate: tuple[Path, Path] | None,
) -> RunningServer:
    port = free_port()
    argv = variant.argv(app=app, app_dir=app_dir, host=HOST, port=port, certificate=certificate)
    fd, name = tempfile.mkstemp(prefix=f"{variant.name}-{port}-", suffix=".log", dir=log_dir)
    log_path = Path(name)
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(fd)
        raise ServerStartError(variant.name, f"cannot run {argv[0]!r}: {exc}", "") from exc
    os.close(fd)
    server = RunningServer(variant, process, HOST, port, log_path, argv)
    deadline = time.monotonic() + ready_timeout
    while True:
        if not server.alive():
            server.stop()
            raise ServerStartError(
                variant.name,
                f"exited with status {process.returncode} before its port answered",
                server.log(),
            )
        if port_answers(HOST, port, timeout=0.25) and _listener_is_ours(port, process.pid):
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise ServerStartError(
                variant.name, f"port {port} did not answer within {ready_timeout:g}s", server.log()
            )
        time.sleep(0.02)


@contextlib.contextmanager
def run_server(
    variant: str | Variant,
    app: str,
    *,
    app_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 15.0,
    stop_timeout: float = 5.0,
) -> Iterator[RunningServer]:
    """Run ``app`` ("module:attr") on ``variant`` at 127.0.0.1 for the ``with`` block.

    ``app_dir`` is prepended to ``PYTHONPATH`` (and given to servers that take an app directory);
    it defaults to the current directory. ``env`` is added to the server's environment. A variant
    that serves TLS gets a self-signed certificate for 127.0.0.1, made for this start. Raises
    `ServerStartError` if the server exits or its port does not answer within ``ready_timeout``.
    """
    resolved = resolve_variant(variant)
    missing = resolved.missing()
    if missing:
        raise ServerStartError(resolved.name, f"not installed: {', '.join(missing)}", "")
    directory = os.fspath(Path(app_dir if app_dir is not None else os.getcwd()).resolve())
    environment = _environment(directory, env, resolved)
    with tempfile.TemporaryDirectory(prefix="asgi-ws-deny-conformance-") as log_dir:
        certificate = None
        if resolved.tls:
            from conformance.tls import self_signed_certificate  # cryptography, for TLS only

            certificate = self_signed_certificate(Path(log_dir), HOST)
        attempts = 3
        for attempt in range(attempts):
            try:
                server = _start(
                    resolved, app, directory, environment, ready_timeout, Path(log_dir), certificate
                )
            except ServerStartError as exc:
                if attempt + 1 < attempts and _PORT_TAKEN.search(exc.log):
                    continue
                raise
            break
        try:
            yield server
        finally:
            server.stop(stop_timeout)

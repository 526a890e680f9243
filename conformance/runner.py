"""One variant's servers for a whole run: started once, restarted after a crash, stopped at the end.

`ServerHandle` is what the pytest ``server`` fixture yields. It starts the conformance app on its
variant lazily, runs one case at a time against it (`ServerHandle.run`), and turns everything
that can go wrong around a case into a result rather than an error: a package that is missing
(``missing``), a server that does not start (``no start``), a server that dies during a case
(``crash``; it is started again for the next case, and that case says so). After every case
the server must still serve: its process alive, and a fresh handshake on a new connection
answered (`still_serves`); one that stops answering makes the cell ``..., then hang`` and is
stopped by its pid, then started again for the next case. A server is ready once it has
answered a first handshake (up to ``ready_timeout``), not merely accepted a connection. Each
case gets the server's output written while it ran.

A case that needs another application (``Case.app``: the framework example apps of group 7)
gets a server of its own on the same variant, started on the first case that needs it, with the
same command line. The cases of one app come in a row (catalogue order), so when a case needs
another app, the previous one's server (never the conformance app's) is stopped in the
background: a variant runs at most two servers at once, and no stop delays the next case.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from asgi_ws_deny import EXTENSION
from conformance.apps import EVENTS_ENV
from conformance.cases import HANG, Case, Observation, Probe, not_applicable, run_case
from conformance.cases.probe import died
from conformance.servers import RunningServer, ServerStartError, Variant, run_server

__all__ = ("APP", "APP_DIR", "CaseResult", "ServerHandle", "alive_path", "still_serves")

APP = "conformance.apps:app"
#: The directory that holds the ``conformance`` package: the servers import the app from it.
APP_DIR = Path(__file__).resolve().parent.parent
#: The most server output kept per case in the report.
LOG_LIMIT = 4000


@dataclass(frozen=True)
class CaseResult:
    """An observation with what surrounded it."""

    observation: Observation
    duration: float
    log: str
    restarted: bool = False


@dataclass
class _AppServer:
    """One application's server on the variant, and what became of its starts."""

    app: str
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    server: RunningServer | None = None
    failure: Observation | None = None
    #: The server died in an earlier case: the next case of this app says it was restarted.
    restart_note: bool = False


class ServerHandle:
    """A variant's running servers across the cases of a run."""

    def __init__(self, variant: Variant, *, ready_timeout: float = 20.0) -> None:
        self.variant = variant
        self.ready_timeout = ready_timeout
        self.starts = 0
        self.crashes = 0
        self.hangs = 0
        self._apps: dict[str, _AppServer] = {}
        self._stopping: list[threading.Thread] = []
        self._listed: bool | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"conformance-{variant.name}-"))
        self.events_path = self._dir / "events.jsonl"

    def __repr__(self) -> str:
        return f"<ServerHandle {self.variant.name} starts={self.starts} crashes={self.crashes}>"

    @property
    def failure(self) -> Observation | None:
        """Why the conformance app's server cannot run (``missing``, ``no start``), or None."""
        entry = self._apps.get(APP)
        return None if entry is None else entry.failure

    @property
    def _server(self) -> RunningServer | None:
        entry = self._apps.get(APP)
        return None if entry is None else entry.server

    def ensure(self, app: str = APP) -> RunningServer | None:
        """The server running ``app``, (re)started when needed; None when it cannot start."""
        entry = self._apps.setdefault(app, _AppServer(app))
        if entry.failure is not None:
            return None
        if entry.server is not None and entry.server.alive():
            return entry.server
        if entry.server is not None:
            self._stop(entry)
            entry.restart_note = True
        missing = self.variant.missing()
        if missing:
            entry.failure = Observation(
                "missing", False, detail=f"not installed: {', '.join(missing)}"
            )
            return None
        if app != APP:
            self._retire_other_apps(app)
        entry.stack = contextlib.ExitStack()
        try:
            entry.server = entry.stack.enter_context(
                run_server(
                    self.variant,
                    app,
                    app_dir=APP_DIR,
                    env={EVENTS_ENV: str(self.events_path)},
                    ready_timeout=self.ready_timeout,
                )
            )
        except ServerStartError as exc:
            entry.server = None
            which = "" if app == APP else f"{app}: "
            entry.failure = Observation(
                "no start", False, detail=f"{which}{exc.reason}; log: {exc.log[-2000:]}"
            )
            return None
        self.starts += 1
        # Ready is answering, not only accepting: some servers import the application on the
        # first request, which on a loaded machine takes longer than a case waits (HANG).
        first = Probe(entry.server, self.events_path).request(
            f"{alive_path(app)}?t=ready-{uuid.uuid4().hex[:8]}", timeout=self.ready_timeout
        )
        if first.status is None and not entry.server.alive():
            self._stop(entry)
            entry.failure = Observation(
                "no start", False, detail=f"died on its first request: {first.summary()}"
            )
            return None
        return entry.server

    def extension_listed(self) -> bool | None:
        """Whether this variant lists the denial-response extension, as the conformance app's
        scope shows it (asked once; None when that server cannot tell)."""
        if self._listed is None:
            server = self.ensure()
            if server is None:
                return None
            probe = Probe(server, self.events_path)
            probe.handshake("scope")
            scope = probe.wait_event("scope", timeout=HANG)
            if scope is not None:
                self._listed = EXTENSION in (scope.get("extensions") or [])
        return self._listed

    def run(self, case: Case) -> CaseResult:
        """Run ``case`` on the server; every failure around it becomes the result."""
        started = time.monotonic()
        # The conformance app's server first: a variant that cannot run shows it in every cell.
        default = self.ensure()
        if default is None:
            assert self.failure is not None
            return CaseResult(self.failure, time.monotonic() - started, "")
        skip = not_applicable(case, self.variant)
        if skip is not None:
            return CaseResult(skip, time.monotonic() - started, "")
        app = case.app or APP
        server = default if app == APP else self.ensure(app)
        entry = self._apps[app]
        if server is None:
            assert entry.failure is not None
            return CaseResult(entry.failure, time.monotonic() - started, "")
        restarted, entry.restart_note = entry.restart_note, False
        probe = Probe(
            server,
            self.events_path,
            log_mark=server.log_mark(),
            listed_lookup=self.extension_listed,
        )
        observation = run_case(case, probe)
        serves = still_serves(probe, alive_path(app)) if server.alive() else None
        log = server.log(probe.log_mark)
        if not server.alive():
            self.crashes += 1
            note = "the server died during this case; it is started again for the next one"
            cell = observation.cell if "crash" in observation.cell else f"{observation.cell}, crash"
            observation = replace(
                observation, cell=cell, conforms=False, detail=f"{observation.detail}; {note}"
            )
        elif serves is not None:
            self.hangs += 1
            note = (
                f"after this case the server answered no fresh handshake ({serves}); it is "
                "stopped and started again for the next case"
            )
            observation = replace(
                observation,
                cell=f"{observation.cell}, then hang",
                conforms=False,
                detail=f"{observation.detail}; {note}",
            )
            self._stop(entry)
            entry.restart_note = True
        if restarted:
            observation = replace(
                observation,
                detail=f"{observation.detail}; (server restarted after a crash in an earlier case)",
            )
        if len(log) > LOG_LIMIT:
            log = "..." + log[-LOG_LIMIT:]
        return CaseResult(observation, time.monotonic() - started, log, restarted)

    def info(self) -> dict[str, Any]:
        """What the report says about this variant's server."""
        return {
            "description": self.variant.description,
            "version": self.variant.version(),
            "protocol": self.variant.protocol,
            "command": " ".join(self.variant.command),
            "starts": self.starts,
            "crashes": self.crashes,
            "hangs": self.hangs,
            "failure": None if self.failure is None else self.failure.cell,
            # Which handle: a variant cut into shards has one per shard, counted together.
            "handle": self._dir.name,
        }

    def _stop(self, entry: _AppServer) -> None:
        """Stop ``entry``'s server (by its pid, through `run_server`)."""
        with contextlib.suppress(Exception):
            entry.stack.close()
        entry.server = None

    def _stop_in_background(self, entry: _AppServer) -> None:
        stack, entry.stack, entry.server = entry.stack, contextlib.ExitStack(), None

        def stop() -> None:
            with contextlib.suppress(Exception):
                stack.close()

        thread = threading.Thread(target=stop, name=f"stop {entry.app}", daemon=True)
        thread.start()
        self._stopping.append(thread)

    def _retire_other_apps(self, app: str) -> None:
        """Stop the servers of the other framework apps: their cases are done."""
        for other in [name for name in self._apps if name not in (APP, app)]:
            entry = self._apps.pop(other)
            if entry.server is not None:
                self._stop_in_background(entry)

    def close(self) -> None:
        """Stop every server (at once), then remove the events file."""
        for entry in self._apps.values():
            if entry.server is not None:
                self._stop_in_background(entry)
        for thread in self._stopping:
            thread.join()
        self._stopping.clear()
        for path in self._dir.glob("*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._dir.rmdir()


#: The paths of the readiness and survival checks, which each application answers without a
#: word in the log (any response is an answer): the conformance apps close ``/close`` (403);
#: every framework example refuses ``/ws`` to a user other than alice. (An unknown path would
#: do for no app: Channels, for one, logs a traceback for a path it has no route for.)
ALIVE_PATH = "/close"
FRAMEWORK_ALIVE_PATH = "/ws"


def alive_path(app: str) -> str:
    """The path ``app`` answers quietly, for the readiness and survival checks."""
    return FRAMEWORK_ALIVE_PATH if app.startswith("examples.") else ALIVE_PATH


def still_serves(probe: Probe, path: str = ALIVE_PATH) -> str | None:
    """None when the server answers a fresh handshake on ``path`` on a new connection, else
    what came. A malformed answer is an answer: the server lives, and the case that asked for
    it reports the malformation (hypercorn's 403 over HTTP/3, `conformance.h3`).

    A server that closes the connection without a response and then dies is left to the
    caller's ``alive()`` check, which reports the crash."""
    response = probe.request(f"{path}?t=alive-{uuid.uuid4().hex[:8]}", timeout=HANG)
    if response.status is not None or response.malformed:
        return None
    # A server on its way out (a traceback to print, tasks to cancel) may take a while to exit
    # on a loaded machine: that is a crash, not a hang.
    if died(probe, HANG):
        return None
    return response.summary()

"""One variant's server for a whole run: started once, restarted after a crash, stopped at the end.

`ServerHandle` is what the pytest ``server`` fixture yields. It starts the conformance app on its
variant lazily, runs one case at a time against it (`ServerHandle.run`), and turns everything
that can go wrong around a case into a result rather than an error: a package that is missing
(``missing``), a server that does not start (``no start``), a server that dies during a case
(``crash``; it is started again for the next case, and that case says so). Each case gets the
server's output written while it ran.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from conformance.apps import EVENTS_ENV
from conformance.cases import Case, Observation, Probe, run_case
from conformance.servers import RunningServer, ServerStartError, Variant, run_server

__all__ = ("APP", "APP_DIR", "CaseResult", "ServerHandle")

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


class ServerHandle:
    """A variant's running server across the cases of a run."""

    def __init__(self, variant: Variant, *, ready_timeout: float = 20.0) -> None:
        self.variant = variant
        self.ready_timeout = ready_timeout
        self.failure: Observation | None = None
        self.starts = 0
        self.crashes = 0
        self._stack = contextlib.ExitStack()
        self._server: RunningServer | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"conformance-{variant.name}-"))
        self.events_path = self._dir / "events.jsonl"
        self._pending_restart_note = False

    def __repr__(self) -> str:
        return f"<ServerHandle {self.variant.name} starts={self.starts} crashes={self.crashes}>"

    def ensure(self) -> RunningServer | None:
        """The running server, (re)started when needed; None when it cannot start."""
        if self.failure is not None:
            return None
        if self._server is not None and self._server.alive():
            return self._server
        if self._server is not None:
            self._stop()
            self._pending_restart_note = True
        missing = self.variant.missing()
        if missing:
            self.failure = Observation(
                "missing", False, detail=f"not installed: {', '.join(missing)}"
            )
            return None
        self._stack = contextlib.ExitStack()
        try:
            self._server = self._stack.enter_context(
                run_server(
                    self.variant,
                    APP,
                    app_dir=APP_DIR,
                    env={EVENTS_ENV: str(self.events_path)},
                    ready_timeout=self.ready_timeout,
                )
            )
        except ServerStartError as exc:
            self._server = None
            self.failure = Observation(
                "no start", False, detail=f"{exc.reason}; log: {exc.log[-2000:]}"
            )
            return None
        self.starts += 1
        return self._server

    def run(self, case: Case) -> CaseResult:
        """Run ``case`` on the server; every failure around it becomes the result."""
        started = time.monotonic()
        server = self.ensure()
        if server is None:
            assert self.failure is not None
            return CaseResult(self.failure, time.monotonic() - started, "")
        restarted, self._pending_restart_note = self._pending_restart_note, False
        probe = Probe(server, self.events_path, log_mark=server.log_mark())
        observation = run_case(case, probe)
        log = server.log(probe.log_mark)
        if not server.alive():
            self.crashes += 1
            note = "the server died during this case; it is started again for the next one"
            cell = observation.cell if "crash" in observation.cell else f"{observation.cell}, crash"
            observation = replace(
                observation, cell=cell, conforms=False, detail=f"{observation.detail}; {note}"
            )
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
            "failure": None if self.failure is None else self.failure.cell,
        }

    def _stop(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()
        self._server = None

    def close(self) -> None:
        """Stop the server and remove the events file."""
        self._stop()
        for path in self._dir.glob("*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._dir.rmdir()

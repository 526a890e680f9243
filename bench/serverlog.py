"""Reading a server's log for errors, minus what a server is known to write on its own."""

from __future__ import annotations

import re

__all__ = ("ERROR_MARKERS", "KNOWN_ERROR_BLOCKS", "KNOWN_ERROR_LINES", "unexpected_errors")

#: What marks a line as an error in the logs of the servers of the matrix (Python tracebacks,
#: the servers' own ERROR/CRITICAL levels, a Rust panic in granian's worker).
ERROR_MARKERS = ("Traceback", "ERROR", "CRITICAL", "Exception", "panicked", "Error:")

#: Error lines a variant writes on a denial although the client got the whole response: known
#: server behaviour (see conformance/expectations.toml), not a failure of the denial.
KNOWN_ERROR_LINES: dict[str, tuple[str, ...]] = {
    # uvicorn's websockets-sansio stack logs this after every completed denial response.
    "uvicorn-sansio": ("ASGI callable returned without completing handshake.",),
}

#: Whole tracebacks a variant is known to log, as patterns over the log text.
KNOWN_ERROR_BLOCKS: dict[str, tuple[re.Pattern[str], ...]] = {
    # hypercorn over HTTP/2 forgets a WebSocket stream once it has sent its close frame, so
    # the client's answering close frame (RFC 6455 section 5.5.1) hits a KeyError in
    # H2Protocol._handle_events. Only after an accept: never on a denial.
    "hypercorn-h2": (
        re.compile(
            r"Unhandled exception in client_connected_cb\n"
            r"transport: [^\n]*\n"
            r"(?:[ |+][^\n]*\n)*?"
            r"[ ]*\| KeyError: \d+\n"
            r"[ ]*\+-+\n"
        ),
    ),
}


def unexpected_errors(variant: str, log: str) -> list[str]:
    """The lines of ``log`` that report an error, other than what ``variant`` is known to write."""
    for pattern in KNOWN_ERROR_BLOCKS.get(variant, ()):
        log = pattern.sub("", log)
    known = KNOWN_ERROR_LINES.get(variant, ())
    return [
        line
        for line in log.splitlines()
        if any(marker in line for marker in ERROR_MARKERS)
        and not any(expected in line for expected in known)
    ]

"""Group 5, the helper contract, through asgi_ws_deny's public API only (``-m contract``).

The promise everywhere: the response where the extension is listed, 403 where it is not, never
101, the connection closed, no traceback. ``deny()`` in its forms (5.1 to 5.9), the guard
(5.10 to 5.13: ``WebSocketGuard`` and ``Denied``; further guard cases go after 5.17) and its
browser policy (5.14 to 5.17).
"""

from __future__ import annotations

from conformance import apps
from conformance.cases.case import H1, Case
from conformance.cases.probe import (
    CLOSE_WAIT,
    EVENT_WAIT,
    Observation,
    Probe,
    app_headers_intact,
    client_gone,
    close_reading,
    crash_or,
    died,
    opened_detail,
    show,
    traceback_logged,
    upgrade_headers,
)

__all__ = ("CASES", "GROUP", "TITLE")

GROUP = "5"
TITLE = "The helper contract"


def _contract(
    probe: Probe,
    behaviour: str,
    *,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    listed_outcome: str = "response",
    traceback_ok: bool = False,
) -> Observation:
    """The promise: the response where the extension is listed, else 403; closed; no 101."""
    response = probe.handshake(behaviour, wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    if cell == "crash":
        return Observation(cell, False, None, f"{show(response)}; log: {probe.log()[-800:]}")
    probe.settle()
    listed = probe.extension_listed()
    outcome = probe.event("outcome") or {}
    problems: list[str] = []
    if listed:
        want = status
        if response.status == status:
            problems += app_headers_intact(response, headers)
            if response.body != body:
                problems.append(f"body {response.body!r}")
        label = "ok"
    else:
        want = 403
        label = "fallback"
    if outcome.get("outcome") not in (listed_outcome if listed else "close", "returned"):
        problems.append(f"deny() returned {outcome!r}")
    extras = []
    if response.status == want and not problems:
        cell = f"{want} {label}"
    elif response.status == want:
        cell = f"{want} changed"
    bad_upgrade = upgrade_headers(response)
    if bad_upgrade:
        extras.append("+upgrade")
        problems.append(f"upgrade headers on a denial: {bad_upgrade}")
    if response.status is not None and not response.closed:
        extras.append("open")
        problems.append("the connection stayed open after the denial")
    if outcome.get("outcome") == "no guard":
        return Observation("no guard", False, response.status, "asgi_ws_deny.guard not importable")
    if probe.event("app-called") is not None and behaviour in GUARD_APP_NOT_CALLED:
        extras.append("app called")
        problems.append("the check refused, yet the application was called")
    if not traceback_ok and traceback_logged(probe):
        extras.append("traceback")
        problems.append("a traceback in the server log")
    if extras:
        cell += ", " + ", ".join(extras)
    conforms = cell in (f"{want} ok", f"{want} fallback")
    detail = "; ".join([*problems, f"listed={listed}", show(response)])
    return Observation(cell, conforms, response.status, detail)


CONTRACT_WIRE = [(name.encode(), value.encode()) for name, value in apps.CONTRACT_HEADERS]


def run_api_deny(probe: Probe) -> Observation:
    headers = [*CONTRACT_WIRE, (b"content-length", b"14")]
    return _contract(probe, "api-deny", status=401, headers=headers, body=apps.JSON_BODY)


DENY = Case(
    "5.1",
    "deny",
    "deny() with repeated set-cookie",
    "deny(scope, send, 401, [www-authenticate, set-cookie x2], json): that response where "
    "the extension is listed, else 403; closed; never 101; no traceback.",
    "asgi_ws_deny docs: deny()",
    "MUST",
    run_api_deny,
    contract=True,
)


def run_api_deny_single(probe: Probe) -> Observation:
    headers = [(b"www-authenticate", b"Bearer"), (b"content-length", b"14")]
    return _contract(probe, "api-deny-single", status=401, headers=headers, body=apps.JSON_BODY)


DENY_SINGLE = Case(
    "5.2",
    "deny-single",
    "deny() with one header",
    "deny(scope, send, 401, [www-authenticate], json): the same promise.",
    "asgi_ws_deny docs: deny()",
    "MUST",
    run_api_deny_single,
    contract=True,
)


def run_api_deny_default(probe: Probe) -> Observation:
    return _contract(
        probe, "api-deny-default", status=403, headers=[(b"content-length", b"0")], body=b""
    )


DENY_DEFAULT = Case(
    "5.3",
    "deny-default",
    "deny() defaults",
    "deny(scope, send): 403 with an empty body; closed.",
    "asgi_ws_deny docs: deny()",
    "MUST",
    run_api_deny_default,
    contract=True,
)


def run_api_denial_app(probe: Probe) -> Observation:
    body = b'{"error":"slow down"}'
    headers = [
        (b"retry-after", b"7"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return _contract(probe, "api-denial-app", status=429, headers=headers, body=body)


DENIAL_APP = Case(
    "5.4",
    "denial-app",
    "Denial as an ASGI app",
    "await Denial.json(429, ...)(scope, receive, send): that response, or 403.",
    "asgi_ws_deny docs: Denial",
    "MUST",
    run_api_denial_app,
    contract=True,
)


def run_api_denial_text(probe: Probe) -> Observation:
    body = b"forbidden here"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    return _contract(probe, "api-denial-text", status=403, headers=headers, body=body)


DENIAL_TEXT = Case(
    "5.5",
    "denial-text",
    "deny() with a Denial.text",
    "deny(scope, send, Denial.text(403, ...)): that response, or 403.",
    "asgi_ws_deny docs: Denial.text",
    "MUST",
    run_api_denial_text,
    contract=True,
)


def run_api_fallback_raise(probe: Probe) -> Observation:
    response = probe.handshake("api-fallback-raise", wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    probe.settle()
    outcome = (probe.event("outcome") or {}).get("outcome")
    listed = probe.extension_listed()
    detail = f"listed={listed}; outcome={outcome!r}; {show(response)}"
    if listed:
        conforms = outcome == "response" and response.status == 401
        cell = "401 ok" if conforms else f"{cell}, outcome {outcome}"
    else:
        sent = (probe.event("outcome") or {}).get("sent")
        conforms = outcome == "raised" and sent == 0
        cell = "raised ok" if conforms else f"{cell}, outcome {outcome}"
    return Observation(cell, conforms, response.status, detail)


FALLBACK_RAISE = Case(
    "5.6",
    "fallback-raise",
    "fallback='raise'",
    "Where the extension is missing, DenialUnsupportedError before anything is sent.",
    "asgi_ws_deny docs: deny(fallback='raise')",
    "MUST",
    run_api_fallback_raise,
    contract=True,
)


def run_api_invalid_101(probe: Probe) -> Observation:
    response = probe.handshake("api-invalid-101", wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    probe.settle()
    refused = probe.event("outcome") or {}
    detail = f"first deny(101): {refused!r}; {show(response)}"
    conforms = (
        refused.get("outcome") == "refused"
        and refused.get("sent") == 0
        and response.status == 403
        and b"101" not in response.raw.split(b"\r\n", 1)[0]
    )
    cell = "refused, 403" if conforms else f"{cell}, {refused.get('outcome')}"
    return Observation(cell, conforms, response.status, detail)


INVALID_101 = Case(
    "5.7",
    "invalid-101",
    "deny(101) refused",
    "deny(scope, send, 101) raises InvalidDenialError having sent nothing; the client "
    "never sees 101.",
    "asgi_ws_deny docs: validation",
    "MUST",
    run_api_invalid_101,
    contract=True,
)


def run_api_client_gone(probe: Probe) -> Observation:
    response, events = client_gone(probe, "api-disconnected")
    if response is not None:
        return Observation(crash_or(probe, response), False, response.status, show(response))
    if probe.tunnel:
        return Observation("n/a", None, detail="HTTP/1.1 only")
    probe.settle()
    outcome = next((e for e in events if e["event"] == "outcome"), None)
    detail = f"events: {[e['event'] for e in events]}; outcome {outcome!r}"
    if outcome is None:
        cell = "crash" if died(probe) else "no outcome"
        return Observation(cell, False, None, f"{detail}; log: {probe.log()[-800:]}")
    value = outcome.get("outcome")
    if value == "disconnected":
        cell = "disconnected"
    elif value in ("response", "close"):
        cell = "dropped silently"
    else:
        cell = f"raised {str(outcome.get('error', '')).split(':')[0]}"
    # An error that escaped the app is logged after the app's last event: wait for it then.
    traceback = traceback_logged(probe, wait=EVENT_WAIT if value == "raised" else 0.0)
    if traceback:
        cell += ", traceback"
    conforms = value in ("disconnected", "response", "close") and not traceback
    return Observation(cell, conforms, None, detail)


CLIENT_GONE = Case(
    "5.8",
    "client-gone",
    "deny() after the client left",
    "deny() returns ('disconnected', or the server dropped it silently); nothing escapes, "
    "no traceback.",
    "asgi_ws_deny docs: deny() outcome 'disconnected'",
    "MUST",
    run_api_client_gone,
    protocols=H1,
    contract=True,
)


def run_api_quiet_log(probe: Probe) -> Observation:
    response = probe.handshake("api-deny-single", wait_close=CLOSE_WAIT)
    cell = crash_or(probe, response)
    if cell == "crash":
        return Observation(cell, False, None, show(response))
    probe.settle()
    lines = [
        line
        for line in probe.log().splitlines()
        if "ERROR" in line or "Traceback" in line or "Exception" in line
    ]
    return Observation(
        "clean" if not lines else "error logged",
        not lines,
        response.status,
        "; ".join(lines[:5]) or "no error lines",
    )


QUIET_LOG = Case(
    "5.9",
    "quiet-log",
    "No error logged for a denial",
    "A completed deny() leaves no ERROR line or traceback in the server log.",
    "asgi_ws_deny docs: deny()",
    "SHOULD",
    run_api_quiet_log,
    contract=True,
)


# The guard contract: asgi_ws_deny.WebSocketGuard and Denied (apps: conformance.apps api_guard_*).
# Further guard cases go after 5.17, with contract=True.

#: The behaviours whose check refuses: the application must never be called.
GUARD_APP_NOT_CALLED = frozenset(
    {"api-guard-check", "api-guard-check-error", "api-guard-browser-check"}
)


def run_guard_check(probe: Probe) -> Observation:
    headers = [(b"www-authenticate", b"Bearer"), (b"content-length", b"14")]
    return _contract(probe, "api-guard-check", status=401, headers=headers, body=apps.JSON_BODY)


GUARD_CHECK = Case(
    "5.10",
    "guard-check",
    "Guard check refuses",
    "WebSocketGuard(app, check=...) whose check returns Denial(401, ...): that response "
    "(or 403), closed, and the application is never called.",
    "asgi_ws_deny docs: WebSocketGuard",
    "MUST",
    run_guard_check,
    contract=True,
)


def run_guard_denied(probe: Probe) -> Observation:
    body = b"no such room"
    headers = [(b"x-conformance", b"guard"), (b"content-length", str(len(body)).encode())]
    return _contract(probe, "api-guard-denied", status=404, headers=headers, body=body)


GUARD_DENIED = Case(
    "5.11",
    "guard-denied",
    "Denied raised in the app",
    "The application raises Denied(404, ...) under the guard: that response, or 403.",
    "asgi_ws_deny docs: Denied",
    "MUST",
    run_guard_denied,
    contract=True,
)


def run_guard_no_handshake(probe: Probe) -> Observation:
    headers = [(b"content-length", b"0")]
    return _contract(probe, "api-guard-no-handshake", status=403, headers=headers, body=b"")


GUARD_NO_HANDSHAKE = Case(
    "5.12",
    "guard-no-handshake",
    "Guard: app returns without a handshake",
    "The guard answers 403 where the server alone gives 500, a hang or a 101 (case 3.3).",
    "asgi_ws_deny docs: WebSocketGuard (no_handshake_denial)",
    "MUST",
    run_guard_no_handshake,
    contract=True,
)


def run_guard_check_error(probe: Probe) -> Observation:
    # The guard logs the check's exception (with its traceback) on purpose: allowed here.
    headers = [(b"content-length", b"0")]
    return _contract(
        probe,
        "api-guard-check-error",
        status=500,
        headers=headers,
        body=b"",
        traceback_ok=True,
    )


GUARD_CHECK_ERROR = Case(
    "5.13",
    "guard-check-error",
    "Guard: the check raises",
    "A check that raises fails closed: 500 (or 403), closed, the application never called.",
    "asgi_ws_deny docs: WebSocketGuard (error_denial)",
    "MUST",
    run_guard_check_error,
    contract=True,
)


# Browser-visible denials: WebSocketGuard(..., browser_policy="origin"). With an Origin header
# a denial before accept is an accept followed at once by a close (4000 + status, a reason);
# without one it is the HTTP denial.

#: The header every browser sends; only its presence matters to the policy.
ORIGIN = ("Origin", "http://127.0.0.1")
#: The subprotocols offered in 5.16, in the client's order of preference.
SUBPROTOCOLS = ("conformance.v1", "conformance.v2")


def _browser_visible(
    probe: Probe, behaviour: str, code: int, reason: bytes, *, subprotocols: bool = False
) -> Observation:
    headers = [ORIGIN]
    if subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(SUBPROTOCOLS)))
    opened = probe.open(probe.target(behaviour), headers=headers)
    cell, conforms = close_reading(probe, opened, code, reason)
    if cell == "crash":
        return Observation(cell, False, None, f"{opened_detail(opened)}; log: {probe.log()[-800:]}")
    probe.settle()
    outcome = probe.event("outcome") or {}
    if outcome.get("outcome") == "no guard":
        return Observation("no guard", False, None, "asgi_ws_deny.guard not importable")
    problems: list[str] = []
    extras = []
    if subprotocols and opened.accepted:
        named = opened.response.header("sec-websocket-protocol")
        if named != [SUBPROTOCOLS[0].encode()]:
            extras.append("no subprotocol" if not named else "subprotocol changed")
            problems.append(f"the accept names {named!r}, the client offered {SUBPROTOCOLS!r}")
    if probe.event("app-called") is not None and behaviour in GUARD_APP_NOT_CALLED:
        extras.append("app called")
        problems.append("the check refused, yet the application was called")
    if traceback_logged(probe):
        extras.append("traceback")
        problems.append("a traceback in the server log")
    if extras:
        cell += ", " + ", ".join(extras)
    detail = "; ".join([*problems, opened_detail(opened)])
    return Observation(cell, conforms and not extras, opened.response.status, detail)


def run_guard_browser_check(probe: Probe) -> Observation:
    return _browser_visible(probe, "api-guard-browser-check", 4401, b"Unauthorized")


GUARD_BROWSER_ORIGIN = Case(
    "5.14",
    "guard-browser-origin",
    "Browser policy: check refuses, Origin",
    "browser_policy='origin', a check returning Denial(401, ...), a handshake with Origin: "
    "an accept, then at once a close with 4401 and the status phrase 'Unauthorized'; the "
    "application never called; no traceback.",
    "asgi_ws_deny docs: WebSocketGuard (browser-visible denials); RFC 6455 section 7.4.2",
    "MUST",
    run_guard_browser_check,
    contract=True,
)


def run_guard_browser_denied(probe: Probe) -> Observation:
    reason = apps.BROWSER_REASON.encode()
    return _browser_visible(probe, "api-guard-browser-denied", 4404, reason)


GUARD_BROWSER_DENIED = Case(
    "5.15",
    "guard-browser-denied",
    "Browser policy: Denied in the app, Origin",
    "The application raises Denied(404, ..., reason='no such room') under "
    "browser_policy='origin', with Origin: an accept, then a close with 4404 and that reason.",
    "asgi_ws_deny docs: Denied (reason); WebSocketGuard (browser-visible denials)",
    "MUST",
    run_guard_browser_denied,
    contract=True,
)


def run_guard_browser_subprotocol(probe: Probe) -> Observation:
    return _browser_visible(
        probe, "api-guard-browser-check", 4401, b"Unauthorized", subprotocols=True
    )


GUARD_BROWSER_SUBPROTOCOL = Case(
    "5.16",
    "guard-browser-subprotocol",
    "Browser policy: subprotocol offered",
    "As 5.14 with two subprotocols offered: the accept names the first (a browser fails an "
    "accept without one, and the close is lost), then the close 4401.",
    "asgi_ws_deny docs: WebSocketGuard (browser-visible denials); RFC 6455 section 4.2.2",
    "MUST",
    run_guard_browser_subprotocol,
    contract=True,
)


def run_guard_browser_no_origin(probe: Probe) -> Observation:
    headers = [(b"www-authenticate", b"Bearer"), (b"content-length", b"14")]
    return _contract(
        probe, "api-guard-browser-check", status=401, headers=headers, body=apps.JSON_BODY
    )


GUARD_BROWSER_NO_ORIGIN = Case(
    "5.17",
    "guard-browser-no-origin",
    "Browser policy: no Origin",
    "The guard of 5.14, a handshake without Origin: the HTTP denial (401, or 403 where the "
    "extension is not listed), closed, the application never called.",
    "asgi_ws_deny docs: WebSocketGuard (browser_policy='origin')",
    "MUST",
    run_guard_browser_no_origin,
    contract=True,
)


CASES: tuple[Case, ...] = (
    DENY,
    DENY_SINGLE,
    DENY_DEFAULT,
    DENIAL_APP,
    DENIAL_TEXT,
    FALLBACK_RAISE,
    INVALID_101,
    CLIENT_GONE,
    QUIET_LOG,
    GUARD_CHECK,
    GUARD_DENIED,
    GUARD_NO_HANDSHAKE,
    GUARD_CHECK_ERROR,
    GUARD_BROWSER_ORIGIN,
    GUARD_BROWSER_DENIED,
    GUARD_BROWSER_SUBPROTOCOL,
    GUARD_BROWSER_NO_ORIGIN,
)

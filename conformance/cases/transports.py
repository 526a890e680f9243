"""Group 10, transports: whether a server offers a WebSocket over HTTP/2 and over HTTP/3.

A WebSocket opens with an HTTP/1.1 Upgrade, or with an extended CONNECT over HTTP/2 (RFC 8441)
or over HTTP/3 (RFC 9220), which a client may send only once the server's SETTINGS carry
``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1``. Each variant is reached over one of these; these INFO
cases ask the same running server, on its own port, about the other two: HTTP/2 by its
connection preface (cleartext prior knowledge, or TLS with ALPN ``h2`` where the variant serves
TLS), HTTP/3 by a QUIC handshake on the UDP port of the same number. ``not offered`` is what the
server answered as the variant starts it: another variant of the same server may offer it
(hypercorn's ``--quic-bind``, the ``hypercorn-h3`` column).
"""

from __future__ import annotations

import contextlib
import socket
import ssl

from conformance.cases.case import Case
from conformance.cases.probe import HANG, Observation, Probe
from conformance.client import Deadline
from conformance.h3 import h3_settings

__all__ = ("CASES", "GROUP", "TITLE")

GROUP = "10"
TITLE = "Transports"

#: RFC 9113 section 3.4: the client connection preface, then an empty SETTINGS frame.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = 0x4
EMPTY_SETTINGS = bytes(3) + bytes([SETTINGS, 0]) + bytes(4)
#: RFC 8441 section 3 (the same identifier over HTTP/3, RFC 9220 section 3).
ENABLE_CONNECT_PROTOCOL = 0x8
NOT_OFFERED = "not offered"


def _first_frame(probe: Probe) -> tuple[bytes, str]:
    """What the server writes first after an HTTP/2 connection preface, and how it was reached."""
    deadline = Deadline(HANG)
    how = "cleartext, prior knowledge"
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(
            socket.create_connection((probe.server.host, probe.server.port), timeout=HANG)
        )
        if probe.variant.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the certificate made for this start
            context.set_alpn_protocols(["h2"])
            sock = stack.enter_context(context.wrap_socket(sock, server_hostname=probe.server.host))
            how = f"TLS, ALPN {sock.selected_alpn_protocol()!r}"
            if sock.selected_alpn_protocol() != "h2":
                return b"", how
        sock.sendall(PREFACE + EMPTY_SETTINGS)
        received = b""
        while deadline.left() > 0:
            if len(received) >= 9 and len(received) >= 9 + int.from_bytes(received[:3], "big"):
                break
            sock.settimeout(deadline.left())
            try:
                chunk = sock.recv(4096)
            except TimeoutError:  # socket.timeout before Python 3.10's alias
                how += f", no complete frame within {HANG:g}s"
                break
            except OSError as exc:
                how += f", {type(exc).__name__}"
                break
            if not chunk:
                how += ", closed"
                break
            received += chunk
        return received, how


def _settings(frame: bytes) -> dict[int, int] | None:
    """The parameters of a SETTINGS frame on stream 0 (RFC 9113 section 6.5), else None."""
    if len(frame) < 9 or frame[3] != SETTINGS or int.from_bytes(frame[5:9], "big") != 0:
        return None
    payload = frame[9 : 9 + int.from_bytes(frame[:3], "big")]
    return {
        int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(payload[i + 2 : i + 6], "big")
        for i in range(0, len(payload) - len(payload) % 6, 6)
    }


def run_http2(probe: Probe) -> Observation:
    received, how = _first_frame(probe)
    settings = _settings(received)
    detail = f"{how}: {received[:160]!r}"
    if settings is None:
        return Observation(NOT_OFFERED, None, None, detail)
    if settings.get(ENABLE_CONNECT_PROTOCOL) == 1:
        return Observation("RFC 8441", None, None, f"SETTINGS {settings}; {detail}")
    return Observation("h2 without RFC 8441", None, None, f"SETTINGS {settings}; {detail}")


HTTP2 = Case(
    "10.1",
    "http2",
    "WebSocket over HTTP/2",
    "Does the server, on the variant's port, speak HTTP/2 and announce "
    "SETTINGS_ENABLE_CONNECT_PROTOCOL, so that a client can open a WebSocket over it?",
    "RFC 8441 section 3; RFC 9113 section 3.4 (prior knowledge)",
    "INFO",
    run_http2,
    default=NOT_OFFERED,
    capability=True,
)


def _quic_port_closed(host: str, port: int) -> bool:
    """Whether the UDP port refuses a datagram (ICMP port unreachable): no QUIC listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect((host, port))
        udp.settimeout(0.5)
        try:
            udp.send(b"\0")  # too short to be QUIC: a listener drops it without a word
            udp.recv(1)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
    return False


def run_http3(probe: Probe) -> Observation:
    host, port = probe.server.host, probe.server.port
    if _quic_port_closed(host, port):
        detail = f"UDP port {port} answered ICMP port unreachable: no QUIC listener"
        return Observation(NOT_OFFERED, None, None, detail)
    settings = h3_settings(host, port, timeout=HANG)
    if isinstance(settings, str):
        return Observation(NOT_OFFERED, None, None, settings)
    if settings.get(ENABLE_CONNECT_PROTOCOL) == 1:
        return Observation("RFC 9220", None, None, f"SETTINGS {settings}")
    return Observation("h3 without RFC 9220", None, None, f"SETTINGS {settings}")


HTTP3 = Case(
    "10.2",
    "http3",
    "WebSocket over HTTP/3",
    "Does the server answer QUIC on the UDP port of the variant's number, and announce "
    "SETTINGS_ENABLE_CONNECT_PROTOCOL over HTTP/3?",
    "RFC 9220 section 3; RFC 9114 section 7.2.4",
    "INFO",
    run_http3,
    default=NOT_OFFERED,
    capability=True,
)

CASES = (HTTP2, HTTP3)

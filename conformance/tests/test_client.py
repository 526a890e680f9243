"""The wire client reads what a server writes, however it frames it, within its deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conformance.client import (
    CLOSE,
    LINGER_RESET,
    TEXT,
    WireConnection,
    WireResponse,
    build_handshake,
    close_frame,
    ws_frames,
    ws_handshake,
)

pytestmark = pytest.mark.selftest


@contextmanager
def one_shot(reply: bytes, *, close: bool = True, reset: bool = False) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that reads a request, writes ``reply``, then closes or not."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    done = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            if reset:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                return
            connection.sendall(reply)
            if not close:
                done.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        listener.close()


def fetch(reply: bytes, **kwargs: object) -> WireResponse:
    close = bool(kwargs.pop("close", True))
    reset = bool(kwargs.pop("reset", False))
    with one_shot(reply, close=close, reset=reset) as port:
        return ws_handshake("127.0.0.1", port, "/x", **kwargs)  # type: ignore[arg-type]


def test_content_length_body_and_original_header_case() -> None:
    response = fetch(b"HTTP/1.1 401 Nope\r\nX-Case: A\r\ncontent-length: 3\r\n\r\nabc")
    assert (response.status, response.reason, response.body) == (401, b"Nope", b"abc")
    assert response.headers == [(b"X-Case", b"A"), (b"content-length", b"3")]
    assert response.header("x-case") == [b"A"]


def test_chunked_body_is_decoded() -> None:
    reply = b"HTTP/1.1 401 \r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    response = fetch(reply)
    assert (response.status, response.reason, response.body, response.chunked) == (
        401,
        b"",
        b"abcde",
        True,
    )


def test_a_body_without_length_runs_to_the_end_of_the_connection() -> None:
    response = fetch(b"HTTP/1.1 500 x\r\n\r\nall of it")
    assert (response.body, response.closed, response.timed_out) == (b"all of it", True, False)


def test_bytes_past_the_declared_length_are_kept_as_extra() -> None:
    response = fetch(b"HTTP/1.1 401 x\r\ncontent-length: 2\r\n\r\nabcdef", wait_close=1.0)
    assert (response.body, response.extra, response.closed) == (b"ab", b"cdef", True)


def test_an_open_connection_is_an_observation_not_a_timeout() -> None:
    response = fetch(b"HTTP/1.1 401 x\r\ncontent-length: 0\r\n\r\n", close=False, wait_close=0.2)
    assert (response.status, response.closed, response.timed_out) == (401, False, False)


def test_silence_is_a_timeout_within_the_deadline() -> None:
    response = fetch(b"", close=False, timeout=0.3)
    assert (response.status, response.timed_out) == (None, True)
    assert response.elapsed < 2


def test_a_reset_before_any_byte() -> None:
    response = fetch(b"", reset=True)
    assert response.status is None
    assert response.closed


def test_a_101_ends_the_response_at_the_blank_line() -> None:
    response = fetch(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00")
    assert (response.status, response.body) == (101, b"")


def test_connection_refused_is_a_response_with_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    response = ws_handshake("127.0.0.1", port, timeout=1)
    assert response.status is None
    assert response.error is not None
    assert response.error.startswith("connect")


def test_the_handshake_is_rfc_6455() -> None:
    request = build_handshake(
        "127.0.0.1", 80, "/p?q=1", [("X-A", "b")], key="a2V5a2V5a2V5a2V5a2V5a2E="
    )
    assert request.startswith(b"GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n")
    assert b"Sec-WebSocket-Key: a2V5a2V5a2V5a2V5a2V5a2E=\r\n" in request
    assert b"Sec-WebSocket-Version: 13\r\n" in request
    assert request.endswith(b"X-A: b\r\n\r\n")


ACCEPTED = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def test_server_frames_are_split_and_a_truncated_one_left_out() -> None:
    long = b"x" * 200
    data = b"\x81\x05hello" + b"\x82\x7e\x00\xc8" + long + b"\x88\x04\x03\xe8ok" + b"\x81\x05hel"
    assert ws_frames(data) == [(TEXT, b"hello"), (0x2, long), (CLOSE, b"\x03\xe8ok")]


def test_the_client_close_is_masked_with_its_code() -> None:
    # FIN + close, MASK bit + length 2, a zero masking key, then the code as is.
    assert close_frame(4401) == b"\x88\x82\x00\x00\x00\x00" + (4401).to_bytes(2, "big")


def test_frames_are_read_up_to_the_close_frame_without_waiting_for_the_deadline() -> None:
    reply = ACCEPTED + b"\x81\x0bhello alice" + b"\x88\x02\x03\xe8"
    with one_shot(reply, close=False) as port, WireConnection("127.0.0.1", port) as connection:
        response = connection.handshake("/x", timeout=2)
        frames = connection.read_frames(timeout=5)
    assert response.status == 101
    assert frames == [(TEXT, b"hello alice"), (CLOSE, b"\x03\xe8")]
    assert response.elapsed < 2


def test_silence_after_a_frame_ends_the_wait_for_the_close() -> None:
    reply = ACCEPTED + b"\x81\x02hi"
    with one_shot(reply, close=False) as port, WireConnection("127.0.0.1", port) as connection:
        connection.handshake("/x", timeout=2)
        started = time.monotonic()
        frames = connection.read_frames(timeout=5, idle=0.2)
        waited = time.monotonic() - started
    assert frames == [(TEXT, b"hi")]
    assert waited < 2


def test_leaving_waits_for_the_server_to_end_its_side_within_the_bound() -> None:
    with one_shot(b"", close=True) as port, WireConnection("127.0.0.1", port, timeout=2) as wire:
        wire.send(build_handshake("127.0.0.1", port, "/x"))
        assert wire.leave(2.0)
    with one_shot(b"", close=False) as port, WireConnection("127.0.0.1", port, timeout=2) as wire:
        wire.send(build_handshake("127.0.0.1", port, "/x"))
        assert not wire.leave(0.2)

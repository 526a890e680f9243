"""The adversarial clients of group 8: their wire bytes, their readings, on a real server."""

from __future__ import annotations

import pytest

from conformance.cases import case_by_id
from conformance.cases.adversarial import EAGER_FRAME, _second, _trailing
from conformance.client import WireResponse
from conformance.runner import ServerHandle
from conformance.servers import VARIANTS

pytestmark = pytest.mark.selftest


def test_the_eager_frame_is_a_masked_text_frame_saying_hello() -> None:
    assert EAGER_FRAME[0] == 0x81  # FIN, text
    assert EAGER_FRAME[1] == 0x80 | 5  # masked, 5 bytes
    key, payload = EAGER_FRAME[2:6], EAGER_FRAME[6:]
    assert bytes(b ^ key[n % 4] for n, b in enumerate(payload)) == b"hello"


@pytest.mark.parametrize(
    ("trailing", "reading"),
    [
        (b"", "2nd none"),
        (b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n", "2nd 400"),
        (b"\x81\x05hello", "garbage after"),
    ],
)
def test_what_follows_a_denial_is_read(trailing: bytes, reading: str) -> None:
    assert _second(trailing) == reading


def test_a_second_response_is_found_in_a_body_delimited_by_the_close() -> None:
    second = b"HTTP/1.1 403 Forbidden\r\n\r\n"
    unframed = WireResponse(status=403, body=b"denied" + second)
    assert _trailing(unframed) == second
    framed = WireResponse(status=403, headers=[(b"content-length", b"6")], body=b"denied")
    assert _trailing(framed) == b""
    assert _trailing(WireResponse(status=403, extra=second)) == second


def test_the_adversarial_clients_on_a_server_that_copes() -> None:
    handle = ServerHandle(VARIANTS["uvicorn-wsproto"])
    try:
        cells = {
            case_id: handle.run(case_by_id(case_id)).observation
            for case_id in ("8.1", "8.5", "8.9", "8.17", "8.21", "8.23")
        }
    finally:
        handle.close()
    assert {case_id: o.cell for case_id, o in cells.items()} == {
        "8.1": "denial ok, 2nd none",
        "8.5": "denial ok, closed",
        "8.9": "denial ok",
        "8.17": "denial ok",
        "8.21": "serves others, deny() response",
        "8.23": "denial ok, deny() response",
    }
    assert all(observation.conforms for observation in cells.values())
    assert handle.hangs == handle.crashes == 0

"""The emitted messages type-check against ``asgiref.typing``; a drifted copy would not."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

HERE = Path(__file__).parent
ROOT = HERE.parent

# A message type that drifted from asgiref's (a list where asgiref says Iterable): TypedDict
# values are invariant, so the checker must refuse it. This proves the positive check has teeth.
DRIFTED = """
from collections.abc import Iterable
from typing import Literal, TypedDict
from asgiref.typing import ASGISendEvent

class Start(TypedDict):
    type: Literal["websocket.http.response.start"]
    status: int
    headers: list[tuple[bytes, bytes]]

def convert(message: Start) -> ASGISendEvent:
    return message
"""


def run_mypy(*targets: str) -> tuple[str, int]:
    stdout, stderr, status = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache"), *targets]
    )
    return stdout + stderr, status


def test_messages_are_asgiref_send_events() -> None:
    output, status = run_mypy(str(HERE / "typing" / "check_asgiref.py"))
    assert status == 0, output


def test_a_drifted_message_type_is_refused(tmp_path: Path) -> None:
    drifted = tmp_path / "drifted.py"
    drifted.write_text(DRIFTED)
    output, status = run_mypy(str(drifted))
    assert status == 1
    assert "Incompatible return value type" in output


@pytest.mark.parametrize("name", ["status", "more_body", "reason"])
def test_every_key_is_required(tmp_path: Path, name: str) -> None:
    """Outputs are strict: leaving out a key the spec names is a type error."""
    messages = {
        "status": '{"type": "websocket.http.response.start", "headers": []}',
        "more_body": '{"type": "websocket.http.response.body", "body": b""}',
        "reason": '{"type": "websocket.close", "code": 1008}',
    }
    source = tmp_path / "missing.py"
    source.write_text(
        f"from asgi_ws_deny import DenialMessage\nmessage: DenialMessage = {messages[name]}\n"
    )
    output, status = run_mypy(str(source))
    assert status == 1, output

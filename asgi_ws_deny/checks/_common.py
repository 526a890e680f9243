"""What the ready-made checks share: their logger, the token pattern, compact JSON denials."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from asgi_ws_deny import _deny

if TYPE_CHECKING:
    pass


_logger = logging.getLogger("asgi_ws_deny.checks")

# RFC 9110 section 5.6.2: token = 1*tchar. Subprotocol names (RFC 6455 section 4.1) and cookie
# names (RFC 6265 section 4.1.1) are tokens.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _json_denial(status: int, data: dict[str, Any], headers: _deny.Headers = ()) -> _deny.Denial:
    return _deny.Denial.json(status, data, headers)

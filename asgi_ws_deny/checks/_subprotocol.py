"""`SubprotocolCheck`: the client must offer one of the supported subprotocols."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgi_ws_deny import _deny
from asgi_ws_deny.handshake import (
    CheckResult,
    Handshake,
    InvalidCheckError,
)

if TYPE_CHECKING:
    pass
from asgi_ws_deny.checks._common import _TOKEN, _json_denial, _logger


class SubprotocolCheck:
    """Require that the client offers one of ``supported`` subprotocols; refuse with 400.

    ``SubprotocolCheck(*supported, denial=None)``

    Names compare exactly, as the client compares the one the server selects (RFC 6455 section
    4.1: a client fails the connection when the server names a subprotocol it did not offer).
    A handshake that offers none of them is refused with 400, ``content-type:
    application/json`` and ``{"error":"unsupported_subprotocol","supported":[...]}``, or with
    ``denial``. Why 400: the request lacks something the endpoint requires, a client error;
    406 belongs to content negotiation through ``Accept`` fields and 426 to the ``Upgrade``
    mechanism itself, which the client already used correctly. The application still selects
    the subprotocol in its accept. Raises `InvalidCheckError` for no names or a name that is
    not a token (RFC 6455 section 4.1).
    """

    __slots__ = ("denial", "supported")

    def __init__(self, *supported: str, denial: _deny.Denial | None = None) -> None:
        if not supported:
            raise InvalidCheckError("SubprotocolCheck needs at least one subprotocol name")
        for name in supported:
            if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
                raise InvalidCheckError(
                    f"subprotocol names are tokens (RFC 6455 section 4.1), got {name!r}"
                )
        if denial is not None and not isinstance(denial, _deny.Denial):
            raise InvalidCheckError(f"denial must be a Denial, got {type(denial).__name__}")
        self.supported = tuple(dict.fromkeys(supported))
        self.denial = (
            _json_denial(400, {"error": "unsupported_subprotocol", "supported": [*self.supported]})
            if denial is None
            else denial
        )

    def __call__(self, handshake: Handshake) -> CheckResult:
        if any(offered in self.supported for offered in handshake.subprotocols):
            return None
        # How many, never which: a client may offer a token as a subprotocol ("bearer.<token>").
        _logger.debug(
            "WebSocket handshake offering %d subprotocol(s), none of them supported, refused on %r",
            len(handshake.subprotocols),
            handshake.path,
        )
        return self.denial

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.supported))})"

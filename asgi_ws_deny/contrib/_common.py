"""What the framework adapters share; no framework is imported here.

Each helper is the guard's or the core's own, under the name the adapters use, so that an
adapter denies, names a check and cuts a close reason exactly as the guard does.
"""

from __future__ import annotations

from asgi_ws_deny._deny import _as_denial as as_denial
from asgi_ws_deny.guard import _name as check_name
from asgi_ws_deny.guard import _phrase as phrase
from asgi_ws_deny.guard import _truncate_reason as close_reason

__all__ = ("as_denial", "check_name", "close_reason", "phrase")

"""Framework adapters: one module per framework, each importing its framework only there.

Import the one you use, ``from asgi_ws_deny.contrib import starlette``; this package imports none
of them, so no framework is needed to use the rest of asgi-ws-deny.
"""

__all__ = ()

"""Django Channels: deny a WebSocket handshake with a real response from ``connect()``.

- ``/ws``: the consumer calls ``await self.deny(...)`` in ``connect()``;
- ``/denied``: the consumer raises `Denied` in ``connect()``.

A user named ``alice`` (``x-user`` header) is greeted; anyone else gets ``401`` with a
``www-authenticate`` header and a JSON body where the server offers the denial-response
extension (uvicorn, hypercorn), and ``403`` where it does not (daphne). Either way the consumer
ends at once, without waiting in ``receive()``.

Run it with ``daphne examples.frameworks.channels_app:application`` or
``uvicorn examples.frameworks.channels_app:application``.
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings

# A project has these in its settings module; this one-file example configures Django itself.
if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["channels"],
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from asgi_ws_deny import Denial, Denied
from asgi_ws_deny.contrib.channels import DenialMixin

ALLOWED_USERS = frozenset({"alice"})
UNKNOWN_USER = Denial.json(
    401, {"error": "unknown user"}, {"www-authenticate": 'Bearer realm="chat"'}
)


def user(scope: dict[str, Any]) -> str | None:
    value = dict(scope["headers"]).get(b"x-user")
    return None if value is None else value.decode("latin-1")


class Chat(DenialMixin, AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if user(self.scope) not in ALLOWED_USERS:
            await self.deny(UNKNOWN_USER)
            return
        await self.accept()
        await self.send(text_data=f"hello {user(self.scope)}")
        await self.close()


class RaisingChat(DenialMixin, AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if user(self.scope) not in ALLOWED_USERS:
            raise Denied(UNKNOWN_USER)
        await self.accept()
        await self.send(text_data=f"hello {user(self.scope)}")
        await self.close()


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws", Chat.as_asgi()),
                path("denied", RaisingChat.as_asgi()),
            ]
        )
    }
)

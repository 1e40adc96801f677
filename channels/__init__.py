"""Delivery channels: one module per provider adapter, built on first use.

``channel_table`` names the channels; ``ADAPTERS`` says which class delivers each. Importing
this package imports no adapter module and builds no adapter: :func:`get_channel` does, once
per process, when a channel is first used.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping

from channel_table import (
    BY_RECIPIENT_TYPE,
    EMAIL,
    INAPP,
    LETTER,
    SMS,
    TELEGRAM,
    VIBER,
    WEBHOOK,
    WEBPUSH,
    WHATSAPP,
)
from channels.base import Channel

#: Each channel's adapter class (``module:Class``), by channel name.
ADAPTERS: dict[str, str] = {
    EMAIL.name: "channels.email:EmailChannel",
    SMS.name: "channels.sms:SmsChannel",
    VIBER.name: "channels.viber:ViberChannel",
    TELEGRAM.name: "channels.telegram:TelegramChannel",
    WHATSAPP.name: "channels.whatsapp:WhatsAppChannel",
    WEBPUSH.name: "channels.webpush:WebPushChannel",
    INAPP.name: "channels.inapp:InAppChannel",
    LETTER.name: "channels.letter:LetterChannel",
    WEBHOOK.name: "channels.webhook:WebhookChannel",
}

#: Recipient ``type`` → channel name, for recipients addressed directly.
RECIPIENT_TYPES: dict[str, str] = {kind: row.name for kind, row in BY_RECIPIENT_TYPE.items()}

_built: dict[str, Channel] = {}
_building = threading.Lock()


def adapter_class(name: str) -> type[Channel]:
    """The class that delivers channel ``name``, its module imported now if it was not yet."""
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def get_channel(name: str) -> Channel:
    """The adapter of channel ``name`` (``KeyError`` if there is none), built on first use and
    shared by the process's threads from then on."""
    adapter = _built.get(name)
    if adapter is None:
        with _building:
            if name not in _built:
                _built[name] = adapter_class(name)()
            adapter = _built[name]
    return adapter


class _Adapters(Mapping[str, Channel]):
    """Every channel's adapter by name. Listing the names builds nothing; looking a channel up
    builds its adapter (:func:`get_channel`)."""

    def __getitem__(self, name: str) -> Channel:
        return get_channel(name)

    def __iter__(self) -> Iterator[str]:
        return iter(ADAPTERS)

    def __len__(self) -> int:
        return len(ADAPTERS)

    def __contains__(self, name: object) -> bool:
        return name in ADAPTERS


#: Every channel Herald can deliver through, by the name the API and the queues use.
REGISTRY: Mapping[str, Channel] = _Adapters()


def configured_channels() -> set[str]:
    """The channels this server has the settings (credentials) for; the others are refused at
    the API and skipped by fan-out."""
    return {name for name in ADAPTERS if get_channel(name).is_configured()}

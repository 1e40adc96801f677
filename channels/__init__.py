"""Delivery channels: one module per provider adapter, registered by name."""

from channels.base import Channel
from channels.email import EmailChannel
from channels.inapp import InAppChannel
from channels.letter import LetterChannel
from channels.sms import SmsChannel
from channels.telegram import TelegramChannel
from channels.viber import ViberChannel
from channels.webhook import WebhookChannel
from channels.webpush import WebPushChannel
from channels.whatsapp import WhatsAppChannel

#: Every channel Herald can deliver through, by the name the API and the queues use.
REGISTRY: dict[str, Channel] = {
    channel.name: channel
    for channel in (
        EmailChannel(),
        InAppChannel(),
        WebPushChannel(),
        TelegramChannel(),
        ViberChannel(),
        SmsChannel(),
        WhatsAppChannel(),
        LetterChannel(),
        WebhookChannel(),
    )
}

#: Recipient ``type`` → channel name, for recipients addressed directly.
RECIPIENT_TYPES: dict[str, str] = {
    channel.recipient_type: name for name, channel in REGISTRY.items()
}


def get_channel(name: str) -> Channel:
    return REGISTRY[name]


def configured_channels() -> set[str]:
    """The channels this server has the settings (credentials) for; the others are refused at
    the API and skipped by fan-out."""
    return {name for name, channel in REGISTRY.items() if channel.is_configured()}

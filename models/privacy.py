"""What a sender may see of the people it reaches through the contact registry.

A sender that names a person by IDNP learns that its message went out, on which channel and how
it ended, but not the address Herald found for the person: that needs ``contacts:read`` (admins
hold it). Every surface that shows a message to its sender (API responses, search, export,
delivery callbacks) asks :func:`may_see_destination` and shows :func:`destination_as_shown`;
search filters and sorts through :func:`visible_destinations`, its SQL form.

A destination is Herald's own finding when the message names a person (``recipient_key``, an
IDNP) and goes to an address other than that key: the registry's email, phone, push
subscription or chat id that fan-out resolved. Addresses the sender gave itself, and the
person's cabinet copy (addressed by the IDNP the sender gave), are the sender's own. The rule
reads the message row alone, so a listing decides it without a query per row, and it still
holds once the contact is deleted (its messages' ``contact_id`` is then null).

Masks, by channel: email ``i***@example.md`` (first character and domain); SMS and WhatsApp
``+373******01`` (country code and last two digits); web push the push service's origin
(``https://fcm.googleapis.com``); Telegram and Viber ids all but their last two characters
starred (``*******56``); anything else ``***``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

from peewee import Expression

from channel_table import EMAIL, SMS, TELEGRAM, VIBER, WEBPUSH, WHATSAPP
from models.message import Message
from models.sender import Sender

#: The grant that shows the addresses found in the contact registry.
CONTACTS_READ = "contacts:read"
STARS = "***"
#: ``details`` keys that name the recipient (Telegram reports the chat it delivered to).
RECIPIENT_DETAILS = frozenset({"chatId"})


def may_see_destination(sender: Sender | None, message: Message) -> bool:
    """Whether ``sender`` may see ``message``'s destination as stored: an address it gave
    itself, or any address when it holds ``contacts:read``. No sender (None) sees none that
    the registry gave."""
    if sender is not None and sender.can(CONTACTS_READ):
        return True
    return message.recipient_key is None or message.destination == message.recipient_key


def visible_destinations(sender: Sender | None) -> Expression | None:
    """:func:`may_see_destination` in SQL: the messages whose destination ``sender`` may see,
    or None when it may see every one."""
    if sender is not None and sender.can(CONTACTS_READ):
        return None
    return Message.recipient_key.is_null() | (Message.destination == Message.recipient_key)


def destination_as_shown(sender: Sender | None, message: Message) -> str:
    """``message``'s destination, masked unless ``sender`` may see it."""
    if may_see_destination(sender, message):
        return message.destination
    return masked(message.channel, message.destination)


def text_as_shown(sender: Sender | None, message: Message, text: str | None) -> str | None:
    """``text`` about ``message`` (an error, a provider's reply), with the destination masked
    wherever it occurs unless ``sender`` may see it."""
    if text is None or may_see_destination(sender, message):
        return text
    mask = masked(message.channel, message.destination)
    for needle in sorted(_spellings(message.channel, message.destination), key=len, reverse=True):
        text = text.replace(needle, mask)
    return text


def details_as_shown(sender: Sender | None, message: Message) -> dict | None:
    """What the channel reported about ``message``, without what names the recipient unless
    ``sender`` may see the destination."""
    details = message.details
    if details is None or may_see_destination(sender, message):
        return details
    return {
        key: text_as_shown(sender, message, value) if isinstance(value, str) else value
        for key, value in details.items()
        if key not in RECIPIENT_DETAILS
    }


def masked(channel: str, destination: str) -> str:
    """``destination`` on ``channel`` with the part that identifies the person starred."""
    if not destination:
        return ""
    return MASKS.get(channel, _everything)(destination)


def _everything(destination: str) -> str:
    return STARS


def _email(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return f"{local[0]}***@{domain}" if at and local and domain else STARS


def _phone(number: str) -> str:
    if len(number) < 8:
        return STARS
    return number[:4] + "*" * (len(number) - 6) + number[-2:]


def _identifier(value: str) -> str:
    if len(value) < 6:
        return STARS
    return "*" * (len(value) - 2) + value[-2:]


def _push_service(subscription: str) -> str:
    try:
        parts = urlsplit(_endpoint(subscription))
        host = parts.hostname
        port = f":{parts.port}" if parts.port else ""
    except (TypeError, ValueError):
        return STARS
    return f"{parts.scheme}://{host}{port}" if parts.scheme and host else STARS


def _endpoint(subscription: str) -> str:
    loaded = json.loads(subscription)
    if not isinstance(loaded, dict) or not isinstance(loaded.get("endpoint"), str):
        raise ValueError("not a push subscription")
    return loaded["endpoint"]


MASKS: dict[str, Callable[[str], str]] = {
    EMAIL.name: _email,
    SMS.name: _phone,
    WHATSAPP.name: _phone,
    WEBPUSH.name: _push_service,
    TELEGRAM.name: _identifier,
    VIBER.name: _identifier,
}


def _spellings(channel: str, destination: str) -> set[str]:
    """The ways a provider's text may write ``destination``: as stored, a phone number without
    its ``+``, a push subscription's endpoint and keys."""
    found = {destination}
    if channel in (SMS.name, WHATSAPP.name):
        found.add(destination.lstrip("+"))
    if channel == WEBPUSH.name:
        try:
            loaded = json.loads(destination)
            found.add(_endpoint(destination))
            found.update(value for value in (loaded.get("keys") or {}).values() if value)
        except (TypeError, ValueError, AttributeError):
            pass
    return {text for text in found if isinstance(text, str) and len(text) >= 3}

"""Test data, made in one place."""

from __future__ import annotations

from dataclasses import dataclass

from models.message import Message
from models.sender import Sender, create_sender


@dataclass
class SenderWithKey:
    sender: Sender
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_sender(name: str, admin: bool = False, permissions=()) -> SenderWithKey:
    sender, key = create_sender(name, admin=admin, permissions=list(permissions))
    return SenderWithKey(sender, key)


def email_notification(*addresses: str, **extra) -> dict:
    """A valid POST /v1/notifications body sending one email to each address."""
    body = {
        "recipients": [
            {"type": "email", "value": address} for address in addresses or ["ion@example.md"]
        ],
        "message": {"subject": "Programare confirmată", "body": "Vă așteptăm luni la ora 9:00."},
    }
    body.update(extra)
    return body


def message(message_id) -> Message:
    """The message row as it is now in the database."""
    return Message.get_by_id(message_id)

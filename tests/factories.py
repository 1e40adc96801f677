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


def visit_reminder(**overrides) -> dict:
    """A POST /v1/templates body: a visit reminder in Romanian, Russian and English."""
    body = {
        "code": "visit-reminder",
        "name": "Visit reminder",
        "category": "housing",
        "defaultLanguage": "ro",
        "attributes": [
            {"name": "visitDate", "required": True, "example": "2026-12-01T09:00:00+02:00"},
            {"name": "officerName", "required": False, "example": "Ana Rusu"},
        ],
        "contents": [
            {
                "channel": "email",
                "language": "ro",
                "subject": "Vizită pe {{ visitDate | date }}",
                "body": "Vă vizităm pe {{ visitDate | date }}."
                "{% if officerName is defined %} Ofițer: {{ officerName }}.{% endif %}",
                "html": "<p>Vă vizităm pe <b>{{ visitDate | date }}</b>."
                "{% if officerName is defined %} Ofițer: {{ officerName }}.{% endif %}</p>",
            },
            {
                "channel": "email",
                "language": "ru",
                "subject": "Визит {{ visitDate | date }}",
                "body": "Мы придём {{ visitDate | date }}.",
            },
            {
                "channel": "email",
                "language": "en",
                "subject": "Visit on {{ visitDate | date }}",
                "body": "We visit on {{ visitDate | date }}.",
            },
            {
                "channel": "default",
                "language": "ro",
                "body": "Vizită: {{ visitDate | date('short') }}",
            },
        ],
    }
    body.update(overrides)
    return body


def idnp(serial: int) -> str:
    """A valid IDNP (check digit computed) for a serial number."""
    digits = f"2{serial:011d}"
    check = sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(digits)) % 10
    return f"{digits}{check}"


def contact_body(serial: int = 1, **overrides) -> dict:
    """A POST /v1/contacts body with an email and a Telegram channel."""
    body = {
        "idnp": idnp(serial),
        "name": f"Persoana {serial}",
        "preferredLanguage": "ro",
        "attributes": {"district": "Centru"},
        "channels": [
            {"type": "email", "address": f"p{serial}@example.md", "priority": 10},
            {"type": "telegram", "address": str(100000000 + serial), "priority": 20},
        ],
    }
    body.update(overrides)
    return body


NOTIFICATION_LABELS = ("service_name", "event", "target_id", "target_type", "reference")


def stored_message(sender: Sender, *, notification=None, created_at=None, **columns) -> Message:
    """A message row written directly with any columns (and a notification with the labels
    among ``columns``), for tests that need history at chosen times and states."""
    from models.base import utcnow
    from models.notification import Notification

    created_at = created_at or utcnow()
    labels = {name: columns.pop(name) for name in NOTIFICATION_LABELS if name in columns}
    if notification is None:
        content = {"subject": "Programare", "body": "Vă așteptăm luni."}
        notification = Notification.create(
            sender=sender, content=content, created_at=created_at, **labels
        )
    row = {
        "channel": "email",
        "destination": "ion@example.md",
        "state": "sent",
        "updated_at": created_at,
        **columns,
    }
    return Message.create(notification=notification, sender=sender, created_at=created_at, **row)

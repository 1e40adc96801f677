"""Actions taken on notifications (Hackney "screen notifications"): an append-only audit trail
of who did what about a notification, with a note, and when."""

from __future__ import annotations

from enum import StrEnum

from peewee import CharField, ForeignKeyField, TextField

from models.base import BaseModel, UTCDateTimeField, utcnow
from models.db import is_sqlite, write_transaction
from models.notification import Notification
from models.sender import Sender


class ActionType(StrEnum):
    INITIATED = "Initiated"
    APPROVED = "Approved"
    VALIDATE = "Validate"
    REJECTED = "Rejected"
    IS_READ = "IsRead"


class NotificationAction(BaseModel):
    """One recorded action. ``sender`` is set when an API key recorded it, ``recipient_key``
    when a user did through their inbox. Rows are only ever inserted."""

    notification = ForeignKeyField(Notification, on_delete="CASCADE", index=False)
    action_type = CharField(max_length=20)
    action_note = TextField(null=True)
    performed_by = CharField(max_length=200, null=True)
    recipient_key = CharField(max_length=200, null=True, help_text="the user, if through inbox")
    sender = ForeignKeyField(Sender, null=True, on_delete="SET NULL", index=False)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("notification", "created_at"), False),)


class NotificationDeleted(Exception):
    """The notification was soft-deleted: no more actions may be recorded on it."""


def record_action(
    notification_id,
    action_type: str,
    *,
    note: str | None = None,
    performed_by: str | None = None,
    user: str | None = None,
    sender_id: int | None = None,
) -> NotificationAction:
    """Append an action; raises :class:`NotificationDeleted` if the notification is deleted.

    The notification row is locked (SQLite: the write lock) while its ``deleted_at`` is checked
    and the action inserted, so an action racing a deletion is recorded before it or refused."""
    with write_transaction():
        query = Notification.select(Notification.deleted_at).where(
            Notification.id == notification_id
        )
        notification = (query if is_sqlite() else query.for_update()).first()
        if notification is None or notification.deleted_at is not None:
            raise NotificationDeleted(str(notification_id))
        return NotificationAction.create(
            notification=notification_id,
            action_type=action_type,
            action_note=note,
            performed_by=performed_by,
            recipient_key=user,
            sender=sender_id,
            created_at=utcnow(),
        )


def actions_of(notification_id):
    """A notification's actions, oldest first (a query, for paginating)."""
    return (
        NotificationAction.select()
        .where(NotificationAction.notification == notification_id)
        .order_by(NotificationAction.created_at, NotificationAction.id)
    )


def action_taken(notification_id, user: str | None) -> bool:
    """Whether an action other than IsRead was recorded on the notification by a sender (for
    everyone) or by this user."""
    who = NotificationAction.recipient_key.is_null()
    if user is not None:
        who |= NotificationAction.recipient_key == user
    return (
        NotificationAction.select(NotificationAction.id)
        .where(
            (NotificationAction.notification == notification_id)
            & (NotificationAction.action_type != ActionType.IS_READ)
            & who
        )
        .exists()
    )

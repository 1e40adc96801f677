"""Actions taken on notifications (Hackney "screen notifications"): an append-only audit trail
of who did what about a notification, with a note, and when."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from peewee import AutoField, Case, CharField, ForeignKeyField, TextField, fn

from models.base import BaseModel, UTCDateTimeField, utcnow
from models.db import is_sqlite, write_transaction
from models.errors import ModelError
from models.notification import Notification
from models.sender import Sender


class ActionType(StrEnum):
    INITIATED = "Initiated"
    APPROVED = "Approved"
    VALIDATE = "Validate"
    REJECTED = "Rejected"
    IS_READ = "IsRead"


#: What an erased user key of an action reads.
REDACTED = ""


class NotificationAction(BaseModel):
    """One recorded action. ``sender`` is set when an API key recorded it, ``recipient_key``
    when a user did through their inbox. Rows are only ever inserted."""

    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    notification = ForeignKeyField(Notification, on_delete="CASCADE", index=False)
    notification_id: UUID  # peewee's accessor for the key's raw value
    action_type = CharField(max_length=20)
    action_note = TextField(null=True)
    performed_by = CharField(max_length=200, null=True)
    recipient_key = CharField(max_length=200, null=True, help_text="the user, if through inbox")
    sender = ForeignKeyField(Sender, null=True, on_delete="SET NULL", index=False)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("notification", "created_at"), False),)


class NotificationDeleted(ModelError):
    """The notification was soft-deleted, or purged after retention: no more actions may be
    recorded on it (an action recorded after the purge would keep who took it for ever)."""


def record_action(
    notification_id,
    action_type: str,
    *,
    note: str | None = None,
    performed_by: str | None = None,
    user: str | None = None,
    sender_id: int | None = None,
) -> NotificationAction:
    """Append an action; raises :class:`NotificationDeleted` if the notification is deleted
    or purged.

    The notification row is locked (SQLite: the write lock) while its ``deleted_at`` and
    ``purged_at`` are checked and the action inserted, so an action racing a deletion or the
    purge is recorded before it (and the purge erases who took it) or refused."""
    with write_transaction():
        query = Notification.select(Notification.deleted_at, Notification.purged_at).where(
            Notification.id == notification_id
        )
        notification = (query if is_sqlite() else query.for_update()).first()
        if notification is None or (notification.deleted_at or notification.purged_at):
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


def erase_actors(notification_ids: list) -> int:
    """Erase who took the actions on these notifications, and their notes (free text about the
    case): what was done, when, and through which sender key stay; an action a user took
    through their inbox keeps an empty ``recipient_key``, so it still reads as one. For the
    purge, inside its transaction; how many actions."""
    through_inbox = Case(None, ((NotificationAction.recipient_key.is_null(), None),), REDACTED)
    return (
        NotificationAction.update(performed_by=None, action_note=None, recipient_key=through_inbox)
        .where(NotificationAction.notification.in_(notification_ids))
        .execute()
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


def latest_actions(notification_ids: list) -> dict:
    """The last action recorded on each of these notifications, by notification id (one
    query, whatever their trails' length)."""
    last = (
        NotificationAction.select(fn.MAX(NotificationAction.id))
        .where(NotificationAction.notification.in_(notification_ids))
        .group_by(NotificationAction.notification)
    )
    query = NotificationAction.select().where(NotificationAction.id.in_(last))
    return {action.notification_id: action for action in query}


def marked_read(notification_ids: list) -> set:
    """Which of these notifications have had an IsRead action recorded (one query)."""
    query = (
        NotificationAction.select(NotificationAction.notification)
        .where(
            NotificationAction.notification.in_(notification_ids)
            & (NotificationAction.action_type == ActionType.IS_READ)
        )
        .distinct()
    )
    return {action.notification_id for action in query}

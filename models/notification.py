"""Notifications as senders submit them, and the idempotency records that guard their creation."""

from __future__ import annotations

from datetime import datetime

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, UUIDField

from models.base import BaseModel, JSONField, UTCDateTimeField, new_id, utcnow
from models.db import write_transaction
from models.reminder import Reminder
from models.sender import Sender, visible_to
from models.states import FanoutState
from models.template import TemplateVersion


class Notification(BaseModel):
    """One send request: what to say (``content``) and how the sender labels it."""

    id = UUIDField(primary_key=True, default=new_id)
    sender = ForeignKeyField(Sender, backref="notifications", on_delete="CASCADE", index=False)
    service_name = CharField(max_length=100, null=True)
    event = CharField(max_length=100, null=True)
    target_id = CharField(max_length=100, null=True)
    target_type = CharField(max_length=100, null=True)
    reference = CharField(max_length=255, null=True)
    content = JSONField(help_text="the message as sent, when no template is used")
    template_version = ForeignKeyField(TemplateVersion, null=True, on_delete="RESTRICT")
    attributes = JSONField(null=True, help_text="template attributes shared by all recipients")
    channels = JSONField(null=True, help_text="channels IDNP recipients may use (null: all)")
    channel_policy = CharField(max_length=10, default="all", help_text="all or fallback")
    is_broadcast = BooleanField(default=False)
    inbox_broadcast = BooleanField(default=False, help_text="one row in every user's inbox")
    recipients = JSONField(null=True, help_text="IDNP recipients still to resolve")
    fanout_state = CharField(
        max_length=10, default=FanoutState.NONE, help_text="none, pending or done"
    )
    fanout_cursor = IntegerField(default=0, help_text="resolved so far: list offset or contact id")
    fanout_updated_at = UTCDateTimeField(null=True)
    language = CharField(max_length=16, null=True, help_text="for recipients without their own")
    send_at = UTCDateTimeField(null=True, help_text="when to send; null: now")
    valid_till = UTCDateTimeField(null=True, help_text="after this: in-app hidden, push not sent")
    urgent = BooleanField(default=False, help_text="bypasses the recipient's quiet hours")
    require_action = BooleanField(default=False, help_text="in-app: an action is expected")
    deleted_at = UTCDateTimeField(null=True, help_text="soft-deleted by its sender")
    reminder = ForeignKeyField(Reminder, null=True, on_delete="SET NULL", index=False)
    occurrence_at = UTCDateTimeField(null=True, help_text="the reminder occurrence it fired for")
    purged_at = UTCDateTimeField(null=True, help_text="personal data redacted (retention)")
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("sender", "created_at"), False),
            (("fanout_state", "fanout_updated_at"), False),
            (("inbox_broadcast", "created_at"), False),
            (("reminder", "occurrence_at"), True),
            (("valid_till",), False),
            (("purged_at", "created_at"), False),
            (("event", "created_at"), False),
            (("service_name", "created_at"), False),
            (("target_id", "target_type"), False),
            (("reference",), False),
        )


class IdempotencyRecord(BaseModel):
    """The first response to a request made with an ``Idempotency-Key``, per sender and key.

    A record is kept for IDEMPOTENCY_TTL_SECONDS (then the key is forgotten and the scheduler
    deletes it), and never past its notification's retention: the purge deletes it."""

    sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
    key = CharField(max_length=255)
    fingerprint = CharField(max_length=64, help_text="SHA-256 of the canonical request body")
    notification = ForeignKeyField(Notification, on_delete="CASCADE")
    status_code = IntegerField(null=True)
    response = JSONField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("sender", "key"), True), (("created_at",), False))


def idempotency_record(sender: Sender, key: str, since: datetime) -> IdempotencyRecord | None:
    """``sender``'s record of ``key`` if made at or after ``since`` (an older one has expired)."""
    return IdempotencyRecord.get_or_none(
        (IdempotencyRecord.sender == sender)
        & (IdempotencyRecord.key == key)
        & (IdempotencyRecord.created_at >= since)
    )


def forget_expired_key(sender: Sender, key: str, since: datetime) -> None:
    """Delete ``sender``'s record of ``key`` if it was made before ``since``, so that the key
    can guard a new request (the scheduler may not have deleted it yet)."""
    IdempotencyRecord.delete().where(
        (IdempotencyRecord.sender == sender)
        & (IdempotencyRecord.key == key)
        & (IdempotencyRecord.created_at < since)
    ).execute()


def expire_idempotency_records(before: datetime, limit: int) -> int:
    """Delete up to ``limit`` idempotency records made before ``before``, oldest first, by the
    index on ``created_at``; how many."""
    oldest = (
        IdempotencyRecord.select(IdempotencyRecord.id)
        .where(IdempotencyRecord.created_at < before)
        .order_by(IdempotencyRecord.created_at)
        .limit(limit)
    )
    with write_transaction():
        return IdempotencyRecord.delete().where(IdempotencyRecord.id.in_(oldest)).execute()


def forget_idempotency(notification_ids: list) -> int:
    """Delete the idempotency records (key, body fingerprint, first response) of these
    notifications; how many. For the purge, inside its transaction."""
    return (
        IdempotencyRecord.delete()
        .where(IdempotencyRecord.notification.in_(notification_ids))
        .execute()
    )


def notifications_for_recipient(sender: Sender, recipient_key: str):
    """Notifications with a message for this IDNP or user id that ``sender`` may see, newest
    first (a query, for paginating)."""
    from models.message import Message

    sent_to = Message.select(Message.notification).where(Message.recipient_key == recipient_key)
    query = Notification.select().where(Notification.id.in_(sent_to))
    return visible_to(sender, query, Notification).order_by(Notification.created_at.desc())


def stalled_fanouts(before) -> list[str]:
    """Notifications whose fan-out is pending and has not moved since ``before``; their
    timestamp is touched so each is restarted once per interval."""
    stalled = [
        str(n.id)
        for n in Notification.select(Notification.id).where(
            (Notification.fanout_state == FanoutState.PENDING)
            & (Notification.fanout_updated_at < before)
        )
    ]
    if stalled:
        (
            Notification.update(fanout_updated_at=utcnow())
            .where(Notification.id.in_(stalled))
            .execute()
        )
    return stalled


def notification_for(sender: Sender, notification_id) -> Notification | None:
    """The notification with this id if ``sender`` may see it (its own, or any for an admin)."""
    query = Notification.select().where(Notification.id == notification_id)
    return visible_to(sender, query, Notification).first()


def notification_deleted(notification_id) -> bool:
    """Whether the notification has been deleted by its sender, read now (one indexed read of
    one column: workers keep notifications cached, this must not be)."""
    deleted_at = (
        Notification.select(Notification.deleted_at)
        .where(Notification.id == notification_id)
        .scalar()
    )
    return deleted_at is not None

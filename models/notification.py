"""Notifications as senders submit them."""

from __future__ import annotations

from uuid import UUID

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, UUIDField

from models.base import BaseModel, JSONField, UTCDateTimeField, new_id, utcnow
from models.db import run_sql
from models.reminder import Reminder
from models.sender import Sender, visible_to
from models.states import FanoutState
from models.template import TemplateVersion


class Notification(BaseModel):
    """One send request: what to say (``content``) and how the sender labels it."""

    id = UUIDField(primary_key=True, default=new_id)
    sender = ForeignKeyField(Sender, backref="notifications", on_delete="CASCADE", index=False)
    sender_id: int  # peewee's accessor for the key's raw value
    service_name = CharField(max_length=100, null=True)
    event = CharField(max_length=100, null=True)
    target_id = CharField(max_length=100, null=True)
    target_type = CharField(max_length=100, null=True)
    reference = CharField(max_length=255, null=True)
    content = JSONField(help_text="the message as sent, when no template is used")
    template_version = ForeignKeyField(TemplateVersion, null=True, on_delete="RESTRICT")
    template_version_id: UUID | None  # peewee's accessor for the key's raw value
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
    critical = BooleanField(default=False, help_text="bypasses opt-outs (grant send_critical)")
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


def notification_for(sender: Sender, notification_id) -> Notification | None:
    """The notification with this id if ``sender`` may see it (its own, or any for an admin)."""
    query = Notification.select().where(Notification.id == notification_id)
    return visible_to(sender, query, Notification).first()


def notification_deleted(notification_id) -> bool:
    """Whether the notification has been deleted by its sender, read now (one indexed read of
    one column: workers keep notifications cached, this must not be)."""
    row = run_sql(_DELETED_AT, (Notification.id.db_value(notification_id),)).fetchone()
    return row is not None and row[0] is not None


#: What notification_deleted reads, built once (peewee's building cost more than the read).
_DELETED_AT = 'SELECT "deleted_at" FROM "notification" WHERE "id" = ?'

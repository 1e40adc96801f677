"""Idempotency records: the first response to a request made with an ``Idempotency-Key``, kept
per sender and key, so that a repeated request creates no second notification
(``tasks.submit``) and is answered as the first was (``api.idempotency``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import AutoField, CharField, ForeignKeyField, IntegerField

from models.base import BaseModel, JSONField, UTCDateTimeField, utcnow
from models.db import write_transaction
from models.errors import ModelError
from models.notification import Notification
from models.sender import Sender
from settings import settings


@dataclass(frozen=True)
class Idempotency:
    """A request's ``Idempotency-Key`` and the fingerprint of its body."""

    key: str
    fingerprint: str


class IdempotencyRecord(BaseModel):
    """The first response to a request made with an ``Idempotency-Key``, per sender and key.

    A record is kept for IDEMPOTENCY_TTL_SECONDS (then the key is forgotten and the scheduler
    deletes it), and never past its notification's retention: the purge deletes it."""

    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
    key = CharField(max_length=255)
    fingerprint = CharField(max_length=64, help_text="SHA-256 of the canonical request body")
    notification = ForeignKeyField(Notification, on_delete="CASCADE")
    status_code = IntegerField(null=True)
    response = JSONField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("sender", "key"), True), (("created_at",), False))


class IdempotencyReplay(ModelError):
    """The key was used before; ``record`` holds the first request's outcome."""

    def __init__(self, record: IdempotencyRecord):
        super().__init__(record.key)
        self.record = record


def remembered_since() -> datetime:
    """Idempotency records made before this moment have expired (IDEMPOTENCY_TTL_SECONDS)."""
    return utcnow() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)


def find_idempotency_record(sender: Sender, key: str) -> IdempotencyRecord | None:
    """``sender``'s record of ``key`` while it is remembered (IDEMPOTENCY_TTL_SECONDS)."""
    return IdempotencyRecord.get_or_none(
        (IdempotencyRecord.sender == sender)
        & (IdempotencyRecord.key == key)
        & (IdempotencyRecord.created_at >= remembered_since())
    )


def record_idempotency(
    sender: Sender,
    idempotency: Idempotency,
    notification: Notification,
    response: tuple[int, dict] | None = None,
) -> IdempotencyRecord:
    """Record that ``idempotency`` created ``notification``, in the caller's transaction, with
    the ``response`` (status code, JSON body) to replay when it is known already (otherwise
    :func:`save_idempotent_response` saves it later). An expired record of the key is deleted
    first (the scheduler may not have deleted it yet); a remembered one makes this raise
    ``IntegrityError``."""
    IdempotencyRecord.delete().where(
        (IdempotencyRecord.sender == sender)
        & (IdempotencyRecord.key == idempotency.key)
        & (IdempotencyRecord.created_at < remembered_since())
    ).execute()
    return IdempotencyRecord.create(
        sender=sender,
        key=idempotency.key,
        fingerprint=idempotency.fingerprint,
        notification=notification,
        status_code=response[0] if response else None,
        response=response[1] if response else None,
    )


def save_idempotent_response(sender: Sender, key: str, status_code: int, body: dict) -> None:
    """Keep the response to the first request made with ``key``, to replay it verbatim."""
    (
        IdempotencyRecord.update(status_code=status_code, response=body)
        .where((IdempotencyRecord.sender == sender) & (IdempotencyRecord.key == key))
        .execute()
    )


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

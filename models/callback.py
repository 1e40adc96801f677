"""Delivery callbacks owed to senders: the outbox row that makes a callback survive a broker
outage or a lost job, stored with the outcome that causes it and removed once the callback is
delivered or given up. A row holds ids, a state and times: nothing of the person."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import CharField, ForeignKeyField, IntegerField, UUIDField

from models.base import BaseModel, UTCDateTimeField, new_id, utcnow
from models.db import bulk_insert, run_sql, tuple_rows
from models.message import CLAIM_EARLY_TOLERANCE, Message
from models.states import FailureReason, MessageState

#: The message states a sender is told about.
ANNOUNCED = frozenset({MessageState.SENT, MessageState.DELIVERED, MessageState.FAILED})


class Callback(BaseModel):
    """A callback owed: ``message`` reached ``state`` and its sender has not been told yet.

    ``due_at`` is when the next POST is due (a retry's time; while a job posts it, the end of
    that job's lease); ``enqueued_at`` when a job for it was last enqueued. The replay job
    enqueues again a row that is past both by REPLAY_AFTER_SECONDS: its enqueue failed or its
    job was lost. ``attempts`` counts the jobs that took it.
    """

    id = UUIDField(primary_key=True, default=new_id)
    message = ForeignKeyField(Message, on_delete="CASCADE")
    message_id: uuid.UUID  # peewee's accessor for the key's raw value
    state = CharField(max_length=16)
    failure_reason = CharField(max_length=32, null=True)
    attempts = IntegerField(default=0)
    due_at = UTCDateTimeField()
    enqueued_at = UTCDateTimeField()
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("due_at",), False),)


@dataclass(frozen=True)
class OwedCallback:
    """A callback to store in the transaction of the outcome that owes it, then enqueue."""

    id: uuid.UUID
    values: tuple

    def store(self) -> None:
        """Insert the row (plain SQL: it may run in another thread's group commit)."""
        run_sql(_INSERT, self.values)


_COLUMNS = (
    "id",
    "message_id",
    "state",
    "failure_reason",
    "attempts",
    "due_at",
    "enqueued_at",
    "created_at",
)
_INSERT = 'INSERT INTO "callback" ({}) VALUES ({})'.format(
    ", ".join(f'"{column}"' for column in _COLUMNS), ", ".join("?" * len(_COLUMNS))
)
_stored = Callback.due_at.db_value


def owed_callback(
    message: Message, state: str, failure_reason: FailureReason | None = None
) -> OwedCallback | None:
    """The callback ``message`` reaching ``state`` owes its sender (``message.sender`` with its
    callback URL loaded), or None: the sender wants none, or is not told of ``state``."""
    if state not in ANNOUNCED or not message.sender.callback_url:
        return None
    callback_id, now = new_id(), _stored(utcnow())
    reason = failure_reason and str(failure_reason)
    values = (Callback.id.db_value(callback_id), Message.id.db_value(message.id), str(state))
    return OwedCallback(callback_id, (*values, reason, 0, now, now, now))


def owe_callbacks(message_ids: list, state: str, failure_reason: str | None) -> list[str]:
    """Store a callback for each of ``message_ids`` reaching ``state`` (their senders want
    them); their ids. Call inside the transaction that changes the messages."""
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "message": message_id,
            "state": state,
            "failure_reason": failure_reason,
            "attempts": 0,
            "due_at": now,
            "enqueued_at": now,
            "created_at": now,
        }
        for message_id in message_ids
    ]
    bulk_insert(Callback, rows)
    return [str(row["id"]) for row in rows]


def take_callback(callback_id, lease_seconds: float, now: datetime | None = None):
    """Take a due callback for one POST: count the attempt and hold it for ``lease_seconds``
    (the replay job and duplicate jobs leave it alone meanwhile). The row, or None when it is
    gone (delivered, given up) or not due (another job holds it, or a retry is scheduled)."""
    now = now or utcnow()
    taken = (
        Callback.update(
            attempts=Callback.attempts + 1, due_at=now + timedelta(seconds=lease_seconds)
        )
        .where((Callback.id == callback_id) & (Callback.due_at <= now + CLAIM_EARLY_TOLERANCE))
        .execute()
    )
    return Callback.get_or_none(Callback.id == callback_id) if taken else None


def postpone_callback(callback: Callback, due_at: datetime) -> None:
    """The next POST of ``callback`` (a retry) is due at ``due_at``."""
    Callback.update(due_at=due_at).where(Callback.id == callback.id).execute()


def forget_callback(callback: Callback) -> None:
    """The callback was delivered, or given up: nothing is owed any more."""
    Callback.delete().where(Callback.id == callback.id).execute()


def overdue_callbacks(now: datetime, after_seconds: int, limit: int) -> list[str]:
    """Up to ``limit`` callbacks neither due nor enqueued in the last ``after_seconds``
    (oldest first): their enqueue failed or their job was lost."""
    cutoff = now - timedelta(seconds=after_seconds)
    return [
        str(row[0])
        for row in tuple_rows(
            Callback.select(Callback.id)
            .where((Callback.due_at < cutoff) & (Callback.enqueued_at < cutoff))
            .order_by(Callback.due_at)
            .limit(limit)
        )
    ]


def mark_enqueued(callback_ids: list[str], now: datetime) -> None:
    """Jobs for ``callback_ids`` were enqueued at ``now``."""
    Callback.update(enqueued_at=now).where(Callback.id.in_(callback_ids)).execute()

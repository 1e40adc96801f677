"""Ending a notification early: cancel its messages not yet sent, and soft-delete it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from models.base import utcnow
from models.db import write_transaction
from models.fanout_chunk import stop_chunks
from models.message import Message
from models.notification import Notification
from models.states import FanoutState, MessageState

#: Message states that can still be stopped before anything is sent.
CANCELLABLE = (
    MessageState.SCHEDULED,
    MessageState.QUEUED,
    MessageState.RETRYING,
    MessageState.HELD,
)


class DeleteOutcome(StrEnum):
    DELETED = "deleted"
    NOTHING_LEFT = "nothing_left"


def cancel_pending(notification_id, now: datetime | None = None) -> int:
    """Move the notification's messages still ``scheduled``, ``queued``, ``retrying`` or
    ``held`` to ``cancelled`` (one guarded UPDATE: a message a worker already claimed is left
    alone); stop any fan-out still to come (its chunks first: one finishing now is waited
    for, and its messages are cancelled with the others). Returns how many messages were
    cancelled."""
    now = now or utcnow()
    stop_chunks(notification_id, now)
    (
        Notification.update(fanout_state=FanoutState.DONE, fanout_updated_at=now)
        .where(
            (Notification.id == notification_id)
            & (Notification.fanout_state == FanoutState.PENDING)
        )
        .execute()
    )
    return (
        Message.update(state=MessageState.CANCELLED, due_at=None, updated_at=now)
        .where((Message.notification == notification_id) & Message.state.in_(CANCELLABLE))
        .execute()
    )


def soft_delete(notification_id, now: datetime | None = None) -> DeleteOutcome:
    """Hide a notification from every inbox and cancel what it has not sent yet; it is kept,
    with its messages and actions, for audit. ``NOTHING_LEFT`` when it was already deleted and
    nothing remained to cancel."""
    now = now or utcnow()
    with write_transaction():
        deleted = (
            Notification.update(deleted_at=now)
            .where((Notification.id == notification_id) & Notification.deleted_at.is_null())
            .execute()
        )
        cancelled = cancel_pending(notification_id, now)
    return DeleteOutcome.DELETED if deleted or cancelled else DeleteOutcome.NOTHING_LEFT

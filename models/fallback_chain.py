"""A fallback chain: one recipient's messages of one notification, tried channel by channel in
``fallback_rank`` order; each after the first waits ``held`` until the one before it fails."""

from __future__ import annotations

from models.base import utcnow
from models.message import Message
from models.states import MessageState


def _chain(message: Message):
    return (Message.notification == message.notification_id) & (
        Message.recipient_key == message.recipient_key
    )


def next_in_chain(message: Message) -> tuple[str, str] | None:
    """After ``message`` failed: queue the next held channel of its fallback chain; return its
    (id, channel) for enqueueing, or None at the end of the chain."""
    held = (
        Message.select(Message.id, Message.channel)
        .where(_chain(message) & (Message.state == MessageState.HELD))
        .order_by(Message.fallback_rank)
        .first()
    )
    if held is None:
        return None
    now = utcnow()
    queued = (
        Message.update(state=MessageState.QUEUED, due_at=now, updated_at=now)
        .where((Message.id == held.id) & (Message.state == MessageState.HELD))
        .execute()
    )
    return (str(held.id), held.channel) if queued else None


def end_chain(message: Message) -> None:
    """After ``message`` reached its recipient: the held channels after it are not needed."""
    (
        Message.update(state=MessageState.CANCELLED, updated_at=utcnow())
        .where(_chain(message) & (Message.state == MessageState.HELD))
        .execute()
    )

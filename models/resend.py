"""Resending failed messages on a sender's request: all of them back to ``queued``, or none."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from models.base import utcnow
from models.db import write_transaction
from models.message import Message
from models.sender import Sender, visible_to
from models.states import MessageState

#: The most messages one resend request may name.
MAX_RESEND = 1000


class ResendRefused(Exception):
    """Nothing was resent; ``errors`` names each identifier (by index) that is the reason."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


def _problems(sender: Sender, identifiers: list) -> tuple[dict[int, list[str]], list[UUID]]:
    errors: dict[int, list[str]] = {}
    first: dict[UUID, int] = {}
    for index, raw in enumerate(identifiers):
        try:
            key = UUID(str(raw))
        except ValueError:
            errors[index] = ["No such message."]
            continue
        if key in first:
            errors[index] = [f"Duplicate of identifiers[{first[key]}]."]
            continue
        first[key] = index
    found = visible_to(
        sender,
        Message.select(Message.id, Message.state).where(Message.id.in_(list(first))),
        Message,
    )
    states = dict(found.tuples())
    for key, index in first.items():
        if key not in states:
            errors[index] = ["No such message."]
        elif states[key] != MessageState.FAILED:
            errors[index] = [f"Not failed: {states[key]}."]
    return errors, list(first)


def requeue_failed(
    sender: Sender, identifiers: list, now: datetime | None = None
) -> list[tuple[str, str]]:
    """Put the failed messages ``identifiers`` (all ``sender``'s) back to ``queued``, keeping
    their attempts; return their (id, channel) for enqueueing. Raises ResendRefused, having
    changed nothing, when any identifier is a duplicate, unknown or not failed."""
    errors, ids = _problems(sender, identifiers)
    if errors:
        raise ResendRefused({"identifiers": errors})
    now = now or utcnow()
    guard = Message.id.in_(ids) & (Message.state == MessageState.FAILED)
    with write_transaction():
        update = Message.update(
            state=MessageState.QUEUED, failure_reason=None, due_at=now, updated_at=now
        ).where(guard)
        if visible_to(sender, update, Message).execute() != len(ids):
            raise ResendRefused({"identifiers": ["Some messages changed meanwhile; retry."]})
    rows = Message.select(Message.id, Message.channel).where(Message.id.in_(ids)).tuples()
    return [(str(message_id), channel) for message_id, channel in rows]

"""Resending failed messages on a sender's request: all of them back to ``queued``, or none."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from models.base import utcnow
from models.db import tuple_rows, write_transaction
from models.errors import ModelError
from models.message import Message
from models.notification import Notification
from models.sender import Sender, visible_to
from models.states import FailureReason, MessageState

#: The most messages one resend request may name.
MAX_RESEND = 1000


class ResendRefused(ModelError):
    """Nothing was resent; ``errors`` names each identifier (by index) that is the reason."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


def _problems(
    sender: Sender, identifiers: list, deliverable: Collection[str]
) -> tuple[dict[int, list[str]], list[UUID]]:
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
    query = (
        Message.select(
            Message.id,
            Message.state,
            Message.failure_reason,
            Message.channel,
            Notification.purged_at,
            Notification.deleted_at,
        )
        .join(Notification)
        .where(Message.id.in_(list(first)))
    )
    found = {row[0]: row[1:] for row in visible_to(sender, query, Message).tuples()}
    for key, index in first.items():
        problem = _problem(found.get(key), deliverable)
        if problem:
            errors[index] = [problem]
    return errors, list(first)


def _problem(row: tuple | None, deliverable: Collection[str]) -> str | None:
    """Why one message (its state, failure reason, channel, notification's purged_at and
    deleted_at) cannot be resent, or None."""
    if row is None:
        return "No such message."
    state, reason, channel, purged_at, deleted_at = row
    if state != MessageState.FAILED:
        return f"Not failed: {state}."
    if reason == FailureReason.UNSUBSCRIBED:
        return "Cannot be sent: the person opted out of this channel."
    if channel not in deliverable:
        return f"Cannot be sent: Herald has no channel {channel!r}."
    if purged_at is not None:
        return "Cannot be sent: purged after retention (its content and destination are gone)."
    if deleted_at is not None:
        return "Cannot be sent: its notification was deleted."
    return None


def _resendable(deliverable: Collection[str]):
    live = Notification.select(Notification.id).where(
        Notification.purged_at.is_null() & Notification.deleted_at.is_null()
    )
    return (
        (Message.state == MessageState.FAILED)
        & (
            Message.failure_reason.is_null()
            | (Message.failure_reason != FailureReason.UNSUBSCRIBED)
        )
        & Message.channel.in_(list(deliverable))
        & Message.notification.in_(live)
    )


def requeue_failed(
    sender: Sender,
    identifiers: list,
    deliverable: Collection[str],
    now: datetime | None = None,
) -> list[tuple[str, str]]:
    """Put the failed messages ``identifiers`` (all ``sender``'s) back to ``queued``, keeping
    their attempts; return their (id, channel) for enqueueing. Raises ResendRefused, having
    changed nothing, when any identifier is a duplicate, unknown or not failed, or its message
    cannot be sent: on a channel not in ``deliverable`` (e.g. ``none``, for NO_ACTIVE_CHANNEL),
    or of a notification purged after retention or deleted, or it failed because the person
    opted out (UNSUBSCRIBED)."""
    errors, ids = _problems(sender, identifiers, deliverable)
    if errors:
        raise ResendRefused({"identifiers": errors})
    now = now or utcnow()
    guard = Message.id.in_(ids) & _resendable(deliverable)
    with write_transaction():
        update = Message.update(
            state=MessageState.QUEUED, failure_reason=None, due_at=now, updated_at=now
        ).where(guard)
        if visible_to(sender, update, Message).execute() != len(ids):
            raise ResendRefused({"identifiers": ["Some messages changed meanwhile; retry."]})
    rows = tuple_rows(Message.select(Message.id, Message.channel).where(Message.id.in_(ids)))
    return [(str(message_id), channel) for message_id, channel in rows]

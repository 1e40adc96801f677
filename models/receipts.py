"""What providers report after they took a message (delivery receipts, read receipts, email
bounces) applied to the message: ``sent`` → ``delivered`` (``delivered_at``; ``read_at`` where
the provider reports it), ``sent``/``delivered`` → ``failed``.

Receipts arrive late, twice and out of order, so each is one guarded UPDATE that moves a
message only forward: a ``delivered`` after a ``read`` changes nothing, a ``sent`` never
overwrites ``delivered``, a repeated receipt is a no-op, and a failure stays final. The
callback a change owes the sender is stored in the same transaction. Messages purged after
retention have no provider id left, so a receipt for one finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from peewee import fn

from models.base import utcnow
from models.callback import owed_callback
from models.db import write_transaction
from models.message import Message
from models.sender import Sender
from models.states import FailureReason, MessageState

#: How much of a provider's error text a message keeps.
MAX_RECEIPT_ERROR = 500


class ReceiptStatus(StrEnum):
    """What a receipt says, in Herald's words (each provider's vocabulary maps onto these)."""

    SENT = "sent"  # the provider passed it on: nothing new for Herald
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"  # undelivered, or a permanent bounce
    TRANSIENT = "transient"  # a temporary failure the provider keeps retrying: recorded only


@dataclass(frozen=True)
class ReceiptOutcome:
    """What applying a receipt did: ``changed`` whether the message moved (or gained its read
    time); ``state`` the message's state after; ``callback_id`` the callback stored, if any."""

    changed: bool
    state: str
    callback_id: str | None = None


def message_for_provider_id(channel: str, provider_id: str) -> Message | None:
    """The message ``channel``'s provider knows as ``provider_id`` (the id its send returned),
    with its sender's callback settings loaded."""
    return (
        _with_sender()
        .where((Message.channel == channel) & (Message.provider_id == provider_id))
        .first()
    )


def message_by_id(message_id) -> Message | None:
    """The message with this id that a provider took and retention has not purged (a purged
    message has no provider id left, as for :func:`message_for_provider_id`), with its
    sender's callback settings loaded."""
    return (
        _with_sender()
        .where((Message.id == message_id) & Message.provider_id.is_null(False))
        .first()
    )


def _with_sender():
    return Message.select(Message, Sender).join(Sender)


def apply_receipt(
    message: Message,
    status: ReceiptStatus,
    *,
    at: datetime | None = None,
    failure_reason: FailureReason | None = None,
    error: str | None = None,
    also: Callable[[], object] | None = None,
) -> ReceiptOutcome:
    """Apply one receipt to ``message`` (loaded with :func:`message_by_id` or
    :func:`message_for_provider_id`). ``at`` is when the provider says it happened (default:
    now); ``failure_reason`` (default REJECTED_BY_PROVIDER) and ``error`` go with FAILED, and
    ``error`` alone with TRANSIENT. ``also`` is SQL work committed with a change (the
    switch-off of an address reported undeliverable)."""
    at = at or utcnow()
    error = error[:MAX_RECEIPT_ERROR] if error else None
    now = utcnow()
    owed_state: MessageState | None = None
    query = None
    if status in (ReceiptStatus.DELIVERED, ReceiptStatus.READ):
        changes = {
            Message.state: MessageState.DELIVERED,
            Message.delivered_at: fn.COALESCE(Message.delivered_at, at),
            Message.updated_at: now,
        }
        movable = Message.state == MessageState.SENT
        if status == ReceiptStatus.READ:
            changes[Message.read_at] = fn.COALESCE(Message.read_at, at)
            movable |= (Message.state == MessageState.DELIVERED) & Message.read_at.is_null()
        query, owed_state = Message.update(changes).where(movable), MessageState.DELIVERED
    elif status == ReceiptStatus.FAILED:
        failure_reason = failure_reason or FailureReason.REJECTED_BY_PROVIDER
        changes = {
            Message.state: MessageState.FAILED,
            Message.failure_reason: failure_reason,
            Message.last_error: error,
            Message.updated_at: now,
        }
        accepted = Message.state.in_([MessageState.SENT, MessageState.DELIVERED])
        query, owed_state = Message.update(changes).where(accepted), MessageState.FAILED
    elif status == ReceiptStatus.TRANSIENT and error:
        accepted = Message.state.in_([MessageState.SENT, MessageState.DELIVERED])
        Message.update(last_error=error, updated_at=now).where(
            (Message.id == message.id) & accepted
        ).execute()
    if query is None or owed_state is None:
        return ReceiptOutcome(False, _state_of(message))
    owed = owed_callback(message, owed_state, failure_reason)
    with write_transaction():
        changed = bool(query.where(Message.id == message.id).execute())
        if changed and owed:
            owed.store()
        if changed and also:
            also()
    if not changed:
        return ReceiptOutcome(False, _state_of(message))
    return ReceiptOutcome(True, owed_state, str(owed.id) if owed else None)


def _state_of(message: Message) -> str:
    row = Message.select(Message.state).where(Message.id == message.id).first()
    return row.state if row else message.state

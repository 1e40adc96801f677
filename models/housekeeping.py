"""The scheduler's bulk transitions on messages and notifications: due scheduled sends, expiry,
automatic resends and the retention purge. Each is a guarded UPDATE over a bounded batch."""

from __future__ import annotations

from datetime import datetime, timedelta

from models.callback import owe_callbacks
from models.db import write_transaction
from models.message import Message, requeue
from models.notification import Notification
from models.sender import Sender
from models.states import CLAIMABLE, FailureReason, MessageState

#: The channel whose messages are an inbox entry rather than a push.
INAPP = "inapp"
#: What a purged destination reads.
REDACTED = ""

_INAPP_LIVE = (MessageState.UNREAD, MessageState.SCHEDULED, *CLAIMABLE)
_PUSH_WAITING = (MessageState.SCHEDULED, MessageState.HELD, *CLAIMABLE)


def release_scheduled(now: datetime, limit: int) -> list[tuple[str, str]]:
    """Scheduled messages whose time has come (``due_at`` ≤ now), moved to ``queued``."""
    due = (Message.state == MessageState.SCHEDULED) & (Message.due_at <= now)
    return requeue(due, now, limit)


def expire_inapp(now: datetime) -> int:
    """In-app entries past their notification's ``valid_till`` become ``expired``."""
    lapsed = Notification.select(Notification.id).where(Notification.valid_till <= now)
    return (
        Message.update(state=MessageState.EXPIRED, due_at=None, updated_at=now)
        .where(
            (Message.channel == INAPP)
            & Message.state.in_(_INAPP_LIVE)
            & Message.notification.in_(lapsed)
        )
        .execute()
    )


def expire_push(now: datetime, limit: int) -> tuple[int, list[str]]:
    """Fail a batch of unsent push messages past their notification's ``valid_till`` with
    EXPIRED (they are never sent late), storing in the same transaction the callbacks owed to
    their senders that want them. Returns how many failed, and those callbacks' ids for
    enqueueing."""
    lapsed = Notification.select(Notification.id).where(Notification.valid_till <= now)
    waiting = (
        (Message.channel != INAPP)
        & Message.state.in_(_PUSH_WAITING)
        & Message.notification.in_(lapsed)
    )
    with write_transaction():
        ids = [row[0] for row in Message.select(Message.id).where(waiting).limit(limit).tuples()]
        if not ids:
            return 0, []
        expired = list(
            Message.update(
                state=MessageState.FAILED,
                failure_reason=FailureReason.EXPIRED,
                due_at=None,
                updated_at=now,
            )
            .where(Message.id.in_(ids) & waiting)
            .returning(Message.id, Message.sender)
            .tuples()
        )
        listening = _wanting_callbacks({sender_id for _, sender_id in expired})
        announced = [message_id for message_id, sender_id in expired if sender_id in listening]
        callbacks = owe_callbacks(announced, MessageState.FAILED, FailureReason.EXPIRED)
    return len(expired), callbacks


def _wanting_callbacks(sender_ids: set) -> set:
    """Those of ``sender_ids`` that have a callback URL."""
    if not sender_ids:
        return set()
    wanting = Sender.select(Sender.id).where(
        Sender.id.in_(list(sender_ids))
        & Sender.callback_url.is_null(False)
        & (Sender.callback_url != "")
    )
    return {row[0] for row in wanting.tuples()}


def resendable(now: datetime, after_seconds: int, max_resends: int):
    """Messages that failed only because retries ran out, long enough ago, with resends left,
    outside fallback chains (the chain moved on) and still valid and not deleted."""
    live = Notification.select(Notification.id).where(
        Notification.deleted_at.is_null()
        & (Notification.valid_till.is_null() | (Notification.valid_till > now))
    )
    return (
        (Message.state == MessageState.FAILED)
        & (Message.failure_reason == FailureReason.RETRIES_EXHAUSTED)
        & (Message.updated_at <= now - timedelta(seconds=after_seconds))
        & (Message.resends < max_resends)
        & Message.fallback_rank.is_null()
        & Message.notification.in_(live)
    )


def release_for_resend(
    now: datetime, after_seconds: int, max_resends: int, limit: int
) -> list[tuple[str, str]]:
    """Failed-by-outage messages moved back to ``queued`` for another try (counted)."""
    where = resendable(now, after_seconds, max_resends)
    return requeue(where, now, limit, failure_reason=None, resends=Message.resends + 1)


def purge_batch(cutoff: datetime, now: datetime, limit: int) -> tuple[int, int, list[str]]:
    """Redact one batch of notifications created before ``cutoff``: their content,
    attributes and IDNP recipients, and their messages' destinations, recipient keys,
    attributes, errors and provider details. States, timestamps and failure reasons stay.
    Returns (notifications, messages) redacted and the attachments' document ids, for the
    caller to remove from the document store."""
    batch = list(
        Notification.select(Notification.id, Notification.content)
        .where(Notification.purged_at.is_null() & (Notification.created_at < cutoff))
        .limit(limit)
    )
    if not batch:
        return 0, 0, []
    ids = [notification.id for notification in batch]
    documents = [
        attachment["document_id"]
        for notification in batch
        for attachment in (notification.content or {}).get("attachments") or []
    ]
    messages, after = 0, None
    while True:
        page = Message.select(Message.id).where(Message.notification.in_(ids))
        if after is not None:
            page = page.where(Message.id > after)
        message_ids = [row[0] for row in page.order_by(Message.id).limit(limit).tuples()]
        if not message_ids:
            break
        with write_transaction():
            messages += (
                Message.update(
                    destination=REDACTED,
                    recipient_key=None,
                    attributes=None,
                    subject=None,
                    body=None,
                    last_error=None,
                    details=None,
                )
                .where(Message.id.in_(message_ids))
                .execute()
            )
        after = message_ids[-1]
    with write_transaction():
        notifications = (
            Notification.update(content={}, attributes=None, recipients=None, purged_at=now)
            .where(Notification.id.in_(ids) & Notification.purged_at.is_null())
            .execute()
        )
    return notifications, messages, documents

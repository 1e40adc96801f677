"""The scheduler's bulk transitions on messages and notifications: due scheduled sends, expiry,
automatic resends and the retention purge. Each is a guarded UPDATE over a bounded batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from peewee import SQL, fn

from channel_table import INAPP
from models.action import erase_actors
from models.callback import owe_callbacks
from models.db import database, is_sqlite, tuple_rows, write_transaction
from models.idempotency import forget_idempotency
from models.inbox import forget_readers
from models.message import Attempt, Message, requeue
from models.notification import Notification
from models.sender import Sender
from models.states import CLAIMABLE, FINAL, FailureReason, FanoutState, MessageState
from settings import settings

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
            (Message.channel == INAPP.name)
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
        (Message.channel != INAPP.name)
        & Message.state.in_(_PUSH_WAITING)
        & Message.notification.in_(lapsed)
    )
    with write_transaction():
        ids = [row[0] for row in tuple_rows(Message.select(Message.id).where(waiting).limit(limit))]
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
        callbacks = _owe_failure_callbacks(expired, FailureReason.EXPIRED)
    return len(expired), callbacks


def fail_unqueueable(errors: dict[str, str], reason: FailureReason, now: datetime) -> list[str]:
    """Fail messages still ``queued`` whose job can never be built (``errors``: id → why, kept
    in ``last_error``), so no later replay pass picks them up again, storing in the same
    transaction the callbacks owed to their senders. Returns those callbacks' ids."""
    with write_transaction():
        failed: list[tuple] = []
        for message_id, error in errors.items():
            failed += (
                Message.update(
                    state=MessageState.FAILED,
                    failure_reason=reason,
                    last_error=error,
                    due_at=None,
                    updated_at=now,
                )
                .where((Message.id == message_id) & (Message.state == MessageState.QUEUED))
                .returning(Message.id, Message.sender)
                .tuples()
            )
        return _owe_failure_callbacks(failed, reason)


def _owe_failure_callbacks(failed: list[tuple], reason: FailureReason) -> list[str]:
    """Store the ``failed`` callbacks owed for (message id, sender id) rows just failed with
    ``reason``, for the senders that have a callback URL; the callbacks' ids."""
    sender_ids = {sender_id for _, sender_id in failed}
    if not sender_ids:
        return []
    wanting = Sender.select(Sender.id).where(
        Sender.id.in_(list(sender_ids))
        & Sender.callback_url.is_null(False)
        & (Sender.callback_url != "")
    )
    listening = {row[0] for row in tuple_rows(wanting)}
    announced = [message_id for message_id, sender_id in failed if sender_id in listening]
    return owe_callbacks(announced, MessageState.FAILED, reason)


def resendable(now: datetime, after_seconds: int, max_resends: int):
    """Messages that failed only because retries ran out, long enough ago, with resends left,
    outside fallback chains (the chain moved on) and still valid, not deleted and not purged
    (a purged message has nothing left to send)."""
    live = Notification.select(Notification.id).where(
        Notification.deleted_at.is_null()
        & Notification.purged_at.is_null()
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


@dataclass(frozen=True)
class PurgedBatch:
    """What one purge batch did: how many unpurged notifications created before the cutoff it
    looked at (``scanned``, at most the batch size), how many notifications and messages it
    redacted, how many documents (letters, attachments) it removed, and the (created_at, id)
    of the last one looked at, where the next batch resumes."""

    scanned: int
    notifications: int
    messages: int
    documents: int
    resume_after: tuple[datetime, UUID] | None


#: Removes documents from the document store by id; raises OSError when the disk fails.
RemoveDocuments = Callable[[list[str]], None]

#: A purged message: what stays is its channel, language, state, failure reason, counts, times.
_ERASED_MESSAGE = {
    Message.destination: REDACTED,
    Message.recipient_key: None,
    Message.contact: None,
    Message.attributes: None,
    Message.subject: None,
    Message.body: None,
    Message.last_error: None,
    Message.provider_id: None,
    Message.details: None,
}


def finished_before(cutoff: datetime):
    """SQL: the notification's fan-out is not pending and each of its messages is final and
    has not changed since before ``cutoff`` (``updated_at``, which every transition sets)."""
    unfinished = Message.select(SQL("1")).where(
        (Message.notification == Notification.id)
        & (Message.state.not_in(FINAL) | (Message.updated_at >= cutoff))
    )
    return (Notification.fanout_state != FanoutState.PENDING) & ~fn.EXISTS(unfinished)


def past_retention(cutoff: datetime):
    """SQL: the notification's retention ran out at ``cutoff``: not purged yet, and
    :func:`finished_before` it (its last message became final before ``cutoff``; one without
    messages counts from its creation, which precedes its messages')."""
    return (
        Notification.purged_at.is_null()
        & (Notification.created_at < cutoff)
        & finished_before(cutoff)
    )


def purge_batch(
    cutoff: datetime,
    now: datetime,
    limit: int,
    after: tuple[datetime, UUID] | None = None,
    *,
    remove_documents: RemoveDocuments,
) -> PurgedBatch:
    """Look at the next ``limit`` unpurged notifications created before ``cutoff`` (oldest
    first, after ``after``) and erase the person from those :func:`past_retention`: their
    content, attributes and IDNP recipients; their messages' destinations, recipient keys,
    contact links, attributes, bodies, errors, provider ids and details; their attempts'
    provider replies and ids; their idempotency records; who read and acted on them. States,
    timestamps, failure reasons and action types stay. Their documents (letters, attachments)
    are removed by ``remove_documents`` inside the transaction that erases their ids, before
    it commits, so a failure leaves both for the next purge and no file is left unreferenced.
    A message that is not final is never changed, and a notification is marked purged only if
    it is still past retention once its messages are done."""
    scanned = _window(cutoff, limit, after)
    if not scanned:
        return PurgedBatch(0, 0, 0, 0, after)
    batch = [notification for notification in scanned if notification.finished]
    messages, letters = _redact_messages(
        [notification.id for notification in batch], limit, remove_documents
    )
    purged, attachments = _mark_purged(batch, cutoff, now, remove_documents)
    resume_after = (scanned[-1].created_at, scanned[-1].id)
    return PurgedBatch(len(scanned), purged, messages, letters + attachments, resume_after)


def _window(cutoff: datetime, limit: int, after: tuple[datetime, UUID] | None):
    """The next ``limit`` unpurged notifications created before ``cutoff``, after ``after`` in
    (created_at, id) order, each with ``finished`` (:func:`finished_before` ``cutoff``). One
    query: a range of the (purged_at, created_at) index cut to ``limit`` rows, then one probe
    each of message's index on notification_id, however many notifications still wait for
    their messages."""
    window = Notification.select(Notification.id).where(
        Notification.purged_at.is_null() & (Notification.created_at < cutoff)
    )
    if after is not None:
        created_at, notification_id = after
        window = window.where(
            (Notification.created_at >= created_at)
            & ((Notification.created_at > created_at) | (Notification.id > notification_id))
        )
    window = window.order_by(Notification.purged_at, Notification.created_at, Notification.id)
    return list(
        Notification.select(
            Notification.id,
            Notification.content,
            Notification.created_at,
            finished_before(cutoff).alias("finished"),
        )
        .where(Notification.id.in_(window.limit(limit)))
        .order_by(Notification.created_at, Notification.id)
    )


def _mark_purged(
    batch: list[Notification], cutoff: datetime, now: datetime, remove_documents: RemoveDocuments
) -> tuple[int, int]:
    """Blank the notifications of ``batch`` still :func:`past_retention` and mark them purged at
    ``now`` (the others changed after they were found); in the same transaction, delete their
    idempotency records and who read them, erase who acted on them, and remove their
    attachments. How many notifications, and documents."""
    if not batch:
        return 0, 0
    ids = [notification.id for notification in batch]
    with write_transaction():
        count = (
            Notification.update(content={}, attributes=None, recipients=None, purged_at=now)
            .where(Notification.id.in_(ids) & past_retention(cutoff))
            .execute()
        )
        marked = batch
        if count != len(batch):
            query = Notification.select(Notification.id).where(
                Notification.id.in_(ids) & (Notification.purged_at == now)
            )
            purged = {row[0] for row in tuple_rows(query)}
            marked = [notification for notification in batch if notification.id in purged]
        if not marked:
            return 0, 0
        marked_ids = [notification.id for notification in marked]
        forget_idempotency(marked_ids)
        forget_readers(marked_ids)
        erase_actors(marked_ids)
        attachments = [
            attachment["document_id"]
            for notification in marked
            for attachment in (notification.content or {}).get("attachments") or []
        ]
        remove_documents(attachments)
    return len(marked), len(attachments)


def _redact_messages(
    notification_ids: list, limit: int, remove_documents: RemoveDocuments
) -> tuple[int, int]:
    """Blank the personal data of these notifications' final messages and of their attempts,
    and remove the documents they stored (letters), ``limit`` messages per transaction; how
    many messages, and documents."""
    final = Message.notification.in_(notification_ids) & Message.state.in_(FINAL)
    redacted = removed = 0
    after = None
    while notification_ids:
        with write_transaction():
            page = _final_page(final, after, limit)
            message_ids = [message_id for message_id, _ in page]
            if message_ids:
                redacted += (
                    Message.update(_ERASED_MESSAGE).where(Message.id.in_(message_ids)).execute()
                )
                (
                    Attempt.update(error=None, provider_id=None)
                    .where(Attempt.message.in_(message_ids))
                    .execute()
                )
                letters = [
                    details["documentId"] for _, details in page if _stored_document(details)
                ]
                remove_documents(letters)
                removed += len(letters)
        if len(page) < limit:
            break
        after = message_ids[-1]
    return redacted, removed


def _final_page(final, after, limit: int) -> list[tuple]:
    """(id, details) of the next ``limit`` messages matching ``final`` after the id ``after``,
    locked until the transaction ends on PostgreSQL (SQLite's write lock holds them already),
    so none leaves its final state before it is blanked."""
    page = Message.select(Message.id, Message.details).where(final)
    if after is not None:
        page = page.where(Message.id > after)
    page = page.order_by(Message.id).limit(limit)
    return tuple_rows(page if is_sqlite() else page.for_update())


def _stored_document(details) -> bool:
    """Whether a message's ``details`` name a document it stored (a letter's PDF)."""
    return isinstance(details, dict) and isinstance(details.get("documentId"), str)


def truncate_wal() -> bool:
    """On SQLite, copy the write-ahead log into the database file and truncate it, so that
    the page versions from before a purge do not stay in the log's bytes (``secure_delete``
    zeroes them in the database file). It never waits, holding up no writer: while another
    connection reads or writes it does nothing, and the next purge tries again. Whether the
    log is empty now (always, on PostgreSQL)."""
    if not is_sqlite():
        return True
    database.execute_sql("PRAGMA busy_timeout = 0")
    try:
        busy, _, _ = database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        database.execute_sql(f"PRAGMA busy_timeout = {int(settings.SQLITE_BUSY_TIMEOUT_MS)}")
    return not busy

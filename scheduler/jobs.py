"""The scheduler's jobs. Each takes ``now`` so tests can run it at any moment."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from channels import documents
from models.base import utcnow
from models.callback import mark_enqueued, overdue_callbacks
from models.fanout_chunk import stalled_fanouts
from models.housekeeping import (
    expire_inapp,
    expire_push,
    fail_unqueueable,
    purge_batch,
    release_for_resend,
    release_scheduled,
    truncate_wal,
)
from models.idempotency import expire_idempotency_records
from models.message import release_stuck
from models.reminder import purge_finished_requests
from models.states import FailureReason
from settings import settings
from tasks.callbacks import enqueue_callbacks
from tasks.deliver import UnknownChannel, enqueue
from tasks.fanout import fanout_actor
from tasks.receipts import apply_early_receipts
from tasks.reminders import fire_reminders

logger = logging.getLogger(__name__)


def replay(now: datetime | None = None) -> int:
    """Re-enqueue stuck work: messages queued or retrying but overdue (lost job, broker down at
    accept time), messages sending past an expired lease (the worker died), and fan-outs that
    have not moved for a while. A message whose job cannot be built is failed instead, so it
    holds up neither its batch nor later passes. A broker error propagates, leaving the rest
    ``queued`` for the next pass. Returns how many messages and fan-outs were enqueued."""
    now = now or utcnow()
    replay_callbacks(now)
    total = replay_fanouts(now)
    while True:
        batch = release_stuck(now, settings.REPLAY_AFTER_SECONDS, settings.REPLAY_BATCH_SIZE)
        if not batch:
            break
        total += _enqueue_or_fail(batch, now)
        if len(batch) < settings.REPLAY_BATCH_SIZE:
            break
    if total:
        logger.info("replay: re-enqueued %d stuck messages and fan-outs", total)
    return total


def _enqueue_or_fail(batch: list[tuple[str, str]], now: datetime) -> int:
    """Enqueue a replayed batch; fail each row whose job cannot be built with
    NO_ACTIVE_CHANNEL (there is no channel Herald can deliver it on) and why, logged once."""
    rejected: list[tuple[str, str, Exception]] = []
    try:
        return enqueue(batch, rejected=rejected)
    finally:
        if rejected:
            _fail_rejected(rejected, now)


def _fail_rejected(rejected: list[tuple[str, str, Exception]], now: datetime) -> None:
    reason, errors = FailureReason.NO_ACTIVE_CHANNEL, {}
    for message_id, channel, error in rejected:
        known = isinstance(error, UnknownChannel)
        errors[message_id] = f"cannot be enqueued: {error if known else repr(error)}"
        logger.error(
            "replay: message %s on channel %r failed with %s: %s",
            message_id,
            channel,
            reason,
            errors[message_id],
            exc_info=None if known else error,
        )
    enqueue_callbacks(fail_unqueueable(errors, reason, now))


def replay_fanouts(now: datetime) -> int:
    """Restart fan-outs whose last chunk is older than REPLAY_AFTER_SECONDS."""
    stalled = stalled_fanouts(now - timedelta(seconds=settings.REPLAY_AFTER_SECONDS))
    for notification_id in stalled:
        fanout_actor.send(notification_id)
    if stalled:
        logger.info("replay: restarted %d stalled fan-outs", len(stalled))
    return len(stalled)


def replay_callbacks(now: datetime) -> int:
    """Enqueue again the delivery callbacks still owed REPLAY_AFTER_SECONDS after they were
    due and last enqueued (the broker was down, or the job was lost); how many."""
    total = 0
    while True:
        batch = overdue_callbacks(now, settings.REPLAY_AFTER_SECONDS, settings.REPLAY_BATCH_SIZE)
        if not batch or not enqueue_callbacks(batch, force=True):
            break
        mark_enqueued(batch, now)
        total += len(batch)
        if len(batch) < settings.REPLAY_BATCH_SIZE:
            break
    if total:
        logger.info("replay: re-enqueued %d delivery callbacks", total)
    return total


def early_receipts(now: datetime | None = None) -> dict[str, int]:
    """Apply the provider receipts that came before their send was recorded, now that it is,
    and drop those that found no message in time."""
    return apply_early_receipts(now or utcnow())


def send_scheduled(now: datetime | None = None) -> dict[str, int]:
    """Queue and enqueue scheduled messages whose send time has come (also those that waited
    out quiet hours); fire due reminder occurrences."""
    now = now or utcnow()
    queued = 0
    while True:
        batch = release_scheduled(now, settings.SCHEDULE_BATCH_SIZE)
        enqueue(batch, quiet=True)
        queued += len(batch)
        if len(batch) < settings.SCHEDULE_BATCH_SIZE:
            break
    counts = {"queued": queued, **fire_reminders(now, settings.SCHEDULE_BATCH_SIZE)}
    if queued or counts["fired"] or counts["duplicate"] or counts["invalid"]:
        logger.info("send_scheduled: %s", counts)
    return counts


def expire_lapsed(now: datetime | None = None) -> dict[str, int]:
    """Expire in-app entries and fail unsent push messages past their ``valid_till``; senders
    hear of the failures through their callbacks."""
    now = now or utcnow()
    counts = {"inapp_expired": expire_inapp(now), "push_expired": 0}
    while True:
        expired, callbacks = expire_push(now, settings.SCHEDULE_BATCH_SIZE)
        counts["push_expired"] += expired
        enqueue_callbacks(callbacks)
        if expired < settings.SCHEDULE_BATCH_SIZE:
            break
    if any(counts.values()):
        logger.info("expire_lapsed: %s", counts)
    return counts


def auto_resend(now: datetime | None = None) -> dict[str, int]:
    """Resend messages that failed with RETRIES_EXHAUSTED at least AUTO_RESEND_AFTER ago, at
    most AUTO_RESEND_MAX times each; permanent failures are never resent."""
    now = now or utcnow()
    batch = release_for_resend(
        now, settings.AUTO_RESEND_AFTER, settings.AUTO_RESEND_MAX, settings.SCHEDULE_BATCH_SIZE
    )
    enqueue(batch, quiet=True)
    if batch:
        logger.info("auto_resend: resent %d messages", len(batch))
    return {"resent": len(batch)}


def purge(now: datetime | None = None) -> dict[str, int]:
    """Erase the person from notifications whose last message became final more than
    MESSAGE_RETENTION_DAYS ago (nothing still scheduled, queued, sending, retrying, held or
    fanning out is touched), a batch per transaction: bodies, destinations, IDNPs, provider
    replies, idempotency records, who read and acted, and the documents (letters, attachments)
    removed with the rows. On SQLite the log is then truncated (:func:`truncate_wal`)."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.MESSAGE_RETENTION_DAYS)
    counts = {"notifications": 0, "messages": 0}
    removed, after = 0, None
    while True:
        batch = purge_batch(
            cutoff, now, settings.PURGE_BATCH_SIZE, after, remove_documents=documents.delete_all
        )
        counts["notifications"] += batch.notifications
        counts["messages"] += batch.messages
        removed += batch.documents
        if batch.scanned < settings.PURGE_BATCH_SIZE:
            break
        after = batch.resume_after
    truncate_wal()
    if counts["notifications"]:
        logger.info("purge: %s, %d documents removed", counts, removed)
    return counts


def forget_expired(now: datetime | None = None) -> dict[str, int]:
    """Forget what outlived its use: Idempotency-Key records older than
    IDEMPOTENCY_TTL_SECONDS (deleted), and the requests (recipients, attributes, content) of
    reminders done or cancelled more than MESSAGE_RETENTION_DAYS ago (blanked; an active
    reminder keeps its own); PURGE_BATCH_SIZE rows per transaction."""
    now = now or utcnow()
    size = settings.PURGE_BATCH_SIZE
    keys_before = now - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    ended_before = now - timedelta(days=settings.MESSAGE_RETENTION_DAYS)
    counts = {
        "idempotency_keys": _in_batches(lambda: expire_idempotency_records(keys_before, size)),
        "reminder_requests": _in_batches(lambda: purge_finished_requests(ended_before, now, size)),
    }
    truncate_wal()
    if any(counts.values()):
        logger.info("forget_expired: %s", counts)
    return counts


def _in_batches(batch: Callable[[], int]) -> int:
    """Run ``batch`` (one transaction of at most PURGE_BATCH_SIZE rows, returning how many it
    changed) until one comes back short; the total."""
    total = 0
    while True:
        done = batch()
        total += done
        if done < settings.PURGE_BATCH_SIZE:
            return total

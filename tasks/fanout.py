"""Fan-out: turn IDNP recipients and broadcast subscribers into messages, a chunk per job.

The first job cuts the notification's people into chunks (models/fanout_chunk.py) and
enqueues a job per chunk, so that chunks run in parallel on every worker. A chunk job claims
its chunk with a lease, resolves it with a few bulk queries (contacts, their channels, their
opt-outs), and inserts its messages in the transaction that marks it done, guarded by its
claim: a duplicated job stores nothing twice, a killed worker's chunk is claimed again once
its lease is over (the scheduler's replay job restarts stalled fan-outs), and a cancelled
notification's chunks store nothing more.
"""

from __future__ import annotations

import logging

import dramatiq
from peewee import IntegrityError

from models.base import dashed, utcnow
from models.db import asynchronous_commit, bulk_insert, queued_writer, write_transaction
from models.fanout_chunk import (
    FanoutChunk,
    all_done,
    claim_chunk,
    claimable,
    finish_chunk,
    is_planned,
    list_ranges,
    plan_chunks,
    subscriber_ranges,
)
from models.message import Message
from models.notification import Notification
from models.sender import Sender
from models.states import FailureReason, FanoutState, MessageState
from settings import settings
from tasks.broker import BROKER_ERRORS, breaker, enqueue_many
from tasks.deliver import enqueue
from tasks.fanout_rows import NO_CHANNEL as NO_CHANNEL  # re-exported: where it was
from tasks.fanout_rows import listed, message_rows, subscribed
from tasks.limits import Taken, give_back, take_messages
from tasks.logs import log_context

logger = logging.getLogger(__name__)


def fanout(notification_id: str) -> None:
    """Advance a notification's fan-out: cut it into chunks the first time, hand the chunks
    left to jobs of their own (any worker, in parallel), and run the first of them here."""
    notification = Notification.get_or_none(Notification.id == notification_id)
    if notification is None or notification.fanout_state != FanoutState.PENDING:
        return
    with log_context(notification_id=notification.id, sender=notification.sender_id):
        left = claimable(notification.id)
        if not left and not is_planned(notification.id):
            plan(notification)
            left = claimable(notification.id)
        start_chunks(notification.id, left[1:])
        if left:
            run_chunk(notification, left[0])
        _finish_if_done(notification.id)


def fanout_chunk(notification_id: str, number: int) -> None:
    """Run chunk ``number`` of a notification's fan-out, if it is still to do."""
    notification = Notification.get_or_none(Notification.id == notification_id)
    if notification is None or notification.fanout_state != FanoutState.PENDING:
        return
    with log_context(notification_id=notification.id, sender=notification.sender_id):
        run_chunk(notification, number)
        _finish_if_done(notification.id)


def plan(notification: Notification) -> None:
    """Cut the notification's people into chunks (subscriber id ranges or list offsets), once;
    a fan-out begun before chunks existed goes on from its cursor."""
    size, cursor = settings.FANOUT_CHUNK_SIZE, notification.fanout_cursor
    if notification.is_broadcast:
        ranges = subscriber_ranges(notification.service_name, size, after=cursor)
    else:
        ranges = list_ranges(cursor, len(notification.recipients or []), size)
    try:
        with write_transaction():
            plan_chunks(notification.id, ranges)
    except IntegrityError:
        pass  # another job planned them at the same moment (PostgreSQL)
    logger.info("fan-out %s: %d chunks", notification.id, len(ranges))


def run_chunk(notification: Notification, number: int) -> int:
    """Claim chunk ``number``, resolve its people, and store their messages in the
    transaction that marks it done (only if this worker still holds it and the notification
    was not cancelled meanwhile); then enqueue them. How many messages it stored."""
    chunk = claim_chunk(notification.id, number, settings.FANOUT_CHUNK_LEASE_SECONDS)
    if chunk is None:
        return 0  # done, stopped, or another worker holds it
    people, rows = resolve(notification, chunk)
    taken, counted = _within_daily_limit(notification, rows)
    if not store(chunk, people, rows):
        give_back(taken, counted)
        return 0
    queued = [
        (dashed(row["id"]), row["channel"]) for row in rows if row["state"] == MessageState.QUEUED
    ]
    enqueue(queued, quiet=True)
    logger.info(
        "fan-out %s chunk %d: %d people, %d messages", notification.id, number, people, len(rows)
    )
    return len(rows)


def store(chunk: FanoutChunk, people: int, rows: list[dict]) -> bool:
    """Insert the chunk's message rows in the transaction that marks it done, if this worker
    still holds it; whether they were stored.

    On PostgreSQL the commit does not wait for its WAL flush (``asynchronous_commit``): a
    server crash can lose only the whole chunk — rows and done mark together, so it is run
    again after its lease — and never a row a delivery has used, since a delivery's claim
    commits synchronously, which flushes the WAL before it, this chunk's included.
    """
    with queued_writer(), write_transaction():
        asynchronous_commit()
        stored = finish_chunk(chunk, people, len(rows))
        if stored:
            bulk_insert(Message, rows, converted=True)
    return stored


def _finish_if_done(notification_id) -> None:
    """The fan-out is done once no chunk is left to do (checked after a chunk committed, so
    the last one to commit sees every other)."""
    if all_done(notification_id):
        (
            Notification.update(fanout_state=FanoutState.DONE, fanout_updated_at=utcnow())
            .where(
                (Notification.id == notification_id)
                & (Notification.fanout_state == FanoutState.PENDING)
            )
            .execute()
        )


def _within_daily_limit(notification: Notification, rows: list[dict]) -> tuple[Taken, int]:
    """Count the chunk's messages (all but those that failed already) against the sender's
    daily message limit. What does not fit is capped, in place: from the first person whose
    messages do not all fit, every person's messages are ``failed`` with THROTTLED (visible
    and searchable). Returns what was taken and how many of it the rows use."""
    countable = [row for row in rows if row["state"] != MessageState.FAILED]
    if not countable:
        return Taken(0), 0
    sender = Sender.get_by_id(notification.sender_id)
    taken = take_messages(sender, len(countable))
    if taken.granted >= len(countable):
        return taken, len(countable)
    budget, throttled = taken.granted, set[int]()
    for person, group in _by_person(countable):
        if throttled or len(group) > budget:
            throttled.add(person)
            for row in group:
                row.update(
                    state=MessageState.FAILED.value,
                    failure_reason=FailureReason.THROTTLED.value,
                    due_at=None,
                )
        else:
            budget -= len(group)
    give_back(taken, budget)
    logger.warning(
        "fan-out %s: daily message limit %d reached; %d people throttled",
        notification.id,
        taken.limit,
        len(throttled),
    )
    return taken, taken.granted - budget


def _by_person(rows: list[dict]) -> list[tuple[int, list[dict]]]:
    """Rows grouped by the person they were made for, in order (``resolve`` makes each
    person's rows one after another)."""
    groups: list[tuple[int, list[dict]]] = []
    last = None
    for row in rows:
        key = row["recipient_key"]
        if not groups or key != last:
            groups.append((len(groups), []))
            last = key
        groups[-1][1].append(row)
    return groups


def resolve(notification: Notification, chunk: FanoutChunk) -> tuple[int, list[dict]]:
    """The chunk's people and their message rows (tasks/fanout_rows.py): how many people."""
    audience = (subscribed if notification.is_broadcast else listed)(notification, chunk)
    return len(audience.people), message_rows(notification, audience)


fanout_actor = dramatiq.actor(actor_name="fanout", queue_name="fanout", max_retries=0)(fanout)
fanout_chunk_actor = dramatiq.actor(actor_name="fanout_chunk", queue_name="fanout", max_retries=0)(
    fanout_chunk
)


def start_fanout(notification_id) -> None:
    """Enqueue the fan-out's first job; if the broker is down (or the breaker open), the
    replay job will."""
    _send(fanout_actor.message(str(notification_id)))


def start_chunks(notification_id, numbers: list[int]) -> None:
    """Enqueue a job for each of the notification's chunks ``numbers`` (one pipeline); if the
    broker is down, the replay job will."""
    if numbers:
        _send(*(fanout_chunk_actor.message(str(notification_id), n) for n in numbers))


def _send(*jobs: dramatiq.Message) -> None:
    if breaker.skips():
        logger.debug("fan-out: broker breaker open; replay will start %d jobs", len(jobs))
        return
    try:
        with breaker.watch():
            broker = dramatiq.get_broker()
            if len(jobs) == 1:
                broker.enqueue(jobs[0])
            else:
                enqueue_many(broker, list(jobs))
    except BROKER_ERRORS:
        logger.warning("fan-out: broker unavailable; replay will start %d jobs", len(jobs))

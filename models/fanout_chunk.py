"""Fan-out chunks: a notification's people cut into ranges once, when its fan-out starts, so
that each range is a job of its own that any worker may claim, run and finish in parallel.

A broadcast's ranges are contact ids of the service's subscribers (``low`` ≤ id < ``high``,
``high`` null for the last); an IDNP list's are offsets into the notification's recipients. A
chunk is claimed with a lease (one guarded UPDATE) and finished in the transaction that
inserts its messages, by a second guarded UPDATE that only the claim's holder can make: a
chunk whose worker died is claimed again after its lease, and its messages exist once.
Cancelling the notification stops its chunks in the same way (:func:`stop_chunks`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from peewee import SQL, AutoField, BigIntegerField, CharField, ForeignKeyField, IntegerField, fn

from models.base import BaseModel, UTCDateTimeField, new_id, utcnow
from models.db import run_sql, tuple_rows
from models.notification import Notification
from models.preference import EVERYWHERE, PERSON
from models.states import FanoutState


class ChunkState(StrEnum):
    PENDING = "pending"  # waiting for a worker (or its worker's lease ran out)
    RUNNING = "running"  # claimed, until ``lease_until``
    DONE = "done"  # its messages exist
    STOPPED = "stopped"  # the notification was cancelled first: it makes no messages


class FanoutChunk(BaseModel):
    """One range of a notification's people, resolved by one job."""

    id = AutoField()
    notification = ForeignKeyField(Notification, on_delete="CASCADE", index=False)
    notification_id: UUID  # peewee's accessor for the key's raw value
    number = IntegerField(help_text="0, 1, …: the range's place in the notification")
    low = BigIntegerField(help_text="first contact id (broadcast) or list offset")
    high = BigIntegerField(null=True, help_text="end of the range, excluded; null: no end")
    state = CharField(max_length=10, default=ChunkState.PENDING)
    claim = CharField(max_length=32, null=True, help_text="who holds the lease")
    lease_until = UTCDateTimeField(null=True)
    people = IntegerField(null=True, help_text="people resolved, once done")
    messages = IntegerField(null=True, help_text="messages made, once done")
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "fanout_chunk"
        indexes = (
            (("notification", "number"), True),
            (("state", "lease_until"), False),
        )


def subscriber_ranges(
    service_name: str | None, size: int, after: int = 0
) -> list[tuple[int, int | None]]:
    """The subscribers of ``service_name`` (contact id above ``after``) cut into (low, high)
    contact-id ranges of ``size``, computed in the database (one row per range comes back,
    not one per subscriber)."""
    size = int(size)
    starts = run_sql(
        "SELECT contact_id FROM (SELECT contact_id, ROW_NUMBER() OVER (ORDER BY contact_id) AS n"
        " FROM subscription WHERE service_name = ? AND contact_id > ?) AS t"
        f" WHERE ((t.n - 1) / {size}) * {size} = t.n - 1 ORDER BY contact_id",
        (service_name, after),
    )
    lows = [row[0] for row in starts.fetchall()]
    return list(zip(lows, [*lows[1:], None][: len(lows)], strict=True))


def list_ranges(start: int, count: int, size: int) -> list[tuple[int, int | None]]:
    """Offsets [low, high) over a list of ``count`` recipients from ``start``, ``size`` at a
    time."""
    return [(low, min(low + size, count)) for low in range(start, count, size)]


def plan_chunks(notification_id, ranges: list[tuple[int, int | None]]) -> bool:
    """Store the notification's chunks (call in a transaction with the check that it has
    none); False when another job planned them first."""
    if FanoutChunk.select().where(FanoutChunk.notification == notification_id).exists():
        return False
    now = utcnow()
    rows = [
        {"notification": notification_id, "number": n, "low": low, "high": high, "updated_at": now}
        for n, (low, high) in enumerate(ranges)
    ]
    for start in range(0, len(rows), 500):
        FanoutChunk.insert_many(rows[start : start + 500]).execute()
    return True


def is_planned(notification_id) -> bool:
    return FanoutChunk.select().where(FanoutChunk.notification == notification_id).exists()


def claimable(notification_id, now: datetime | None = None) -> list[int]:
    """Numbers of the chunks a worker may claim now: pending, or running past their lease."""
    now = now or utcnow()
    query = (
        FanoutChunk.select(FanoutChunk.number)
        .where((FanoutChunk.notification == notification_id) & _claimable(now))
        .order_by(FanoutChunk.number)
    )
    return [row[0] for row in tuple_rows(query)]


def _claimable(now: datetime):
    return (FanoutChunk.state == ChunkState.PENDING) | (
        (FanoutChunk.state == ChunkState.RUNNING) & (FanoutChunk.lease_until < now)
    )


def claim_chunk(notification_id, number: int, lease_seconds: int) -> FanoutChunk | None:
    """Take chunk ``number`` for this worker for ``lease_seconds`` (one guarded UPDATE); the
    chunk with its ``claim`` token, or None when it is done, stopped or held by another."""
    now, token = utcnow(), new_id().hex
    taken = (
        FanoutChunk.update(
            state=ChunkState.RUNNING,
            claim=token,
            lease_until=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .where(
            (FanoutChunk.notification == notification_id)
            & (FanoutChunk.number == number)
            & _claimable(now)
        )
        .execute()
    )
    if not taken:
        return None
    return FanoutChunk.get(
        (FanoutChunk.notification == notification_id) & (FanoutChunk.number == number)
    )


def finish_chunk(chunk: FanoutChunk, people: int, messages: int) -> bool:
    """Mark ``chunk`` done if this worker still holds it: the first statement of the
    transaction that inserts its messages (it locks the chunk's row, so a cancel waits for the
    messages and then cancels them). False: roll back, the messages must not be stored."""
    return bool(
        FanoutChunk.update(
            state=ChunkState.DONE, people=people, messages=messages, updated_at=utcnow()
        )
        .where(
            (FanoutChunk.id == chunk.id)
            & (FanoutChunk.state == ChunkState.RUNNING)
            & (FanoutChunk.claim == chunk.claim)
        )
        .execute()
    )


def stop_chunks(notification_id, now: datetime | None = None) -> int:
    """Stop every chunk of the notification not done yet (it is being cancelled): a chunk in
    flight then fails to finish and stores nothing. Waits for a chunk finishing right now,
    whose messages the caller then sees. How many were stopped."""
    return (
        FanoutChunk.update(state=ChunkState.STOPPED, updated_at=now or utcnow())
        .where(
            (FanoutChunk.notification == notification_id)
            & FanoutChunk.state.in_([ChunkState.PENDING, ChunkState.RUNNING])
        )
        .execute()
    )


def all_done(notification_id) -> bool:
    """Whether every chunk of the notification is done (or stopped)."""
    return not (
        FanoutChunk.select()
        .where(
            (FanoutChunk.notification == notification_id)
            & FanoutChunk.state.in_([ChunkState.PENDING, ChunkState.RUNNING])
        )
        .exists()
    )


def progress_of(notification_ids: list) -> dict:
    """For each notification with chunks: {"chunks", "chunksDone", "people", "messages"}
    (one query for all of them)."""
    done = fn.SUM(SQL("CASE WHEN state = 'done' THEN 1 ELSE 0 END"))
    query = (
        FanoutChunk.select(
            FanoutChunk.notification,
            fn.COUNT(FanoutChunk.id),
            done,
            fn.COALESCE(fn.SUM(FanoutChunk.people), 0),
            fn.COALESCE(fn.SUM(FanoutChunk.messages), 0),
        )
        .where(FanoutChunk.notification.in_(notification_ids))
        .group_by(FanoutChunk.notification)
    )
    return {
        UUID(str(nid)) if not isinstance(nid, UUID) else nid: {
            "chunks": total,
            "chunksDone": int(finished or 0),
            "people": int(people),
            "messages": int(messages),
        }
        for nid, total, finished, people, messages in tuple_rows(query)
    }


def stalled_fanouts(before: datetime) -> list[str]:
    """Notifications whose fan-out is pending and has not moved since ``before``: neither the
    notification nor any of its chunks changed since (a chunk's lease may have run out, or
    its job was lost). Their timestamp is touched so each is restarted once per interval."""
    moving = FanoutChunk.select(SQL("1")).where(
        (FanoutChunk.notification == Notification.id) & (FanoutChunk.updated_at >= before)
    )
    query = Notification.select(Notification.id).where(
        (Notification.fanout_state == FanoutState.PENDING)
        & (Notification.fanout_updated_at < before)
        & ~fn.EXISTS(moving)
    )
    stalled = [str(row[0]) for row in tuple_rows(query)]
    if stalled:
        (
            Notification.update(fanout_updated_at=utcnow())
            .where(Notification.id.in_(stalled))
            .execute()
        )
    return stalled


def _range_sql(chunk: FanoutChunk, service: str | None) -> tuple[str, list]:
    """SQL (for ``subscription AS s``) selecting the chunk's subscribers of ``service``, and
    its parameters."""
    sql, params = "s.service_name = ? AND s.contact_id >= ?", [service, chunk.low]
    if chunk.high is not None:
        sql += " AND s.contact_id < ?"
        params.append(chunk.high)
    return sql, params


def subscribers_with_channels(
    chunk: FanoutChunk, service: str | None, kinds: list[str]
) -> list[tuple]:
    """The chunk's subscribers of ``service``, each with its active channels of ``kinds`` in
    priority order: rows (contact id, idnp, preferred language, channel type or None, address
    or None) by contact id, in one query (plain SQL: building it with peewee cost more than
    running it)."""
    where, params = _range_sql(chunk, service)
    marks = ", ".join("?" * len(kinds))
    kind_sql = f"cc.type IN ({marks})" if kinds else "1 = 0"
    sql = (
        "SELECT c.id, c.idnp, c.preferred_language, cc.type, cc.address"
        " FROM subscription AS s JOIN contact AS c ON c.id = s.contact_id"
        " LEFT JOIN contact_channel AS cc"
        f" ON cc.contact_id = c.id AND cc.active AND {kind_sql}"
        f" WHERE {where} ORDER BY c.id, cc.priority, cc.id"
    )
    return run_sql(sql, [*kinds, *params]).fetchall()


def subscribers_opted_out(chunk: FanoutChunk, service: str | None) -> dict[str, set[str]]:
    """For each of the chunk's subscribers who turned a channel off, everywhere or for
    ``service``: the channels, by IDNP (one query; see ``models.preference.opted_out``)."""
    where, params = _range_sql(chunk, service)
    services = [EVERYWHERE] if not service else [EVERYWHERE, service]
    sql = (
        "SELECT p.subject, p.channel FROM preference AS p"
        f" WHERE p.subject_kind = ? AND p.service IN ({', '.join('?' * len(services))})"
        " AND NOT p.enabled AND p.subject IN (SELECT c.idnp FROM subscription AS s"
        f" JOIN contact AS c ON c.id = s.contact_id WHERE {where})"
    )
    off: dict[str, set[str]] = {}
    for subject, channel in run_sql(sql, [PERSON, *services, *params]).fetchall():
        off.setdefault(subject, set()).add(channel)
    return off

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
from collections import defaultdict

import dramatiq
from peewee import IntegrityError

from channel_table import INAPP
from channels import RECIPIENT_TYPES, REGISTRY, configured_channels
from models.base import new_id, utcnow
from models.contact import Contact, ContactChannel, Subscription
from models.db import bulk_insert, tuple_rows, write_transaction
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
from models.preference import opted_out
from models.sender import Sender
from models.states import FailureReason, FanoutState, MessageState
from settings import settings
from tasks.broker import BROKER_ERRORS, breaker, enqueue_many
from tasks.deliver import enqueue
from tasks.limits import Taken, give_back, take_messages
from tasks.logs import log_context

logger = logging.getLogger(__name__)

#: The channel name of a message that had nowhere to go.
NO_CHANNEL = "none"


def fanout(notification_id: str) -> None:
    """Advance a notification's fan-out: cut it into chunks the first time, hand the chunks
    left to jobs of their own (any worker, in parallel), and run the first of them here."""
    notification = Notification.get_or_none(Notification.id == notification_id)
    if notification is None or notification.fanout_state != FanoutState.PENDING:
        return
    with log_context(notification_id=notification.id, sender=notification.sender_id):
        if not is_planned(notification.id):
            _plan(notification)
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


def _plan(notification: Notification) -> None:
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
    people = (_subscribers if notification.is_broadcast else _listed)(notification, chunk)
    rows = resolve(notification, people)
    taken, counted = _within_daily_limit(notification, rows)
    with write_transaction():
        stored = finish_chunk(chunk, len(people), len(rows))
        if stored:
            bulk_insert(Message, rows)
    if not stored:
        give_back(taken, counted)
        return 0
    queued = [(row["id"], row["channel"]) for row in rows if row["state"] == MessageState.QUEUED]
    enqueue(queued, quiet=True)
    logger.info(
        "fan-out %s chunk %d: %d people, %d messages",
        notification.id,
        number,
        len(people),
        len(rows),
    )
    return len(rows)


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
                    state=MessageState.FAILED,
                    failure_reason=FailureReason.THROTTLED,
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


def _listed(notification: Notification, chunk: FanoutChunk) -> list[dict]:
    """The chunk's IDNP recipients of the request (offsets low..high)."""
    return list((notification.recipients or [])[chunk.low : chunk.high])


def _subscribers(notification: Notification, chunk: FanoutChunk) -> list[dict]:
    """The chunk's subscribers of the notification's service (contact ids low..high)."""
    where = (Subscription.service_name == notification.service_name) & (Contact.id >= chunk.low)
    if chunk.high is not None:
        where &= Contact.id < chunk.high
    contacts = (
        Contact.select(Contact.id, Contact.idnp, Contact.preferred_language)
        .join(Subscription, on=(Subscription.contact == Contact.id))
        .where(where)
        .order_by(Contact.id)
        .namedtuples()
    )
    return [{"idnp": contact.idnp, "contact": contact} for contact in contacts]


def resolve(notification: Notification, people: list[dict]) -> list[dict]:
    """Message rows for ``people``: their active channels (allowed by the request and
    configured on this server, in priority order), a cabinet copy, or a NO_ACTIVE_CHANNEL
    failure for someone with no such channel. A channel the person opted out of (everywhere
    or for the notification's service) is an UNSUBSCRIBED failure instead, unless the
    notification is critical."""
    unresolved = [p["idnp"] for p in people if "contact" not in p]
    found = Contact.select(Contact.id, Contact.idnp, Contact.preferred_language).where(
        Contact.idnp.in_(unresolved)
    )
    contacts = {c.idnp: c for c in found.namedtuples()}
    for person in people:
        person.setdefault("contact", contacts.get(person["idnp"]))
    ids = [p["contact"].id for p in people if p["contact"] is not None]
    allowed = set(notification.channels or REGISTRY) & configured_channels()
    kinds = [kind for kind, name in RECIPIENT_TYPES.items() if name in allowed]
    channels = defaultdict(list)
    query = (
        ContactChannel.select(ContactChannel.contact, ContactChannel.type, ContactChannel.address)
        .where(
            ContactChannel.contact.in_(ids) & ContactChannel.active & ContactChannel.type.in_(kinds)
        )
        .order_by(ContactChannel.priority, ContactChannel.id)
    )
    for contact_id, kind, address in tuple_rows(query):
        channels[contact_id].append((RECIPIENT_TYPES[kind], address))
    off = opted_out([p["idnp"] for p in people], notification.service_name)
    rows: list[dict] = []
    for person in people:
        unwanted = off.get(person["idnp"], set())
        rows.extend(_messages_for(notification, person, channels, allowed, unwanted))
    if notification.send_at and notification.send_at > utcnow():
        for row in rows:
            if row["state"] == MessageState.QUEUED:
                row.update(state=MessageState.SCHEDULED, due_at=notification.send_at)
    return rows


def _messages_for(
    notification, person: dict, channels: dict, allowed: set[str], unwanted: set[str]
) -> list[dict]:
    """One person's message rows: one per usable channel in ``channels`` (channel name,
    address), else a NO_ACTIVE_CHANNEL failure; plus the cabinet copy if ``allowed``. A channel
    in ``unwanted`` (opted out of) is a failed UNSUBSCRIBED row that a fallback chain skips,
    or, for a critical notification, sent and marked ``opt_out_bypassed``."""
    contact = person["contact"]
    now = utcnow()
    base = {
        "notification": notification.id,
        "sender": notification.sender_id,
        "contact": contact.id if contact else None,
        "recipient_key": person["idnp"],
        "language": (contact and contact.preferred_language)
        or person.get("language")
        or notification.language,
        "attributes": person.get("attributes"),
        "attempts": 0,
        "resends": 0,
        "failure_reason": None,
        "fallback_rank": None,
        "opt_out_bypassed": None,
        "due_at": now,
        "created_at": now,
        "updated_at": now,
    }
    usable = channels.get(contact.id, []) if contact else []
    refused = set() if notification.critical else unwanted
    chain = [(name, address) for name, address in usable if name not in refused]
    fallback = notification.channel_policy == "fallback"
    rows = [
        {
            **base,
            "id": new_id(),
            "channel": name,
            "destination": address,
            "state": MessageState.HELD if fallback and rank else MessageState.QUEUED,
            "fallback_rank": rank if fallback else None,
            "opt_out_bypassed": _bypassed(name, unwanted),
        }
        for rank, (name, address) in enumerate(chain)
    ]
    rows += [
        {**base, "id": new_id(), "channel": name, "destination": address, **UNSUBSCRIBED}
        for name, address in usable
        if name in refused
    ]
    if not rows:
        rows.append(
            {
                **base,
                "id": new_id(),
                "channel": NO_CHANNEL,
                "destination": "",
                "state": MessageState.FAILED,
                "failure_reason": FailureReason.NO_ACTIVE_CHANNEL,
                "due_at": None,
            }
        )
    if not notification.is_broadcast and INAPP.name in allowed:
        # the cabinet: every person gets an in-app copy, addressed by IDNP
        cabinet = {**base, "id": new_id(), "channel": INAPP.name, "destination": person["idnp"]}
        if INAPP.name in refused:
            rows.append({**cabinet, **UNSUBSCRIBED})
        else:
            bypassed = _bypassed(INAPP.name, unwanted)
            rows.append({**cabinet, "state": MessageState.QUEUED, "opt_out_bypassed": bypassed})
    return rows


#: How a message the person opted out of is stored: failed at once, never sent.
UNSUBSCRIBED = {
    "state": MessageState.FAILED,
    "failure_reason": FailureReason.UNSUBSCRIBED,
    "due_at": None,
}


def _bypassed(channel: str, unwanted: set[str]) -> bool | None:
    """``True`` when ``channel`` goes although the person opted out of it (a critical
    notification); else None."""
    return True if channel in unwanted else None


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

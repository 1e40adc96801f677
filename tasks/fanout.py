"""Fan-out: turn IDNP recipients and broadcast subscribers into messages, a chunk per job.

Each job resolves one chunk with a few bulk queries (contacts, their channels), inserts its
messages and moves the notification's cursor in one transaction, then enqueues the messages
and the next chunk. The cursor move is a compare-and-set, so a duplicated job resolves
nothing twice; a lost one is re-enqueued by the scheduler's replay job.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import dramatiq

from channel_table import INAPP
from channels import RECIPIENT_TYPES, REGISTRY, configured_channels
from models.base import new_id, utcnow
from models.contact import Contact, ContactChannel, Subscription
from models.db import bulk_insert, tuple_rows, write_transaction
from models.message import Message
from models.notification import Notification
from models.preference import opted_out
from models.sender import Sender
from models.states import FailureReason, FanoutState, MessageState
from settings import settings
from tasks.broker import BROKER_ERRORS, breaker
from tasks.deliver import enqueue
from tasks.limits import Taken, give_back, take_messages
from tasks.logs import log_context

logger = logging.getLogger(__name__)

#: The channel name of a message that had nowhere to go.
NO_CHANNEL = "none"


def fanout(notification_id: str) -> None:
    """Resolve the next chunk of a notification's people, then enqueue the rest of the work."""
    notification = Notification.get_or_none(Notification.id == notification_id)
    if notification is None or notification.fanout_state != FanoutState.PENDING:
        return
    with log_context(notification_id=notification.id, sender=notification.sender_id):
        _fan_out_chunk(notification)


def _fan_out_chunk(notification: Notification) -> None:
    notification_id = notification.id
    size, cursor = settings.FANOUT_CHUNK_SIZE, notification.fanout_cursor
    take = _subscribers if notification.is_broadcast else _listed
    people, next_cursor, done = take(notification, cursor, size)
    rows = resolve(notification, people)
    taken, counted = _within_daily_limit(notification, rows)
    with write_transaction():
        moved = (
            Notification.update(
                fanout_cursor=next_cursor,
                fanout_state=FanoutState.DONE if done else FanoutState.PENDING,
                fanout_updated_at=utcnow(),
            )
            .where(
                (Notification.id == notification.id)
                & (Notification.fanout_cursor == cursor)
                & (Notification.fanout_state == FanoutState.PENDING)
            )
            .execute()
        )
        if moved:
            bulk_insert(Message, rows)
    if not moved:
        give_back(taken, counted)
        return  # another job resolved this chunk
    queued = [(row["id"], row["channel"]) for row in rows if row["state"] == MessageState.QUEUED]
    enqueue(queued, quiet=True)
    logger.info("fan-out %s: %d people, %d messages", notification_id, len(people), len(rows))
    if not done:
        start_fanout(notification.id)


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


def _listed(notification: Notification, cursor: int, size: int):
    """The next IDNP recipients of the request: (people, next cursor, done)."""
    people = notification.recipients[cursor : cursor + size]
    next_cursor = cursor + len(people)
    return people, next_cursor, next_cursor >= len(notification.recipients)


def _subscribers(notification: Notification, cursor: int, size: int):
    """The next subscribers of the notification's service, by contact id after ``cursor``."""
    contacts = list(
        Contact.select(Contact.id, Contact.idnp, Contact.preferred_language)
        .join(Subscription, on=(Subscription.contact == Contact.id))
        .where((Subscription.service_name == notification.service_name) & (Contact.id > cursor))
        .order_by(Contact.id)
        .limit(size)
        .namedtuples()
    )
    people = [{"idnp": contact.idnp, "contact": contact} for contact in contacts]
    next_cursor = contacts[-1].id if contacts else cursor
    return people, next_cursor, len(contacts) < size


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


def start_fanout(notification_id) -> None:
    """Enqueue the next fan-out job; if the broker is down (or the breaker open), the replay
    job will."""
    if breaker.skips():
        logger.debug("fan-out %s: broker breaker open; replay will start it", notification_id)
        return
    try:
        with breaker.watch():
            fanout_actor.send(str(notification_id))
    except BROKER_ERRORS:
        logger.warning("fan-out %s: broker unavailable; replay will start it", notification_id)

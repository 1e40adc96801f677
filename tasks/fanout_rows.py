"""Fan-out's message rows: who a chunk's people are, where each can be reached, what they
opted out of, and the rows to insert for them, built as the database stores them (hex ids,
naive UTC times, JSON text), since converting them field by field cost more than inserting.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from channel_table import INAPP
from channels import RECIPIENT_TYPES, REGISTRY, configured_channels
from models.base import new_ids, utcnow
from models.contact import Contact, ContactChannel
from models.db import tuple_rows
from models.fanout_chunk import FanoutChunk, subscribers_opted_out, subscribers_with_channels
from models.message import Message
from models.notification import Notification
from models.preference import opted_out
from models.states import FailureReason, MessageState

#: The channel name of a message that had nowhere to go.
NO_CHANNEL = "none"


@dataclass
class Person:
    idnp: str
    contact_id: int | None = None
    language: str | None = None  # the contact's own, else the request's for this person
    attributes: dict | None = None


@dataclass
class Audience:
    """A chunk's people, the usable channels of each (contact id → [(channel, address)], in
    priority order) and what each opted out of (IDNP → channels)."""

    people: list[Person]
    channels: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    off: dict[str, set[str]] = field(default_factory=dict)


def allowed_channels(notification: Notification) -> set[str]:
    """Channels the notification may use: those it names (all if none), configured here."""
    return set(notification.channels or REGISTRY) & configured_channels()


def _kinds(allowed: set[str]) -> list[str]:
    return [kind for kind, name in RECIPIENT_TYPES.items() if name in allowed]


def subscribed(notification: Notification, chunk: FanoutChunk) -> Audience:
    """The chunk's subscribers of the notification's service (contact ids low..high), with
    their channels and opt-outs: two queries."""
    service, audience = notification.service_name, Audience([])
    kinds = _kinds(allowed_channels(notification))
    for contact_id, idnp, language, kind, address in subscribers_with_channels(
        chunk, service, kinds
    ):
        if not audience.people or audience.people[-1].contact_id != contact_id:
            audience.people.append(Person(idnp, contact_id, language))
        if kind is not None:
            audience.channels.setdefault(contact_id, []).append((RECIPIENT_TYPES[kind], address))
    audience.off = subscribers_opted_out(chunk, service)
    return audience


def listed(notification: Notification, chunk: FanoutChunk) -> Audience:
    """The chunk's IDNP recipients of the request (offsets low..high), looked up in the
    registry with their channels and opt-outs: three queries."""
    recipients = (notification.recipients or [])[chunk.low : chunk.high]
    idnps = [r["idnp"] for r in recipients]
    found = Contact.select(Contact.id, Contact.idnp, Contact.preferred_language).where(
        Contact.idnp.in_(idnps)
    )
    contacts = {idnp: (contact_id, language) for contact_id, idnp, language in tuple_rows(found)}
    people = []
    for recipient in recipients:
        contact_id, language = contacts.get(recipient["idnp"], (None, None))
        people.append(
            Person(
                recipient["idnp"],
                contact_id,
                language or recipient.get("language"),
                recipient.get("attributes"),
            )
        )
    ids = [p.contact_id for p in people if p.contact_id is not None]
    channels: dict[int, list[tuple[str, str]]] = defaultdict(list)
    query = (
        ContactChannel.select(ContactChannel.contact, ContactChannel.type, ContactChannel.address)
        .where(
            ContactChannel.contact.in_(ids)
            & ContactChannel.active
            & ContactChannel.type.in_(_kinds(allowed_channels(notification)))
        )
        .order_by(ContactChannel.priority, ContactChannel.id)
    )
    for contact_id, kind, address in tuple_rows(query):
        channels[contact_id].append((RECIPIENT_TYPES[kind], address))
    return Audience(people, channels, opted_out(idnps, notification.service_name))


def message_rows(notification: Notification, audience: Audience) -> list[dict]:
    """Message rows for the audience: one per active channel (allowed by the request and
    configured on this server, in priority order), a cabinet copy (not for a broadcast), or
    a NO_ACTIVE_CHANNEL failure for someone with no such channel. A channel the person opted
    out of (everywhere or for the notification's service) is an UNSUBSCRIBED failure
    instead, unless the notification is critical: then it goes, marked ``opt_out_bypassed``."""
    rows = _Rows(notification, allowed_channels(notification))
    for person in audience.people:
        usable = audience.channels.get(person.contact_id, ()) if person.contact_id else ()
        rows.add(person, usable, audience.off)
    made = rows.made
    ids = iter(new_ids(len(made)))
    for row in made:
        row["id"] = next(ids)
    return made


class _Rows:
    """The rows being made for one chunk, from a template of what they share."""

    def __init__(self, notification: Notification, allowed: set[str]) -> None:
        now = _stored(utcnow())
        scheduled = notification.send_at and notification.send_at > utcnow()
        self.queued = (MessageState.SCHEDULED if scheduled else MessageState.QUEUED).value
        self.queued_due = _stored(notification.send_at) if scheduled else now
        self.waiting = {"state": self.queued, "due_at": self.queued_due}
        self.held = {"state": MessageState.HELD.value, "due_at": now}
        self.template = {
            "id": None,
            "notification": notification.id.hex,
            "sender": notification.sender_id,
            "attempts": 0,
            "resends": 0,
            "failure_reason": None,
            "fallback_rank": None,
            "opt_out_bypassed": None,
            "created_at": now,
            "updated_at": now,
        }
        self.language = notification.language
        self.critical = notification.critical
        self.fallback = notification.channel_policy == "fallback"
        self.cabinet = not notification.is_broadcast and INAPP.name in allowed
        self.made: list[dict] = []

    def add(self, person: Person, usable, off: dict[str, set[str]]) -> None:  # noqa: C901
        """One person's rows (see :func:`message_rows`)."""
        base = {
            **self.template,
            "contact": person.contact_id,
            "recipient_key": person.idnp,
            "language": person.language or self.language,
            "attributes": None
            if person.attributes is None
            else json.dumps(person.attributes, separators=(",", ":")),
        }
        unwanted = off.get(person.idnp, ())
        refused = () if self.critical else unwanted
        made = self.made
        start, rank = len(made), 0
        for name, address in usable:
            if name in refused:
                continue
            made.append(
                {
                    **base,
                    "channel": name,
                    "destination": address,
                    **(self.held if self.fallback and rank else self.waiting),
                    "fallback_rank": rank if self.fallback else None,
                    "opt_out_bypassed": True if name in unwanted else None,
                }
            )
            rank += 1
        for name, address in usable:
            if name in refused:
                made.append({**base, "channel": name, "destination": address, **UNSUBSCRIBED})
        if len(made) == start:
            made.append({**base, "channel": NO_CHANNEL, "destination": "", **NO_ACTIVE_CHANNEL})
        if self.cabinet:  # every person gets an in-app copy, addressed by IDNP
            cabinet = {**base, "channel": INAPP.name, "destination": person.idnp}
            if INAPP.name in refused:
                made.append({**cabinet, **UNSUBSCRIBED})
            else:
                bypassed = True if INAPP.name in unwanted else None
                cabinet.update(state=self.queued, due_at=self.queued_due, opt_out_bypassed=bypassed)
                made.append(cabinet)


def _stored(moment) -> str:
    """A time as its column stores it (naive UTC, ISO text: the drivers would write the same
    text, once per row)."""
    return str(Message.created_at.db_value(moment))


#: How a message the person opted out of is stored: failed at once, never sent.
UNSUBSCRIBED = {
    "state": MessageState.FAILED.value,
    "failure_reason": FailureReason.UNSUBSCRIBED.value,
    "due_at": None,
}
#: How the message of a person with nowhere to send it is stored.
NO_ACTIVE_CHANNEL = {
    "state": MessageState.FAILED.value,
    "failure_reason": FailureReason.NO_ACTIVE_CHANNEL.value,
    "due_at": None,
}

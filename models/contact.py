"""The contact registry: people by IDNP, their channels, language and subscriptions."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    IntegrityError,
    TextField,
)

from channel_table import CHANNELS
from models.base import BaseModel, JSONField, UTCDateTimeField, utcnow
from models.db import tuple_rows, write_transaction

IDNP_WEIGHTS = (7, 3, 1)


def idnp_problem(value: object) -> str | None:
    """Why ``value`` is not a valid IDNP (13 digits; the last is the check digit: the first 12
    weighted 7, 3, 1 repeating, summed, mod 10), or None when it is valid."""
    if not isinstance(value, str) or len(value) != 13 or not value.isascii() or not value.isdigit():
        return "An IDNP is 13 digits."
    total = sum(int(digit) * IDNP_WEIGHTS[i % 3] for i, digit in enumerate(value[:12]))
    if total % 10 != int(value[12]):
        return "The IDNP check digit is wrong."
    return None


class Contact(BaseModel):
    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    idnp = CharField(max_length=13, unique=True)
    name = CharField(max_length=200, null=True)
    preferred_language = CharField(max_length=16, null=True)
    attributes = JSONField(default=dict, help_text="values templates can use as contact.attributes")
    quiet_hours = JSONField(null=True, help_text='{"start", "end", "timezone"}: push waits')
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)


class ContactChannel(BaseModel):
    """One way to reach a contact: ``type`` is a recipient type (email, phone, viber, …) and
    ``address`` its normalised value, as a direct recipient of that type would be stored."""

    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    contact = ForeignKeyField(Contact, backref="channels", on_delete="CASCADE", index=False)
    contact_id: int  # peewee's accessor for the key's raw value
    type = CharField(max_length=20)
    address = TextField()
    active = BooleanField(default=True)
    priority = IntegerField(default=100, help_text="lower first (for the fallback policy)")
    deactivated_reason = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("contact", "type", "address"), True),
            # a direct recipient's address matched to the registry (its preferences, a
            # provider's report of a dead address)
            (("type", "address"), False),
        )


class Subscription(BaseModel):
    """A contact's subscription to a service's broadcasts."""

    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    contact = ForeignKeyField(Contact, backref="subscriptions", on_delete="CASCADE", index=False)
    contact_id: int  # peewee's accessor for the key's raw value
    service_name = CharField(max_length=100)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("contact", "service_name"), True),
            (("service_name", "contact"), False),
        )


#: The recipient type that names a person by national ID, resolved through this registry.
IDNP = "idnp"

#: Recipient types a contact may register as channels (addresses the person owns).
CONTACT_CHANNEL_TYPES = tuple(row.recipient_type for row in CHANNELS if row.in_registry)


def contact_by_idnp(idnp: str) -> Contact | None:
    return Contact.get_or_none(Contact.idnp == idnp)


def active_channels(contact: Contact) -> list[ContactChannel]:
    """The contact's usable channels, best first (priority, then age)."""
    return list(
        ContactChannel.select()
        .where((ContactChannel.contact == contact) & ContactChannel.active)
        .order_by(ContactChannel.priority, ContactChannel.id)
    )


def deactivate_channel(contact_id: int, kind: str, address: str, reason: str) -> None:
    """Switch off a channel its provider reported dead; later sends skip it."""
    (
        ContactChannel.update(active=False, deactivated_reason=reason[:500], updated_at=utcnow())
        .where(
            (ContactChannel.contact == contact_id)
            & (ContactChannel.type == kind)
            & (ContactChannel.address == address)
        )
        .execute()
    )


def deactivate_address(kind: str, address: str, reason: str) -> int:
    """Switch off the channel of type ``kind`` at ``address`` in every contact that has it
    (the provider says the address itself is gone: a Viber user unsubscribed from the bot);
    how many were active."""
    return (
        ContactChannel.update(active=False, deactivated_reason=reason[:500], updated_at=utcnow())
        .where(
            (ContactChannel.type == kind)
            & (ContactChannel.address == address)
            & ContactChannel.active
        )
        .execute()
    )


#: The contact's own fields a row may carry, and what a new contact has for one it does not.
FIELD_DEFAULTS = {"name": None, "preferred_language": None, "attributes": dict, "quiet_hours": None}
#: An upsert row changes only those of these fields it carries.
CONTACT_FIELDS = tuple(FIELD_DEFAULTS)
#: Rows per INSERT statement.
UPSERT_PAGE = 500


def upsert_contacts(rows: list[dict]) -> dict[str, int]:
    """Insert or update contacts by IDNP and add their channels, in bulk.

    ``rows`` are validated (snake_case, channels normalised). A row changes only the fields of
    :data:`CONTACT_FIELDS` it has (an absent key keeps the stored value; ``None`` clears it) and
    adds its channels; rows are grouped by the fields they carry, one statement per group and
    page. Rows for the same IDNP are merged in order. Returns ``{"created": n, "updated": m}``.
    """
    now = utcnow()
    merged = _merge_by_idnp(rows)
    idnps = list(merged)
    with write_transaction():
        existing = {c.idnp for c in Contact.select(Contact.idnp).where(Contact.idnp.in_(idnps))}
        for carried, group in _by_fields_carried(merged.values()).items():
            _upsert_group(carried, group, now)
        ids = dict(
            tuple_rows(Contact.select(Contact.idnp, Contact.id).where(Contact.idnp.in_(idnps)))
        )
        channels = [
            {
                "contact": ids[row["idnp"]],
                "type": channel["type"],
                "address": channel["address"],
                "priority": channel.get("priority", 100),
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
            for row in merged.values()
            for channel in row.get("channels") or []
        ]
        for start in range(0, len(channels), UPSERT_PAGE):
            page = channels[start : start + UPSERT_PAGE]
            ContactChannel.insert_many(page).on_conflict_ignore().execute()
    return {"created": len(set(idnps) - existing), "updated": len(set(idnps) & existing)}


def create_contact(row: dict) -> bool:
    """Register a new contact with its channels (``row`` as for :func:`upsert_contacts`);
    False, and nothing written, when the IDNP is registered already."""
    now = utcnow()
    try:
        with write_transaction():
            contact = Contact.create(created_at=now, updated_at=now, **_fields_of(row))
            for channel in row.get("channels") or []:
                ContactChannel.create(contact=contact, created_at=now, updated_at=now, **channel)
    except IntegrityError:
        return False
    return True


def _fields_of(row: dict) -> dict:
    """The row's IDNP and contact fields, with a new contact's defaults for those it lacks."""
    fields = {"idnp": row["idnp"]}
    for name, default in FIELD_DEFAULTS.items():
        fields[name] = row[name] if name in row else default() if callable(default) else default
    return fields


def _merge_by_idnp(rows: list[dict]) -> dict[str, dict]:
    """One row per IDNP: a later row's fields win, channels add up."""
    merged: dict[str, dict] = {}
    for row in rows:
        before = merged.get(row["idnp"])
        if before is None:
            merged[row["idnp"]] = dict(row)
            continue
        channels = [*(before.get("channels") or []), *(row.get("channels") or [])]
        merged[row["idnp"]] = {**before, **row, "channels": channels}
    return merged


def _by_fields_carried(rows) -> dict[tuple[str, ...], list[dict]]:
    groups: dict[tuple[str, ...], list[dict]] = {}
    for row in rows:
        carried = tuple(name for name in CONTACT_FIELDS if name in row)
        groups.setdefault(carried, []).append(row)
    return groups


def _upsert_group(carried: tuple[str, ...], rows: list[dict], now: datetime) -> None:
    """Insert rows that all carry the fields ``carried``; an existing contact gets only those."""
    values = [{**_fields_of(row), "created_at": now, "updated_at": now} for row in rows]
    update = {Contact.updated_at: now}
    preserve = [Contact._meta.fields[name] for name in carried]
    for start in range(0, len(values), UPSERT_PAGE):
        (
            Contact.insert_many(values[start : start + UPSERT_PAGE])
            .on_conflict(conflict_target=[Contact.idnp], preserve=preserve, update=update)
            .execute()
        )


def quiet_until(quiet_hours: dict | None, now: datetime) -> datetime | None:
    """When the contact's quiet hours end, if ``now`` falls inside them; else None.

    ``quiet_hours`` is ``{"start": "22:00", "end": "08:00", "timezone": "Europe/Chisinau"}``;
    a start after the end spans midnight. The end is taken on the local calendar, so it stays
    at the same wall-clock time across a daylight-saving change.
    """
    if not quiet_hours:
        return None
    zone = ZoneInfo(quiet_hours["timezone"])
    start, end = (time.fromisoformat(quiet_hours[key]) for key in ("start", "end"))
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        inside, end_day = start <= clock < end, local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(now.tzinfo)


def quiet_hours_of(contact_id: int | None) -> dict | None:
    """A contact's quiet hours (None for none, or no contact)."""
    row = Contact.select(Contact.quiet_hours).where(Contact.id == contact_id).first()
    return row.quiet_hours if row else None

"""What a person said they do not want: channel opt-outs, everywhere or for one service.

A person is named as the inbox and fan-out name them (``subject``): by IDNP for a registry
contact, by user id for an in-app user who is not one. An address outside the registry (a
direct email recipient who followed an unsubscribe link) is a subject of kind ``address``,
named ``"<recipient type>:<address>"``.

The document the API reads and writes is ``{"channels": {"sms": false}, "services":
{"permits": {"email": false}}}``: channel names as Herald spells them, ``false`` opts out,
``true`` or a missing key is the default (on). It is stored a row per key that was given, so
that fan-out asks for a whole chunk's opt-outs in one query (:func:`opted_out`). A channel is
off for a service when the person turned it off everywhere or for that service.
"""

from __future__ import annotations

import functools
import operator
from collections import defaultdict
from collections.abc import Iterable
from functools import reduce

from peewee import AutoField, BooleanField, CharField

from channel_table import BY_RECIPIENT_TYPE, INAPP
from models.base import BaseModel, UTCDateTimeField, utcnow
from models.contact import Contact, ContactChannel
from models.db import run_sql, tuple_rows, write_transaction

#: Subject kinds: a person (IDNP or in-app user id), or an address outside the registry.
PERSON = "person"
ADDRESS = "address"
#: The ``service`` of an opt-out that holds for every service.
EVERYWHERE = ""
#: How long the names in a document may be, and how many services it may name.
MAX_SUBJECT = 400
MAX_SERVICE = 100
MAX_SERVICES = 200


class Preference(BaseModel):
    """One key of a person's preferences document: ``channel`` on or off, for ``service``
    (:data:`EVERYWHERE`: for all)."""

    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    subject_kind = CharField(max_length=10)
    subject = CharField(max_length=MAX_SUBJECT)
    service = CharField(max_length=MAX_SERVICE, default=EVERYWHERE)
    channel = CharField(max_length=20)
    enabled = BooleanField()
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("subject_kind", "subject", "service", "channel"), True),)


def address_subject(recipient_type: str, address: str) -> str:
    """The subject that names ``address`` (of ``recipient_type``) outside the registry."""
    return f"{recipient_type}:{address}"[:MAX_SUBJECT]


def preferences_of(subject: str, kind: str = PERSON) -> dict:
    """The document stored for ``subject`` (empty maps when nothing was said)."""
    document: dict = {"channels": {}, "services": {}}
    query = Preference.select(Preference.service, Preference.channel, Preference.enabled).where(
        (Preference.subject_kind == kind) & (Preference.subject == subject)
    )
    for service, channel, enabled in tuple_rows(query.order_by(Preference.service)):
        if service == EVERYWHERE:
            document["channels"][channel] = enabled
        else:
            document["services"].setdefault(service, {})[channel] = enabled
    return document


def set_preferences(subject: str, document: dict, kind: str = PERSON) -> dict:
    """Replace ``subject``'s document with ``document`` (already validated); return it as
    stored."""
    rows = [
        {"service": EVERYWHERE, "channel": channel, "enabled": enabled}
        for channel, enabled in document.get("channels", {}).items()
    ] + [
        {"service": service, "channel": channel, "enabled": enabled}
        for service, channels in document.get("services", {}).items()
        for channel, enabled in channels.items()
    ]
    now = utcnow()
    with write_transaction():
        forget_preferences([subject], kind)
        if rows:
            Preference.insert_many(
                [
                    {**row, "subject_kind": kind, "subject": subject, "updated_at": now}
                    for row in rows
                ]
            ).execute()
    return preferences_of(subject, kind)


def opt_out(subject: str, channel: str, service: str = EVERYWHERE, kind: str = PERSON) -> bool:
    """Turn ``channel`` off for ``service`` (an unsubscribe link); whether it was on."""
    with write_transaction():
        row = Preference.get_or_none(
            (Preference.subject_kind == kind)
            & (Preference.subject == subject)
            & (Preference.service == service)
            & (Preference.channel == channel)
        )
        if row is not None:
            was_on = row.enabled
            row.enabled, row.updated_at = False, utcnow()
            row.save()
            return was_on
        Preference.create(
            subject_kind=kind, subject=subject, service=service, channel=channel, enabled=False
        )
        return True


def opted_out(
    subjects: Iterable[str], service: str | None, kind: str = PERSON
) -> dict[str, set[str]]:
    """For each of ``subjects`` that turned any channel off, everywhere or for ``service``,
    the channels it turned off (one query, for a fan-out chunk)."""
    return {name: off for (_, name), off in _opted_out({kind: subjects}, service).items()}


def _opted_out(
    subjects: dict[str, Iterable[str]], service: str | None
) -> dict[tuple[str, str], set[str]]:
    """:func:`opted_out` for subjects of several kinds (kind → names) in one query, keyed by
    (kind, name)."""
    names = {kind: list(dict.fromkeys(of_kind)) for kind, of_kind in subjects.items()}
    names = {kind: of_kind for kind, of_kind in names.items() if of_kind}
    if not names:
        return {}
    services = [EVERYWHERE] if not service else [EVERYWHERE, service]
    whose = reduce(
        operator.or_,
        (
            (Preference.subject_kind == kind) & Preference.subject.in_(of_kind)
            for kind, of_kind in names.items()
        ),
    )
    query = Preference.select(
        Preference.subject_kind, Preference.subject, Preference.channel
    ).where(whose & Preference.service.in_(services) & ~Preference.enabled)
    off: dict[tuple[str, str], set[str]] = defaultdict(set)
    for kind, subject, channel in tuple_rows(query):
        off[(kind, subject)].add(channel)
    return dict(off)


def addresses_opted_out(
    addresses: Iterable[tuple[str, str]], service: str | None
) -> set[tuple[str, str]]:
    """Of direct recipients ``(recipient type, address)``, those whose channel is off for
    ``service``: an in-app user id by that user's own opt-outs; any other address by those of
    every registry contact that has it (active or not: one of them opting out is enough) and
    by the address's own subject (what an unsubscribe link writes for it). One statement,
    however many addresses, its text built once per shape (peewee's query building was most of
    an accepted POST's CPU spent here)."""
    wanted = set(addresses)
    users = sorted({address for kind, address in wanted if kind == INAPP.recipient_type})
    others = {pair for pair in wanted if pair[0] != INAPP.recipient_type}
    by_subject: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pair in others:
        by_subject[address_subject(*pair)].append(pair)
    types = sorted({kind for kind, _ in others})
    values = sorted({address for _, address in others})
    services = [EVERYWHERE] if not service else [EVERYWHERE, service]
    sql = _opted_out_addresses_sql(
        len(types), len(values), len(by_subject), len(users), len(services)
    )
    params = [
        *([PERSON, *types, *values, *services] if others else []),
        *([ADDRESS, *by_subject, *services] if others else []),
        *([PERSON, *users, *services] if users else []),
    ]
    if not params:
        return set()
    off: set[tuple[str, str]] = set()
    for branch, kind, subject, channel in run_sql(sql, params).fetchall():
        if branch == 0:  # a registry contact's opt-out, by the address it has
            pairs = [(kind, subject)] if (kind, subject) in others else []
        elif branch == 1:  # the address's own opt-out
            pairs = by_subject.get(subject, [])
        else:  # an in-app user's
            pairs = [(INAPP.recipient_type, subject)]
        off.update(pair for pair in pairs if BY_RECIPIENT_TYPE[pair[0]].name == channel)
    return off


@functools.lru_cache(maxsize=64)
def _opted_out_addresses_sql(
    types: int, values: int, subjects: int, users: int, services: int
) -> str:
    """The statement of :func:`addresses_opted_out` for its numbers of recipient types,
    addresses, address subjects, in-app users and services: rows (branch, recipient type,
    address or subject, channel) of the opt-outs that may concern them."""
    marks = lambda count: ", ".join("?" * count)  # noqa: E731
    preference, channel = Preference._meta.table_name, ContactChannel._meta.table_name
    contact = Contact._meta.table_name
    off = f"AND p.service IN ({marks(services)}) AND NOT p.enabled"
    parts = []
    if types:
        parts.append(
            f"SELECT 0, cc.type, cc.address, p.channel FROM {channel} cc "
            f"JOIN {contact} c ON c.id = cc.contact_id "
            f"JOIN {preference} p ON p.subject = c.idnp AND p.subject_kind = ? "
            f"WHERE cc.type IN ({marks(types)}) AND cc.address IN ({marks(values)}) " + off
        )
        parts.append(
            f"SELECT 1, '', p.subject, p.channel FROM {preference} p "
            f"WHERE p.subject_kind = ? AND p.subject IN ({marks(subjects)}) " + off
        )
    if users:
        parts.append(
            f"SELECT 2, '', p.subject, p.channel FROM {preference} p "
            f"WHERE p.subject_kind = ? AND p.subject IN ({marks(users)}) " + off
        )
    return " UNION ALL ".join(parts)


def forget_preferences(subjects: Iterable[str], kind: str = PERSON) -> int:
    """Delete what ``subjects`` said (a contact deleted or erased); how many rows went."""
    names = list(subjects)
    if not names:
        return 0
    return (
        Preference.delete()
        .where((Preference.subject_kind == kind) & Preference.subject.in_(names))
        .execute()
    )

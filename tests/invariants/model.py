"""What the invariant test expects of Herald, kept as the rules run: the contacts as imported,
the templates as edited, the body each notification's emails must carry, and marks of time
(when replay and scheduled sends last ran)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tests.factories import idnp
from tests.invariants.mail import address

#: IDNPs a contact import may create (by number), and IDNPs nobody registers.
NEW_SERIAL, UNKNOWN_SERIAL = 100, 900


@dataclass
class ExpectedContact:
    """A contact as the imports so far should have left it."""

    idnp: str
    name: str | None = None
    preferred_language: str | None = None
    attributes: dict = field(default_factory=dict)
    quiet_hours: dict | None = None
    channels: set[tuple[str, str]] = field(default_factory=set)
    subscriptions: set[str] = field(default_factory=set)

    def apply(self, row: dict) -> None:
        """An import row changes what it names, and adds the channels it lists."""
        if "name" in row:
            self.name = row["name"]
        if "preferredLanguage" in row:
            self.preferred_language = row["preferredLanguage"]
        if "attributes" in row:
            self.attributes = row["attributes"]
        if "quietHours" in row:
            self.quiet_hours = row["quietHours"]
        self.channels |= {(c["type"], c["address"]) for c in row.get("channels", [])}


@dataclass
class ExpectedTemplate:
    """A template's fields, and ``revision``: the number its contents carry (``B<revision>``)."""

    code: str
    owner: str
    name: str
    description: str | None = None
    category: str | None = None
    revision: int = 1


@dataclass
class Model:
    contacts: dict[str, ExpectedContact] = field(default_factory=dict)
    templates: dict[str, ExpectedTemplate] = field(default_factory=dict)
    #: notification id → the plain-text body its emails must carry
    bodies: dict[str, str] = field(default_factory=dict)
    #: notifications whose email content cannot render (the ``number`` filter on "abc")
    unrenderable: set[str] = field(default_factory=set)
    #: messages a killed worker process left ``sending``
    orphans: set[str] = field(default_factory=set)
    #: message ids that were not final when retention purged their notification
    purged_unfinished: set[str] = field(default_factory=set)
    replayed_at: datetime | None = None
    released_at: datetime | None = None
    #: whether this sequence may SIGKILL a worker process (once): it costs a process start
    may_kill: bool = False
    mails_checked: int = 0

    def known_idnp(self, index: int) -> str | None:
        known = sorted(self.contacts)
        return known[index % len(known)] if known else None

    def recipient(self, spec: tuple) -> dict:
        """The wire form of a recipient spec drawn by ``strategies.recipients``."""
        kind = spec[0]
        if kind == "email":
            return {"type": "email", "value": address(spec[1], spec[2])}
        if kind == "user":
            return {"type": "user", "value": spec[1]}
        if kind == "known" and (known := self.known_idnp(spec[1])):
            return {"type": "idnp", "value": known}
        return {"type": "idnp", "value": idnp(UNKNOWN_SERIAL + spec[1] % 3)}

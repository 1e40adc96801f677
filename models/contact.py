"""The contact registry: people by IDNP, their channels, language and subscriptions."""

from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from models.base import BaseModel, JSONField, UTCDateTimeField, utcnow

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
    idnp = CharField(max_length=13, unique=True)
    name = CharField(max_length=200, null=True)
    preferred_language = CharField(max_length=16, null=True)
    attributes = JSONField(default=dict, help_text="values templates can use as contact.attributes")
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)


class ContactChannel(BaseModel):
    """One way to reach a contact: ``type`` is a recipient type (email, phone, viber, …) and
    ``address`` its normalised value, as a direct recipient of that type would be stored."""

    contact = ForeignKeyField(Contact, backref="channels", on_delete="CASCADE", index=False)
    type = CharField(max_length=20)
    address = TextField()
    active = BooleanField(default=True)
    priority = IntegerField(default=100, help_text="lower first (for the fallback policy)")
    deactivated_reason = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("contact", "type", "address"), True),)


class Subscription(BaseModel):
    """A contact's subscription to a service's broadcasts."""

    contact = ForeignKeyField(Contact, backref="subscriptions", on_delete="CASCADE", index=False)
    service_name = CharField(max_length=100)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("contact", "service_name"), True),
            (("service_name", "contact"), False),
        )

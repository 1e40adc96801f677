"""Senders: the information systems that call the API, each with its API keys
(``models.api_key``)."""

from __future__ import annotations

import secrets

from peewee import AutoField, BooleanField, CharField, IntegrityError, TextField

from models.base import BaseModel, JSONField, UTCDateTimeField, utcnow
from models.errors import ModelError

#: What a non-admin sender may be granted (admins have everything).
PERMISSIONS = ("contacts:read", "contacts:write", "resend_failed")


class Sender(BaseModel):
    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    name = CharField(max_length=100, unique=True)
    is_admin = BooleanField(default=False)
    permissions = JSONField(default=list)
    callback_url = TextField(null=True)
    callback_secret = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    def can(self, permission: str) -> bool:
        return self.is_admin or permission in (self.permissions or [])


class SenderExists(ModelError):
    pass


def create_sender(
    name: str, *, admin: bool = False, permissions: list[str] | None = None
) -> tuple[Sender, str]:
    """Create a sender and return it with its first API key, which is shown this once and never
    stored."""
    from models.api_key import add_key  # models.api_key refers to Sender

    with Sender._meta.database.atomic():
        try:
            sender = Sender.create(
                name=name,
                is_admin=admin,
                permissions=sorted(set(permissions or [])),
                callback_secret=secrets.token_hex(32),
            )
        except IntegrityError:
            raise SenderExists(name) from None
        _, key = add_key(sender)
    return sender, key


def rotate_key(sender: Sender) -> str:
    """Give ``sender`` a new API key, revoking every other one, and return it."""
    from models.api_key import add_key, revoke_all_keys

    with Sender._meta.database.atomic():
        revoke_all_keys(sender)
        _, key = add_key(sender)
    return key


def set_grant(sender: Sender, permission: str, granted: bool = True) -> bool:
    """Grant (or revoke) ``permission`` to ``sender``; False when it already was (or was not)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}; known: {', '.join(PERMISSIONS)}")
    current = set(sender.permissions or [])
    if (permission in current) == granted:
        return False
    sender.permissions = sorted(current | {permission} if granted else current - {permission})
    sender.save(only=[Sender.permissions])
    return True


def visible_to(sender: Sender, query, model):
    """``query`` narrowed to the rows of ``model`` that ``sender`` may see: its own, or all for
    an admin. Every read on behalf of a sender goes through here."""
    return query if sender.is_admin else query.where(model.sender == sender)


def sender_for_key(key: str) -> Sender | None:
    """The sender owning ``key`` if the key is usable (not revoked, not expired), or None."""
    from models.api_key import usable_key

    row = usable_key(key)
    return row.sender if row is not None else None

"""Senders: the information systems that call the API, each with a hashed API key."""

from __future__ import annotations

import hashlib
import secrets

from peewee import AutoField, BooleanField, CharField, IntegrityError, TextField

from models.base import BaseModel, JSONField, UTCDateTimeField, utcnow
from models.errors import ModelError

KEY_PREFIX = "hk_"

#: What a non-admin sender may be granted (admins have everything).
PERMISSIONS = ("contacts:read", "contacts:write", "resend_failed")


def hash_key(key: str) -> str:
    """SHA-256 of an API key. Keys are 256 random bits, so a fast hash is enough to store them."""
    return hashlib.sha256(key.encode()).hexdigest()


class Sender(BaseModel):
    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    name = CharField(max_length=100, unique=True)
    key_hash = CharField(max_length=64, unique=True)
    key_hint = CharField(max_length=16, help_text="first characters of the key, for listings")
    is_admin = BooleanField(default=False)
    permissions = JSONField(default=list)
    callback_url = TextField(null=True)
    callback_secret = TextField(null=True, help_text="signs the sender's delivery callbacks")
    webhook_secret = TextField(null=True, help_text="signs webhooks to unregistered URLs (legacy)")
    created_at = UTCDateTimeField(default=utcnow)

    def can(self, permission: str) -> bool:
        return self.is_admin or permission in (self.permissions or [])


class SenderExists(ModelError):
    pass


def create_sender(
    name: str, *, admin: bool = False, permissions: list[str] | None = None
) -> tuple[Sender, str]:
    """Create a sender and return it with its API key, which is shown this once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        sender = Sender.create(
            name=name,
            key_hash=hash_key(key),
            key_hint=key[:10],
            is_admin=admin,
            permissions=sorted(set(permissions or [])),
            callback_secret=secrets.token_hex(32),
            webhook_secret=secrets.token_hex(32),
        )
    except IntegrityError:
        raise SenderExists(name) from None
    return sender, key


def rotate_key(sender: Sender) -> str:
    """Give ``sender`` a new API key (the old one stops working) and return it."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    sender.key_hash, sender.key_hint = hash_key(key), key[:10]
    sender.save(only=[Sender.key_hash, Sender.key_hint])
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
    """The sender owning ``key``, or None."""
    return Sender.get_or_none(Sender.key_hash == hash_key(key))

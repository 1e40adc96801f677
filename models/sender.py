"""Senders: the information systems that call the API, and their API keys.

A sender holds any number of keys, each stored as its SHA-256 hash with a short prefix for
recognition, an optional expiry, and a revocation time once revoked. ``last_used_at`` is
written at most once per key per ``API_KEY_LAST_USED_SECONDS`` and per process (an in-process
memory of the last write, and a guard in the UPDATE that skips a row another process touched
within the interval): it tells when a key was last used to within that interval, without a
write per request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from time import monotonic

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    IntegrityError,
    TextField,
    fn,
)

from models.base import BaseModel, JSONField, UTCDateTimeField, utcnow
from models.db import tuple_rows
from models.errors import ModelError
from settings import settings

KEY_PREFIX = "hk_"

#: What a non-admin sender may be granted (admins have everything).
PERMISSIONS = ("contacts:read", "contacts:write", "resend_failed", "send_critical")


class Sender(BaseModel):
    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    name = CharField(max_length=100, unique=True)
    is_admin = BooleanField(default=False)
    permissions = JSONField(default=list)
    callback_url = TextField(null=True)
    callback_secret = TextField(null=True, help_text="signs the sender's delivery callbacks")
    webhook_secret = TextField(null=True, help_text="signs webhooks to unregistered URLs (legacy)")
    #: Requests need a bound client certificate as well as the key (models/certificate.py).
    require_certificate = BooleanField(default=False)
    created_at = UTCDateTimeField(default=utcnow)
    # rate limits (api/ratelimit.py, tasks/limits.py); NULL: the setting's, 0: none
    rate_limit_per_minute = IntegerField(null=True)
    daily_message_limit = BigIntegerField(null=True)

    def can(self, permission: str) -> bool:
        return self.is_admin or permission in (self.permissions or [])


class SenderExists(ModelError):
    pass


#: Characters of a key kept in clear for listings: ``hk_`` and 7 of its 43 random characters.
PREFIX_LENGTH = 10


def hash_key(key: str) -> str:
    """SHA-256 of an API key. Keys are 256 random bits, so a fast hash is enough to store them."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(BaseModel):
    id = AutoField()
    sender = ForeignKeyField(Sender, backref="api_keys", on_delete="CASCADE")
    key_hash = CharField(max_length=64, unique=True)
    prefix = CharField(max_length=16, help_text="first characters of the key, for listings")
    created_at = UTCDateTimeField(default=utcnow)
    last_used_at = UTCDateTimeField(null=True)
    expires_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)

    def usable(self, now: datetime | None = None) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and not (
            self.expires_at is not None and self.expires_at <= (now or utcnow())
        )


def add_key(sender: Sender, expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key for ``sender``: (its row, the key itself, shown this once and never stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey.create(
        sender=sender, key_hash=hash_key(key), prefix=key[:PREFIX_LENGTH], expires_at=expires_at
    )
    return row, key


def revoke_key(key_id: int) -> ApiKey | None:
    """Revoke the key with this id (it is refused within ``SENDER_CACHE_SECONDS`` by every web
    process); the row, or None when there is no such key. Revoking twice keeps the first time."""
    ApiKey.update(revoked_at=utcnow()).where(
        (ApiKey.id == key_id) & ApiKey.revoked_at.is_null()
    ).execute()
    return ApiKey.get_or_none(ApiKey.id == key_id)


def revoke_all_keys(sender: Sender) -> int:
    """Revoke every key of ``sender`` still open; how many were."""
    open_keys = (ApiKey.sender == sender) & ApiKey.revoked_at.is_null()
    return ApiKey.update(revoked_at=utcnow()).where(open_keys).execute()


def keys_of(sender: Sender) -> list[ApiKey]:
    """Every key ``sender`` holds or held, oldest first."""
    return list(ApiKey.select().where(ApiKey.sender == sender).order_by(ApiKey.id))


def usable_key(key: str, now: datetime | None = None) -> ApiKey | None:
    """The key's row with its sender (one query), if it exists and is neither revoked nor
    expired; otherwise None."""
    row = ApiKey.select(ApiKey, Sender).join(Sender).where(ApiKey.key_hash == hash_key(key)).first()
    return row if row is not None and row.usable(now) else None


def newest_prefixes() -> dict[int, str]:
    """Each sender's newest open key's prefix, by sender id (for listings)."""
    newest = (
        ApiKey.select(ApiKey.sender, fn.MAX(ApiKey.id))
        .where(ApiKey.revoked_at.is_null())
        .group_by(ApiKey.sender)
    )
    ids = [key_id for _, key_id in tuple_rows(newest)]
    rows = ApiKey.select(ApiKey.sender, ApiKey.prefix).where(ApiKey.id.in_(ids))
    return {sender_id: prefix for sender_id, prefix in tuple_rows(rows)}


#: When this process last wrote each key's ``last_used_at`` (monotonic seconds), by key id.
_written: dict[int, float] = {}


def note_use(key_id: int) -> bool:
    """Record that the key was used now, unless this process did within
    ``API_KEY_LAST_USED_SECONDS`` (or another did: the UPDATE's guard); whether it wrote."""
    interval = settings.API_KEY_LAST_USED_SECONDS
    last = _written.get(key_id)
    if last is not None and monotonic() - last < interval:
        return False
    if len(_written) >= 10000:
        _written.clear()
    _written[key_id] = monotonic()
    now = utcnow()
    stale = ApiKey.last_used_at.is_null() | (
        ApiKey.last_used_at <= now - timedelta(seconds=interval)
    )
    ApiKey.update(last_used_at=now).where((ApiKey.id == key_id) & stale).execute()
    return True


def forget_uses() -> None:
    """Forget when this process last wrote each key's use (tests; a fresh process)."""
    _written.clear()


def create_sender(
    name: str, *, admin: bool = False, permissions: list[str] | None = None
) -> tuple[Sender, str]:
    """Create a sender and return it with its first API key, which is shown this once and never
    stored."""
    with Sender._meta.database.atomic():
        try:
            sender = Sender.create(
                name=name,
                is_admin=admin,
                permissions=sorted(set(permissions or [])),
                callback_secret=secrets.token_hex(32),
                webhook_secret=secrets.token_hex(32),
            )
        except IntegrityError:
            raise SenderExists(name) from None
        _, key = add_key(sender)
    return sender, key


def rotate_key(sender: Sender) -> str:
    """Give ``sender`` a new API key, revoking every other one, and return it."""
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
    row = usable_key(key)
    return row.sender if row is not None else None

"""User tokens: signed, expiring bearer tokens that let one person's browser or portal read
that person's inbox, and nothing else.

A token carries the user id, the sender it was minted by (None when an admin minted it: the
user sees every sender's notifications) and its expiry, signed with ``USER_TOKEN_SECRET``.
When that setting is empty, a random secret is created once in the database and shared by
every process using it (``models.server_secret``, wrapped under ``SECRET_KEY``), so tokens
verify across web processes and restarts.

A token also carries when it was minted (milliseconds), so that it can be revoked: a
:class:`TokenRevocation` refuses every token minted before its ``not_before`` for one user or
all users, of one sender or all senders. Verification reads the newest applicable revocation
once per (user, sender) per ``SENDER_CACHE_SECONDS`` in each process. A token minted before
tokens carried the time counts as minted at the start of time (any revocation that applies to
it refuses it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from peewee import AutoField, CharField, ForeignKeyField, fn

from models.base import BaseModel, UTCDateTimeField, utcnow
from models.cache import ExpiringCache
from models.errors import ModelError
from models.sender import Sender
from models.server_secret import server_secret
from settings import settings

#: User tokens start with this, API keys with ``hk_``.
TOKEN_PREFIX = "hu_"
SALT = "herald.user-token"
SECRET_NAME = "user_token"


@dataclass(frozen=True)
class UserToken:
    user: str
    sender_id: int | None
    expires_at: datetime
    #: When it was minted; None for a token minted before tokens carried it.
    issued_at: datetime | None = None


class TokenRevocation(BaseModel):
    """Tokens minted before ``not_before`` are refused: ``user``'s (every user's when None),
    minted by ``sender`` (by any sender, or an admin, when None)."""

    id = AutoField()
    user = CharField(max_length=200, null=True, index=True)
    sender = ForeignKeyField(Sender, null=True, on_delete="CASCADE", index=False)
    not_before = UTCDateTimeField()
    created_at = UTCDateTimeField(default=utcnow)


#: The newest ``not_before`` that applies to (user, sender id), as read recently.
_revoked_before = ExpiringCache(max_entries=10000)


class InvalidToken(ModelError):
    """Forged, malformed or expired."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(server_secret(SECRET_NAME, settings.USER_TOKEN_SECRET), salt=SALT)


def mint_user_token(
    user: str, sender_id: int | None, ttl_seconds: int, now: datetime | None = None
) -> tuple[str, UserToken]:
    """A new token for ``user``, valid ``ttl_seconds`` from ``now``: (token, what it says)."""
    issued_at = now or utcnow()
    expires_at = issued_at + timedelta(seconds=ttl_seconds)
    issued_ms = int(issued_at.timestamp() * 1000)
    payload = {"u": user, "s": sender_id, "e": int(expires_at.timestamp()), "i": issued_ms}
    token = TOKEN_PREFIX + _serializer().dumps(payload)
    minted = datetime.fromtimestamp(issued_ms / 1000, UTC)
    return token, UserToken(user, sender_id, expires_at.replace(microsecond=0), minted)


def verify_user_token(token: str, now: datetime | None = None) -> UserToken:
    """What a token says, if it is genuine, unexpired and not revoked; otherwise
    :class:`InvalidToken`."""
    if not token.startswith(TOKEN_PREFIX):
        raise InvalidToken("not a user token")
    try:
        payload = _serializer().loads(token.removeprefix(TOKEN_PREFIX))
        user, sender_id, expiry = payload["u"], payload["s"], payload["e"]
        issued = payload.get("i")
        expires_at = datetime.fromtimestamp(expiry, UTC)
        issued_at = None if issued is None else datetime.fromtimestamp(issued / 1000, UTC)
    except (BadSignature, KeyError, TypeError, AttributeError) as error:
        raise InvalidToken("forged or malformed") from error
    if expires_at <= (now or utcnow()):
        raise InvalidToken("expired")
    not_before = revoked_before(user, sender_id)
    if not_before is not None and (issued_at is None or issued_at < not_before):
        raise InvalidToken("revoked")
    return UserToken(user, sender_id, expires_at, issued_at)


def revoked_before(user: str, sender_id: int | None) -> datetime | None:
    """The newest ``not_before`` of the revocations that apply to ``user``'s tokens minted by
    ``sender_id`` (None: by an admin), from this process's cache or the database."""
    cached = _revoked_before.get((user, sender_id))
    if cached is not None:
        return cached or None
    scope = TokenRevocation.sender.is_null()
    if sender_id is not None:
        scope |= TokenRevocation.sender == sender_id
    newest = (
        TokenRevocation.select(fn.MAX(TokenRevocation.not_before))
        .where(scope & ((TokenRevocation.user == user) | TokenRevocation.user.is_null()))
        .scalar()
    )
    if isinstance(newest, str):  # SQLite gives an aggregate back as text
        newest = TokenRevocation.not_before.python_value(newest)
    if isinstance(newest, datetime) and newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    _revoked_before.put((user, sender_id), newest or False)
    return newest


def revoke_user_tokens(
    *, user: str | None = None, sender: Sender | None = None, before: datetime | None = None
) -> TokenRevocation:
    """Refuse the tokens minted before ``before`` (default: now) for ``user`` (default: every
    user) by ``sender`` (default: every sender and admins), in every process within
    ``SENDER_CACHE_SECONDS``."""
    return TokenRevocation.create(user=user, sender=sender, not_before=before or utcnow())


def forget_revocations() -> None:
    """Empty this process's cache of revocations (tests)."""
    _revoked_before.clear()

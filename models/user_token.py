"""User tokens: signed, expiring bearer tokens that let one person's browser or portal read
that person's inbox, and nothing else.

A token carries the user id, the sender it was minted by (None when an admin minted it: the
user sees every sender's notifications) and its expiry, signed with ``USER_TOKEN_SECRET``.
When that setting is empty, a random secret is created once in the database and shared by
every process using it (``models.server_secret``), so tokens verify across web processes and
restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from models.base import utcnow
from models.errors import ModelError
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


class InvalidToken(ModelError):
    """Forged, malformed or expired."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(server_secret(SECRET_NAME, settings.USER_TOKEN_SECRET), salt=SALT)


def mint_user_token(
    user: str, sender_id: int | None, ttl_seconds: int, now: datetime | None = None
) -> tuple[str, UserToken]:
    """A new token for ``user``, valid ``ttl_seconds`` from ``now``: (token, what it says)."""
    expires_at = (now or utcnow()) + timedelta(seconds=ttl_seconds)
    payload = {"u": user, "s": sender_id, "e": int(expires_at.timestamp())}
    token = TOKEN_PREFIX + _serializer().dumps(payload)
    return token, UserToken(user, sender_id, expires_at.replace(microsecond=0))


def verify_user_token(token: str, now: datetime | None = None) -> UserToken:
    """What a token says, if it is genuine and unexpired; otherwise :class:`InvalidToken`."""
    if not token.startswith(TOKEN_PREFIX):
        raise InvalidToken("not a user token")
    try:
        payload = _serializer().loads(token.removeprefix(TOKEN_PREFIX))
        user, sender_id, expiry = payload["u"], payload["s"], payload["e"]
    except (BadSignature, KeyError, TypeError) as error:
        raise InvalidToken("forged or malformed") from error
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if expires_at <= (now or utcnow()):
        raise InvalidToken("expired")
    return UserToken(user, sender_id, expires_at)

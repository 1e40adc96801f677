"""VERP return paths: each email's envelope sender is ``bounces+<token>@BOUNCE_DOMAIN``, so a
delivery report that comes back to it names the message it is about.

The token is the message id (16 bytes) and the first 9 bytes of an HMAC-SHA256 of it, keyed
with ``BOUNCE_SECRET`` (or a random secret kept in the database), in lowercase base32: 40
characters of ``a-z2-7``, which survive MTAs that change the case of local parts, and
``bounces+`` + 40 = 48 characters, within a local part's 64. Nobody without the secret can make
a token for a message id; a report to any other address is not about one of Herald's messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid

from models.server_secret import server_secret
from settings import settings

#: The local part's fixed part; the token follows the ``+``.
LOCAL_PREFIX = "bounces+"
SECRET_NAME = "bounce_token"
#: Bytes of the HMAC kept: 72 bits, and 16 + 9 bytes encode to base32 without padding.
MAC_BYTES = 9
TOKEN_LENGTH = 40
_TOKEN = re.compile(rf"[a-z2-7]{{{TOKEN_LENGTH}}}")


def _mac(message_id: bytes) -> bytes:
    key = server_secret(SECRET_NAME, settings.BOUNCE_SECRET).encode()
    return hmac.new(key, b"herald.return-path:" + message_id, hashlib.sha256).digest()[:MAC_BYTES]


def token_for(message_id: uuid.UUID | str) -> str:
    """The return-path token of the message with this id."""
    raw = uuid.UUID(str(message_id)).bytes
    return base64.b32encode(raw + _mac(raw)).decode().lower()


def message_id_of(token: str) -> uuid.UUID | None:
    """The message id a token names, if the token is genuine (in any case); otherwise None."""
    token = token.lower()
    if not _TOKEN.fullmatch(token):
        return None
    try:
        raw = base64.b32decode(token.upper())
    except binascii.Error:
        return None
    message_id, mac = raw[:16], raw[16:]
    if not hmac.compare_digest(mac, _mac(message_id)):
        return None
    return uuid.UUID(bytes=message_id)


def return_path(message_id: uuid.UUID | str | None) -> str | None:
    """The envelope sender for the message with this id; None when BOUNCE_DOMAIN is empty (the
    SMTP library then uses the From address, as before)."""
    if not settings.BOUNCE_DOMAIN or message_id is None:
        return None
    return f"{LOCAL_PREFIX}{token_for(message_id)}@{settings.BOUNCE_DOMAIN}"


def token_in(address: str) -> str | None:
    """The token part of ``address`` if it is a return path at BOUNCE_DOMAIN (genuine or not);
    otherwise None."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    if not settings.BOUNCE_DOMAIN or domain.lower() != settings.BOUNCE_DOMAIN.lower():
        return None
    if not local.lower().startswith(LOCAL_PREFIX):
        return None
    token = local[len(LOCAL_PREFIX) :]
    return token if _TOKEN.fullmatch(token.lower()) else None

"""A message id made into a token only Herald can make: the id (16 bytes) and the first 9
bytes of an HMAC-SHA256 of it under a key and a purpose, in lowercase base32 — 40 characters
of ``a-z2-7``, which survive MTAs that change the case of local parts and fit a local part's
64 with a prefix. The return path and the mailto unsubscribe address are made this way."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid

from settings import settings

#: Bytes of the HMAC kept: 72 bits, and 16 + 9 bytes encode to base32 without padding.
MAC_BYTES = 9
TOKEN_LENGTH = 40
_TOKEN = re.compile(rf"[a-z2-7]{{{TOKEN_LENGTH}}}")


def _mac(key: bytes, purpose: bytes, message_id: bytes) -> bytes:
    return hmac.new(key, purpose + message_id, hashlib.sha256).digest()[:MAC_BYTES]


def token_of(message_id: uuid.UUID | str, key: bytes, purpose: bytes) -> str:
    """The token of the message with this id, for ``purpose``, under ``key``."""
    raw = uuid.UUID(str(message_id)).bytes
    return base64.b32encode(raw + _mac(key, purpose, raw)).decode().lower()


def message_id_in(token: str, key: bytes, purpose: bytes) -> uuid.UUID | None:
    """The message id ``token`` names, if it is genuine (in any case); otherwise None."""
    token = token.lower()
    if not _TOKEN.fullmatch(token):
        return None
    try:
        raw = base64.b32decode(token.upper())
    except binascii.Error:
        return None
    message_id, mac = raw[:16], raw[16:]
    if not hmac.compare_digest(mac, _mac(key, purpose, message_id)):
        return None
    return uuid.UUID(bytes=message_id)


def token_at(address: str, local_prefix: str) -> str | None:
    """The token part of ``address`` if it is ``<local_prefix><token>@BOUNCE_DOMAIN`` (genuine
    or not); otherwise None."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    if not settings.BOUNCE_DOMAIN or domain.lower() != settings.BOUNCE_DOMAIN.lower():
        return None
    if not local.lower().startswith(local_prefix):
        return None
    token = local[len(local_prefix) :]
    return token if _TOKEN.fullmatch(token.lower()) else None

"""Unsubscribe links and addresses for emails (RFC 2369 ``List-Unsubscribe``, RFC 8058 one-click).

Two tokens, no login:

- The link token names who is unsubscribed from what, itself: the subject's kind, the subject
  (an IDNP, or ``email:<address>`` outside the registry) and the service (empty: every
  service), sealed with AES-256-GCM under a key derived from the server secret
  ``unsubscribe_token``, in unpadded base64url. Sealed, not only signed, so that an IDNP or an
  address is not readable in a URL that lands in access logs; and self-contained, so that the
  link still works after retention has purged the message it came in (7 days by default).
- The mail token fits an address's local part (``unsubscribe+`` + 40 = 52 of 64 characters):
  the message id and 9 bytes of an HMAC-SHA256 of it, in lowercase base32 (MTAs may change the
  case of local parts), as the return path's (:mod:`channels.return_path`). It resolves
  through the message row, so a mail to it after the message's purge unsubscribes nobody (the
  link in the same header still does).

Anyone without the secret can make neither; any change to a token is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from channel_table import EMAIL
from channels.message_token import message_id_in, token_at, token_of
from models.contact import Contact
from models.message import Message
from models.preference import ADDRESS, EVERYWHERE, PERSON, address_subject
from models.server_secret import server_secret
from settings import settings

SECRET_NAME = "unsubscribe_token"
#: The path of the one-click endpoint on PUBLIC_BASE_URL; the link token follows it.
PATH = "/unsubscribe/"
#: The mail token's local part prefix, at BOUNCE_DOMAIN.
LOCAL_PREFIX = "unsubscribe+"
#: The longest link token taken: a 400-character subject and a 100-character service fit.
MAX_LINK_TOKEN = 1024
NONCE_BYTES = 12
MAIL_PURPOSE = b"herald.unsubscribe.mail:"
_LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_AAD = b"herald.unsubscribe.link:v1"


@dataclass(frozen=True)
class Target:
    """Who is unsubscribed (``kind`` and ``subject`` as :mod:`models.preference` names them)
    from which ``channel`` of which ``service`` (:data:`~models.preference.EVERYWHERE`: all)."""

    kind: str
    subject: str
    service: str = EVERYWHERE
    channel: str = EMAIL.name


def _secret() -> bytes:
    return server_secret(SECRET_NAME).encode()


def _link_key() -> bytes:
    return _derived(_secret())


@lru_cache(maxsize=4)
def _derived(secret: bytes) -> bytes:
    derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AAD)
    return derive.derive(secret)


def link_token(target: Target) -> str:
    """The sealed token naming ``target``."""
    fields = [target.kind, target.subject, target.service, target.channel]
    plain = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + AESGCM(_link_key()).encrypt(nonce, plain, _AAD)
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def target_of(token: str) -> Target | None:
    """What a link token names, if it is genuine and unaltered; otherwise None."""
    if len(token) > MAX_LINK_TOKEN or not _LINK_TOKEN.fullmatch(token):
        return None
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # one token, one spelling: spare low bits of the last character do not make another
    if base64.urlsafe_b64encode(sealed).decode().rstrip("=") != token:
        return None
    nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    try:
        plain = AESGCM(_link_key()).decrypt(nonce, body, _AAD)
    except (InvalidTag, ValueError):
        return None
    kind, subject, service, channel = json.loads(plain)
    return Target(kind, subject, service, channel)


def mail_token(message_id: uuid.UUID | str) -> str:
    """The mail token of the message with this id."""
    return token_of(message_id, _secret(), MAIL_PURPOSE)


def message_id_of(token: str) -> uuid.UUID | None:
    """The message id a mail token names, if the token is genuine (in any case); else None."""
    return message_id_in(token, _secret(), MAIL_PURPOSE)


def mail_token_in(address: str) -> str | None:
    """The token part of ``address`` if it is an unsubscribe address at BOUNCE_DOMAIN (genuine
    or not); otherwise None."""
    return token_at(address, LOCAL_PREFIX)


def target_for(message: Message) -> Target | None:
    """Whom an email unsubscribes from its service: the registry's person (by the IDNP it was
    addressed by, or its contact's) when there is one, else the address itself; None for a
    message purged after retention (it names nobody any more)."""
    service = message.notification.service_name or EVERYWHERE
    idnp = message.recipient_key
    if not idnp and message.contact_id is not None:
        idnp = Contact.select(Contact.idnp).where(Contact.id == message.contact_id).scalar()
    if idnp:
        return Target(PERSON, idnp, service)
    if not message.destination or not isinstance(message.destination, str):
        return None
    return Target(ADDRESS, address_subject(EMAIL.recipient_type, message.destination), service)


def unsubscribe_url(target: Target) -> str | None:
    """The one-click link for ``target`` on PUBLIC_BASE_URL; None when that is not set."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}{PATH}{link_token(target)}" if base else None


def unsubscribe_mailto(message_id: uuid.UUID | str) -> str | None:
    """The ``mailto:`` unsubscribe address of a message at BOUNCE_DOMAIN; None without one."""
    if not settings.BOUNCE_DOMAIN:
        return None
    return f"mailto:{LOCAL_PREFIX}{mail_token(message_id)}@{settings.BOUNCE_DOMAIN}"

"""VERP return paths: each email's envelope sender is ``bounces+<token>@BOUNCE_DOMAIN``, so a
delivery report that comes back to it names the message it is about.

The token is the message id (16 bytes) and the first 9 bytes of an HMAC-SHA256 of it, keyed
with ``BOUNCE_SECRET`` (or a random secret kept in the database), in lowercase base32: 40
characters of ``a-z2-7``, which survive MTAs that change the case of local parts, and
``bounces+`` + 40 = 48 characters, within a local part's 64. Nobody without the secret can make
a token for a message id; a report to any other address is not about one of Herald's messages.
"""

from __future__ import annotations

import uuid

from channels.message_token import TOKEN_LENGTH, message_id_in, token_at, token_of
from models.server_secret import server_secret
from settings import settings

#: The local part's fixed part; the token follows the ``+``.
LOCAL_PREFIX = "bounces+"
SECRET_NAME = "bounce_token"
__all__ = ["TOKEN_LENGTH", "message_id_of", "return_path", "token_for", "token_in"]
PURPOSE = b"herald.return-path:"


def _key() -> bytes:
    return server_secret(SECRET_NAME, settings.BOUNCE_SECRET).encode()


def token_for(message_id: uuid.UUID | str) -> str:
    """The return-path token of the message with this id."""
    return token_of(message_id, _key(), PURPOSE)


def message_id_of(token: str) -> uuid.UUID | None:
    """The message id a token names, if the token is genuine (in any case); otherwise None."""
    return message_id_in(token, _key(), PURPOSE)


def return_path(message_id: uuid.UUID | str | None) -> str | None:
    """The envelope sender for the message with this id; None when BOUNCE_DOMAIN is empty (the
    SMTP library then uses the From address, as before)."""
    if not settings.BOUNCE_DOMAIN or message_id is None:
        return None
    return f"{LOCAL_PREFIX}{token_for(message_id)}@{settings.BOUNCE_DOMAIN}"


def token_in(address: str) -> str | None:
    """The token part of ``address`` if it is a return path at BOUNCE_DOMAIN (genuine or not);
    otherwise None."""
    return token_at(address, LOCAL_PREFIX)

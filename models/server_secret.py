"""Server secrets: a random secret generated once in the database and shared by every process
using it, for what Herald signs when the operator configured no secret of its own (user
tokens, email return paths).

With ``SECRET_KEY`` set (from the environment, never the database) a secret is stored wrapped:
``fernet:`` and a Fernet token (AES-128-CBC + HMAC-SHA256) under a key derived from
``SECRET_KEY`` by HKDF-SHA256, so the database alone does not hold it. A secret stored in clear
(before ``SECRET_KEY`` was set) is wrapped when a process first reads it, and one wrapped under
``SECRET_KEY_PREVIOUS`` is wrapped again under ``SECRET_KEY``: the secret itself stays the same,
so tokens signed with it stay valid. With ``SECRET_KEY`` empty the database row is the secret in
clear (the development default; the README says to set ``SECRET_KEY`` in production).
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from peewee import CharField, TextField

from models.base import BaseModel, UTCDateTimeField, utcnow
from models.errors import ModelError
from settings import settings

#: Each process's secrets, once read: they never change.
_known: dict[str, str] = {}
WRAPPED = "fernet:"


class ServerSecret(BaseModel):
    """A secret generated once and shared by every process on this database."""

    name = CharField(max_length=50, primary_key=True)
    value = TextField(help_text="the secret, wrapped under SECRET_KEY when that is set")
    created_at = UTCDateTimeField(default=utcnow)


class SecretUnreadable(ModelError):
    """A stored secret is wrapped under a key that neither SECRET_KEY nor SECRET_KEY_PREVIOUS
    gives (or SECRET_KEY is empty)."""


def _fernet(secret_key: str) -> Fernet:
    derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"herald.server-secret")
    return Fernet(base64.urlsafe_b64encode(derive.derive(secret_key.encode())))


def _keys() -> MultiFernet | None:
    """The wrapping keys, current first; None without SECRET_KEY."""
    if not settings.SECRET_KEY:
        return None
    configured = [settings.SECRET_KEY, settings.SECRET_KEY_PREVIOUS]
    return MultiFernet([_fernet(key) for key in configured if key])


def wrap(secret: str) -> str:
    """How ``secret`` is stored: wrapped under SECRET_KEY, or as it is without one."""
    keys = _keys()
    return secret if keys is None else WRAPPED + keys.encrypt(secret.encode()).decode()


def unwrap(stored: str) -> str:
    """The secret a stored value holds."""
    if not stored.startswith(WRAPPED):
        return stored
    keys = _keys()
    if keys is None:
        raise SecretUnreadable("a server secret is wrapped, and SECRET_KEY is not set")
    try:
        return keys.decrypt(stored.removeprefix(WRAPPED).encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "a server secret is wrapped under a key that is neither SECRET_KEY nor "
            "SECRET_KEY_PREVIOUS"
        ) from None


def _current(stored: str) -> bool:
    """Whether ``stored`` is as this process would store it now (so needs no rewrap)."""
    keys = _keys()
    if keys is None:
        return True
    if not stored.startswith(WRAPPED):
        return False
    try:
        _fernet(settings.SECRET_KEY).decrypt(stored.removeprefix(WRAPPED).encode())
    except InvalidToken:
        return False
    return True


def seal(row: ServerSecret) -> bool:
    """Store ``row`` wrapped under the current SECRET_KEY if it is not yet (in clear, or under
    SECRET_KEY_PREVIOUS); whether it was rewritten. The secret itself does not change."""
    if _current(row.value):
        return False
    secret = unwrap(row.value)
    updated = ServerSecret.update(value=wrap(secret)).where(
        (ServerSecret.name == row.name) & (ServerSecret.value == row.value)
    )
    return updated.execute() == 1


def seal_all() -> list[str]:
    """Wrap every stored secret under the current SECRET_KEY (``herald db upgrade`` does);
    the names of those rewritten."""
    return [row.name for row in ServerSecret.select() if seal(row)]


def server_secret(name: str, configured: str = "") -> str:
    """``configured`` when it is set (the operator's setting); otherwise the secret called
    ``name``, created on first use (the first process to ask wins, the others read it)."""
    if configured:
        return configured
    if name not in _known:
        created = ServerSecret.insert(name=name, value=wrap(secrets.token_urlsafe(48)))
        created.on_conflict_ignore().execute()
        row = ServerSecret.get_by_id(name)
        _known[name] = unwrap(row.value)
        seal(row)
    return _known[name]

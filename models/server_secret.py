"""Server secrets: a random secret generated once in the database and shared by every process
using it, for what Herald signs when the operator configured no secret of its own (user
tokens, email return paths)."""

from __future__ import annotations

import secrets

from peewee import CharField, TextField

from models.base import BaseModel, UTCDateTimeField, utcnow

#: Each process's secrets, once read: they never change.
_known: dict[str, str] = {}


class ServerSecret(BaseModel):
    """A secret generated once and shared by every process on this database."""

    name = CharField(max_length=50, primary_key=True)
    value = TextField()
    created_at = UTCDateTimeField(default=utcnow)


def server_secret(name: str, configured: str = "") -> str:
    """``configured`` when it is set (the operator's setting); otherwise the secret called
    ``name``, created on first use (the first process to ask wins, the others read it)."""
    if configured:
        return configured
    if name not in _known:
        created = ServerSecret.insert(name=name, value=secrets.token_urlsafe(48))
        created.on_conflict_ignore().execute()
        _known[name] = ServerSecret.get_by_id(name).value
    return _known[name]

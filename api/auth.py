"""API key authentication: ``Authorization: Bearer <key>`` identifies the calling sender."""

from __future__ import annotations

from flask import g, request
from flask_smorest import abort

from models.sender import Sender, sender_for_key

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="herald"'}


def authenticate() -> None:
    """Set ``g.sender`` from the bearer key, or answer 401."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > 200:
        abort(401, headers=CHALLENGE)
    sender = sender_for_key(key)
    if sender is None:
        abort(401, message="The API key is not valid.", headers=CHALLENGE)
    g.sender = sender


def current_sender() -> Sender:
    return g.sender


def require(permission: str) -> Sender:
    """The current sender, if it holds ``permission`` (admins hold all); otherwise 403."""
    sender = current_sender()
    if not sender.can(permission):
        abort(403, message=f"This API key lacks the {permission!r} permission.")
    return sender

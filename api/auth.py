"""API key authentication: ``Authorization: Bearer <key>`` identifies the calling sender."""

from __future__ import annotations

from flask import g, request
from flask_smorest import abort

from api.client_certificate import (
    certificate_sender,
    check_certificate,
    forget_checked_certificates,
)
from models.cache import ExpiringCache
from models.inbox import Reader
from models.sender import Sender, sender_for_key
from models.user_token import TOKEN_PREFIX, InvalidToken, verify_user_token

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="herald"'}
#: The longest bearer credential read (user tokens carry a user id of up to 200 characters).
MAX_CREDENTIAL = 1000
#: Keys checked recently, and their senders.
_checked = ExpiringCache(max_entries=1000)


def _bearer() -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > MAX_CREDENTIAL:
        abort(401, headers=CHALLENGE)
    return key


def _user_token(token: str):
    try:
        return verify_user_token(token)
    except InvalidToken as invalid:
        abort(401, message=f"The user token is not valid ({invalid}).", headers=CHALLENGE)


def authenticate() -> None:
    """Set ``g.sender`` from the bearer key (or a bound client certificate: see
    ``api.client_certificate``), or answer 401 (403 for a user token, which reaches only the
    inbox)."""
    if (holder := certificate_sender()) is not None:
        g.sender = holder
        return
    key = _bearer()
    if key.startswith(TOKEN_PREFIX):
        _user_token(key)
        abort(403, message="A user token reaches only the /v1/inbox endpoints.")
    if len(key) > 200:
        abort(401, headers=CHALLENGE)
    g.sender = _sender(key)
    check_certificate(g.sender)


def _sender(key: str) -> Sender:
    """The key's sender, from this process's short-lived cache or the database (one query
    per request was a tenth of an accepted POST). Unknown keys are never cached."""
    sender = _checked.get(key)
    if sender is not None:
        return sender
    sender = sender_for_key(key)
    if sender is None:
        abort(401, message="The API key is not valid.", headers=CHALLENGE)
    _checked.put(key, sender)
    return sender


def forget_checked_keys() -> None:
    """Empty this process's cache of checked keys (a changed sender is then read at once)."""
    _checked.clear()
    forget_checked_certificates()


def current_sender() -> Sender:
    return g.sender


def require(permission: str) -> Sender:
    """The current sender, if it holds ``permission`` (admins hold all); otherwise 403."""
    sender = current_sender()
    if not sender.can(permission):
        abort(403, message=f"This API key lacks the {permission!r} permission.")
    return sender


def authenticate_user() -> None:
    """Set ``g.reader`` from a bearer user token, or answer 401 (403 for an API key)."""
    token = _bearer()
    if not token.startswith(TOKEN_PREFIX):
        abort(403, message="The inbox takes a user token (POST /v1/inbox/tokens), not an API key.")
    claims = _user_token(token)
    g.reader = Reader(claims.user, claims.sender_id)


def current_reader() -> Reader:
    return g.reader

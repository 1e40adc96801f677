"""API key authentication: ``Authorization: Bearer <key>`` identifies the calling sender.

Each web process trusts a key it checked for ``SENDER_CACHE_SECONDS`` (a revoked key is refused
within that time; an expired one at once, its expiry being cached with it) and records the
key's use at most once per ``API_KEY_LAST_USED_SECONDS`` (``models.sender.note_use``)."""

from __future__ import annotations

from flask import g, request
from flask_smorest import abort

from api.client_certificate import (
    certificate_sender,
    check_certificate,
    forget_checked_certificates,
)
from models.base import utcnow
from models.cache import ExpiringCache
from models.inbox import Reader
from models.sender import Sender, forget_uses, hash_key, note_use, usable_key
from models.user_token import TOKEN_PREFIX, InvalidToken, forget_revocations, verify_user_token

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="herald"'}
#: The longest bearer credential read (user tokens carry a user id of up to 200 characters).
MAX_CREDENTIAL = 1000
#: Keys checked recently, by hash: (key id, sender, expiry or None).
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
    per request was a tenth of an accepted POST). Unknown, revoked and expired keys are never
    cached; a cached key is refused once its expiry passes."""
    digest = hash_key(key)
    checked = _checked.get(digest)
    if checked is None or (checked[2] is not None and checked[2] <= utcnow()):
        row = usable_key(key)
        if row is None:
            abort(401, message="The API key is not valid.", headers=CHALLENGE)
        checked = (row.id, row.sender, row.expires_at)
        _checked.put(digest, checked)
    note_use(checked[0])
    return checked[1]


def forget_checked_keys() -> None:
    """Empty this process's cache of checked keys (a changed sender is then read at once) and
    of user-token revocations, and forget when key uses were last written."""
    _checked.clear()
    forget_uses()
    forget_revocations()
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

"""``Idempotency-Key``: the same key with the same body answers the first response again; with a
different body, 422. Keys are per sender, and remembered for IDEMPOTENCY_TTL_SECONDS (never past
their notification's retention): then a request with the key is a new one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps

from flask import g, make_response, request
from flask_smorest import abort

from api.auth import current_sender
from models.idempotency import Idempotency, IdempotencyReplay, save_idempotent_response
from settings import settings
from tasks.submit import Answer

HEADER = "Idempotency-Key"


def fingerprint() -> str:
    """SHA-256 of the request body as canonical JSON (key order and spacing do not matter)."""
    body = request.get_json(silent=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def requested_idempotency() -> Idempotency | None:
    """The request's idempotency key and body fingerprint, or None without the header (read
    once per request)."""
    if "idempotency" not in g:
        g.idempotency = _requested_idempotency()
    return g.idempotency


def _requested_idempotency() -> Idempotency | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= settings.IDEMPOTENCY_KEY_MAX_LENGTH or not key.isprintable():
        abort(
            400,
            errors={
                HEADER: [
                    f"Must be 1 to {settings.IDEMPOTENCY_KEY_MAX_LENGTH} printable characters."
                ]
            },
        )
    return Idempotency(key, fingerprint())


def idempotent(dump: Callable[[object], dict], status_code: int):
    """Wrap a view that calls ``submit_notification`` so that key reuse replays or conflicts.

    ``dump`` serialises the stored notification when the first response was never saved (the
    first request crashed between its commit and saving its response).
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            try:
                response = view(*args, **kwargs)
            except IdempotencyReplay as replay:
                return _replay(replay.record, dump, status_code)
            idempotency = requested_idempotency()
            kept = g.pop("idempotent_response_kept", False)
            if idempotency and response.status_code == status_code and not kept:
                save_idempotent_response(
                    current_sender(), idempotency.key, status_code, response.get_json()
                )
            return response

        return wrapper

    return decorator


class KeptAnswer:
    """An ``answer`` for ``submit_notification`` (made by ``make``) that the idempotency record
    keeps in the notification's own transaction; it remembers what it ``made``, and the
    :func:`idempotent` wrapper then saves nothing more."""

    def __init__(self, make: Answer):
        self.make = make
        self.made: tuple[int, dict] | None = None

    def __call__(self, notification, messages) -> tuple[int, dict]:
        self.made = self.make(notification, messages)
        g.idempotent_response_kept = True
        return self.made


def _replay(record, dump, status_code: int):
    if record.fingerprint != fingerprint():
        abort(422, message=f"This {HEADER} was used with a different request body.")
    if record.response is None:
        return make_response(dump(record.notification), status_code)
    return make_response(record.response, record.status_code)

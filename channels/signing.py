"""Signatures on what Herald POSTs to other systems (webhook messages and delivery callbacks).

Every such request carries::

    Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the secret>

The secret is a webhook endpoint's (``POST /v1/webhook-endpoints``) for a webhook to a registered
endpoint, the sender's legacy ``webhook_secret`` for one to any other URL, and the sender's
``callback_secret`` for delivery callbacks (``herald senders show-secret NAME``). A receiver
checks it with :func:`verify` or the same few lines in its own language:

1. split the header on ``,`` into ``key=value`` pairs; take ``t`` and every ``v1``;
2. refuse the request if ``t`` is more than five minutes from the receiver's clock (replays);
3. compute ``HMAC-SHA256(secret, f"{t}.".encode() + raw_body)`` as lowercase hex and compare it
   with each ``v1`` in constant time (``hmac.compare_digest``); accept if one matches.

Sign and verify the raw bytes of the body as received, before any JSON parsing.

Each request also carries the `Standard Webhooks <https://www.standardwebhooks.com>`_ headers
(:func:`signed_headers`), which receivers check with the maintained ``standardwebhooks``
libraries::

    webhook-id: <the message id, or the callback id: the same on every retry>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>"> [v1,<…> …]

keyed with the base64-decoded part of the secret after ``whsec_``; one ``v1,…`` per secret
that signs (two while a rotated endpoint secret is in its grace), space-separated.
``Herald-Signature`` is the legacy form, kept for existing receivers: one ``v1=`` per secret,
each keyed with the secret's text as it is shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Sequence

HEADER = "Herald-Signature"
#: The Standard Webhooks headers.
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
#: Longest header :func:`verify` will parse; anything longer is refused unread.
MAX_HEADER_LENGTH = 1024


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` value: hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str | Sequence[str], body: bytes, now: float | None = None) -> str:
    """The ``Herald-Signature`` header value for ``body`` sent at ``now`` (unix seconds): one
    ``v1`` per secret."""
    timestamp = int(time.time() if now is None else now)
    secrets = (secret,) if isinstance(secret, str) else secret
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets)])


def standard_key(secret: str) -> bytes:
    """The HMAC key of a secret in the Standard Webhooks form: the base64 after ``whsec_``
    decoded (as the ``standardwebhooks`` libraries do; a legacy hex secret decodes too)."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "==")
    except (binascii.Error, ValueError):
        key = b""
    return key or secret.encode()


def standard_signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` of the ``webhook-signature`` header."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets: Sequence[str], webhook_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The signature headers of a request: the Standard Webhooks three and the legacy
    ``Herald-Signature``, one signature per secret in each, all at the same timestamp."""
    timestamp = int(time.time() if now is None else now)
    return {
        ID_HEADER: webhook_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(
            standard_signature(secret, webhook_id, timestamp, body) for secret in secrets
        ),
        HEADER: sign(secrets, body, now=timestamp),
    }


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` with ``secret``, made within
    ``tolerance_seconds`` of ``now`` (default: the current time)."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        return False
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in candidates)

"""Signatures on what Herald POSTs to other systems (webhook messages and delivery callbacks).

Every such request carries::

    Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the secret>

The secret is the sender's ``callback_secret`` (``herald senders show-secret NAME``). A receiver
checks it with :func:`verify` or the same few lines in its own language:

1. split the header on ``,`` into ``key=value`` pairs; take ``t`` and every ``v1``;
2. refuse the request if ``t`` is more than five minutes from the receiver's clock (replays);
3. compute ``HMAC-SHA256(secret, f"{t}.".encode() + raw_body)`` as lowercase hex and compare it
   with each ``v1`` in constant time (``hmac.compare_digest``); accept if one matches.

Sign and verify the raw bytes of the body as received, before any JSON parsing.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Herald-Signature"
#: Longest header :func:`verify` will parse; anything longer is refused unread.
MAX_HEADER_LENGTH = 1024


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` value: hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: float | None = None) -> str:
    """The ``Herald-Signature`` header value for ``body`` sent at ``now`` (unix seconds)."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


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

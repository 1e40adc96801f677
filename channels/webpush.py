"""Web push to browsers (RFC 8030): the payload is encrypted for the subscription (aes128gcm,
RFC 8291) by pywebpush and the request is signed with the server's VAPID key (RFC 8292).

A recipient is the browser's PushSubscription ``{"endpoint", "keys": {"p256dh", "auth"}}``;
it is stored as canonical JSON. Push endpoints are capability URLs, so messages name only the
push service's host.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher

from channel_table import WEBPUSH
from channels import http, urlguard
from channels.base import (
    Channel,
    InvalidContent,
    InvalidDestination,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
)
from models.states import FailureReason
from settings import settings

#: Push services must accept 4096 bytes of encrypted body (RFC 8291 §4); aes128gcm adds a
#: 86-byte header (salt, record size, sender key), a 16-byte tag and a padding delimiter.
MAX_PAYLOAD_BYTES = 4096 - 86 - 16 - 1
#: VAPID tokens may live up to 24 hours (RFC 8292 §2); ours live 12.
VAPID_TOKEN_SECONDS = 12 * 3600
MAX_SUBSCRIPTION_CHARS = 4096
DEAD_STATUSES = (404, 410)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]{1,200}={0,2}")


class WebPushChannel(Channel):
    row = WEBPUSH
    required_settings = ("VAPID_PRIVATE_KEY",)

    def parse_destination(self, value: Any) -> str:
        return canonical_subscription(value)

    def check_content(self, content: dict[str, Any]) -> None:
        subject, url, data = content.get("subject"), content.get("action_url"), content.get("data")
        size = len(payload(subject, content["body"], url, data))
        if size > MAX_PAYLOAD_BYTES:
            raise InvalidContent(
                "body",
                f"Web push payload (subject, body, actionUrl and data as JSON) is {size} bytes; "
                f"push services take at most {MAX_PAYLOAD_BYTES}.",
            )

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        self.require_configured()
        subscription = stored_subscription(destination)
        endpoint = subscription["endpoint"]
        data = payload(rendered.subject, rendered.body, rendered.action_url, rendered.data)
        if len(data) > MAX_PAYLOAD_BYTES:
            raise PermanentError(
                FailureReason.REJECTED_BY_PROVIDER,
                f"payload too large: {len(data)} bytes, push services take {MAX_PAYLOAD_BYTES}",
            )
        target = check_endpoint(endpoint)
        headers = {
            **vapid_authorization(endpoint),
            "TTL": str(settings.WEBPUSH_TTL_SECONDS),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        body = WebPusher(subscription).encode(data, "aes128gcm")["body"]
        response = http.call_checked("POST", target, data=body, headers=headers)
        if response.status_code == 413:
            raise PermanentError(
                FailureReason.REJECTED_BY_PROVIDER,
                f"{http.host(endpoint)} answered 413: payload too large "
                f"({len(body)} bytes encrypted)",
            )
        http.raise_for_status(response, dead=DEAD_STATUSES)
        location = response.headers.get("Location")
        return Receipt(
            provider_id=location[:2000] if location else None,
            details={"pushService": http.host(endpoint), "status": response.status_code},
        )

    def close(self) -> None:
        http.close_session()


def payload(title: str | None, body: str, url: str | None, data: dict | None) -> bytes:
    """What the service worker's ``push`` event receives, as UTF-8 JSON."""
    document = {"title": title, "body": body, "url": url, "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


# --- subscriptions -------------------------------------------------------------------------
def canonical_subscription(value: Any) -> str:
    """Validate a PushSubscription (object, or its JSON) and return it as canonical JSON with
    only ``endpoint`` and ``keys.p256dh``/``keys.auth`` (base64url, unpadded)."""
    subscription = _as_object(value)
    endpoint = subscription.get("endpoint")
    if not isinstance(endpoint, str):
        raise InvalidDestination("endpoint is required: the push service URL.")
    try:
        endpoint = urlguard.check_url_syntax(endpoint)
    except urlguard.UnsafeURL as error:
        raise InvalidDestination(f"endpoint: {error}") from None
    keys = subscription.get("keys")
    if not isinstance(keys, dict):
        raise InvalidDestination("keys is required: an object with p256dh and auth.")
    p256dh = _decode(keys.get("p256dh"))
    if p256dh is None or not _is_p256_point(p256dh):
        raise InvalidDestination("keys.p256dh must be a base64url P-256 public key.")
    auth = _decode(keys.get("auth"))
    if auth is None or len(auth) != 16:
        raise InvalidDestination("keys.auth must be a base64url 16-byte secret.")
    canonical = {"endpoint": endpoint, "keys": {"p256dh": _encode(p256dh), "auth": _encode(auth)}}
    return json.dumps(canonical, separators=(",", ":"))


def stored_subscription(destination: str) -> dict[str, Any]:
    """The subscription a message was accepted with (see :func:`canonical_subscription`)."""
    try:
        subscription = json.loads(destination)
        parts = (
            subscription["endpoint"],
            subscription["keys"]["p256dh"],
            subscription["keys"]["auth"],
        )
        complete = all(isinstance(part, str) for part in parts)
    except (ValueError, TypeError, KeyError):
        complete = False
    if not complete:
        raise PermanentError(
            FailureReason.INVALID_DESTINATION, "stored destination is not a push subscription"
        )
    return subscription


def _as_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and len(value) <= MAX_SUBSCRIPTION_CHARS:
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if not isinstance(value, dict):
        raise InvalidDestination(
            'Must be a PushSubscription object: {"endpoint": …, "keys": {"p256dh": …, "auth": …}}.'
        )
    return value


def _decode(text: Any) -> bytes | None:
    """base64url (padded or not) to bytes; None when it is not base64url."""
    if not isinstance(text, str) or not _BASE64URL.fullmatch(text):
        return None
    unpadded = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        return None


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _is_p256_point(raw: bytes) -> bool:
    if len(raw) != 65 or raw[0] != 4:
        return False
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        return False
    return True


def check_endpoint(endpoint: str) -> urlguard.CheckedURL:
    """At send time, the URL guard with DNS: the endpoint and the addresses to post to. A name
    that does not resolve now may later (transient); an address that is private, or a URL no
    longer allowed, is never sent to (permanent)."""
    hostname = urlsplit(endpoint).hostname
    try:
        return urlguard.check_url(endpoint)
    except urlguard.Unresolvable:
        raise TransientError(f"cannot resolve push service {hostname}") from None
    except urlguard.UnsafeURL as error:
        raise PermanentError(
            FailureReason.INVALID_DESTINATION, f"push endpoint at {hostname} refused: {error}"
        ) from None


# --- VAPID ---------------------------------------------------------------------------------
def vapid_authorization(endpoint: str) -> dict[str, str]:
    """The ``Authorization: vapid t=<JWT>, k=<public key>`` header for ``endpoint``'s push
    service. A missing or broken key is a configuration problem: transient, never the
    message's fault."""
    signer = _vapid_signer(settings.VAPID_PRIVATE_KEY)
    public = _public_key(signer)
    if settings.VAPID_PUBLIC_KEY and settings.VAPID_PUBLIC_KEY.rstrip("=") != public:
        raise TransientError(
            "web push is misconfigured: VAPID_PUBLIC_KEY does not match VAPID_PRIVATE_KEY"
        )
    claims = {
        "aud": origin(endpoint),
        "exp": int(time.time()) + VAPID_TOKEN_SECONDS,
        "sub": settings.VAPID_SUBJECT,
    }
    try:
        return signer.sign(claims)
    except VapidException as error:
        raise TransientError(f"web push is misconfigured: VAPID signing failed: {error}") from None


def origin(url: str) -> str:
    """The URL's origin (RFC 6454), the VAPID ``aud``: scheme://host[:port], default port
    left out."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}"


@functools.lru_cache(maxsize=4)
def _vapid_signer(private_key: str) -> Vapid:
    if not private_key:
        raise TransientError(
            "web push is not configured: set VAPID_PRIVATE_KEY (see `herald vapid generate`)"
        )
    try:
        signer = Vapid.from_string(private_key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        signer = None
    key = getattr(signer, "private_key", None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise TransientError(
            "web push is misconfigured: VAPID_PRIVATE_KEY is not a base64url P-256 private key"
        )
    return signer


def _public_key(signer: Vapid) -> str:
    raw = signer.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _encode(raw)


def vapid_public_key() -> str | None:
    """The key browsers pass as ``applicationServerKey``: VAPID_PUBLIC_KEY, else the one
    derived from VAPID_PRIVATE_KEY; None when web push is not configured."""
    if settings.VAPID_PUBLIC_KEY:
        return settings.VAPID_PUBLIC_KEY
    try:
        return _public_key(_vapid_signer(settings.VAPID_PRIVATE_KEY))
    except TransientError:
        return None


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair as (private, public): the private key is the raw 32-byte scalar and
    the public key the 65-byte uncompressed point, both base64url without padding."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = _encode(key.private_numbers().private_value.to_bytes(32, "big"))
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return private, _encode(public)

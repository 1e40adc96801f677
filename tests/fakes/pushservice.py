"""A browser push service (RFC 8030) on 127.0.0.1, and the browser side of a subscription.

The service checks each push as a real one does, with its own code rather than the libraries
Herald sends with: the VAPID ``Authorization`` header (RFC 8292: ES256 JWT signed by the ``k``
key, which must be the key the subscription was made with; ``aud``, ``exp``, ``sub``), the
``TTL`` and ``Content-Encoding: aes128gcm`` headers, and it decrypts the body (RFC 8291/8188)
with the subscriber's private key and auth secret. A request that fails a check is answered
as a push service would (400/401/403) and its reason kept in ``rejections``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.fakes.http import FakeProvider, Request, Response

MAX_BODY_BYTES = 4096
MAX_VAPID_LIFETIME = 24 * 3600


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _point(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt=salt, info=info).derive(ikm)


class Subscriber:
    """The browser: a P-256 key pair and an auth secret, as ``PushManager.subscribe`` makes."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.public_point = _point(self.private_key.public_key())
        self.auth_secret = os.urandom(16)

    def subscription(self, endpoint: str) -> dict[str, Any]:
        """The object ``PushSubscription.toJSON()`` returns."""
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {
                "p256dh": b64url_encode(self.public_point),
                "auth": b64url_encode(self.auth_secret),
            },
        }

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291: one aes128gcm record whose key id is the sender's ephemeral public key."""
        salt, record_size, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        sender_point, ciphertext = body[21 : 21 + id_length], body[21 + id_length :]
        if id_length != 65 or len(ciphertext) > record_size or record_size < 18:
            raise ValueError("not a single aes128gcm record keyed by a P-256 point")
        sender_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_point)
        shared = self.private_key.exchange(ec.ECDH(), sender_key)
        key_info = b"WebPush: info\x00" + self.public_point + sender_point
        ikm = _hkdf(self.auth_secret, shared, key_info, 32)
        cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
        nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        content, delimiter, _ = padded.rstrip(b"\x00").rpartition(b"\x02")
        if not delimiter:
            raise ValueError("the last record has no padding delimiter")
        return content


@dataclass
class Push:
    """A push the service accepted for a subscriber, decrypted."""

    payload: Any
    headers: dict[str, str]
    claims: dict[str, Any]
    arrived_at: float


class Rejected(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


class PushService(FakeProvider):
    """Endpoints are ``/push/<token>``; unknown tokens are 404, unsubscribed ones 410.

    ``answers`` are given, in turn, to requests that pass every check (429, 503, …), instead of
    201 Created; ``max_body`` is the largest body the service takes (413 above).
    """

    def __init__(self, application_server_key: str) -> None:
        super().__init__()
        self.application_server_key = application_server_key
        self.subscribers: dict[str, Subscriber] = {}
        self.unsubscribed: set[str] = set()
        self.answers: list[Response] = []
        self.max_body = MAX_BODY_BYTES
        self.pushes: list[Push] = []
        self.arrivals: list[float] = []
        self.rejections: list[str] = []

    def subscribe(self) -> tuple[Subscriber, dict[str, Any]]:
        """A new browser subscription: the subscriber and its PushSubscription JSON."""
        token = secrets.token_urlsafe(24)
        subscriber = self.subscribers[token] = Subscriber()
        return subscriber, subscriber.subscription(f"{self.url}/push/{token}")

    def unsubscribe(self, subscription: dict[str, Any]) -> None:
        token = subscription["endpoint"].rsplit("/", 1)[1]
        del self.subscribers[token]
        self.unsubscribed.add(token)

    def respond(self, request: Request) -> Response:
        self.arrivals.append(time.monotonic())
        try:
            push = self._accept(request)
        except Rejected as rejection:
            if rejection.status < 404:
                self.rejections.append(str(rejection))
            return Response(rejection.status, {"reason": str(rejection)})
        self.pushes.append(push)
        if self.answers:
            return self.answers.pop(0)
        location = f"{self.url}/message/{secrets.token_urlsafe(12)}"
        return Response(201, b"", {"Location": location})

    def _accept(self, request: Request) -> Push:
        headers = {name.lower(): value for name, value in request.headers.items()}
        if request.method != "POST" or not request.path.startswith("/push/"):
            raise Rejected(404, "no such resource")
        claims = self._verify_vapid(headers.get("authorization", ""))
        token = request.path.removeprefix("/push/")
        if token in self.unsubscribed:
            raise Rejected(410, "subscription expired or unsubscribed")
        if token not in self.subscribers:
            raise Rejected(404, "no such subscription")
        if headers.get("content-encoding") != "aes128gcm":
            raise Rejected(400, f"Content-Encoding {headers.get('content-encoding')!r}")
        if not headers.get("ttl", "").isdigit():
            raise Rejected(400, f"TTL {headers.get('ttl')!r}")
        if len(request.body) > self.max_body:
            raise Rejected(413, "payload too large")
        try:
            payload = json.loads(self.subscribers[token].decrypt(request.body))
        except (ValueError, InvalidTag, IndexError) as error:
            raise Rejected(400, f"cannot decrypt: {error!r}") from None
        return Push(payload, headers, claims, time.monotonic())

    def _verify_vapid(self, authorization: str) -> dict[str, Any]:
        """RFC 8292 §3: ``vapid t=<JWT>, k=<key>``; the JWT is ES256, signed by ``k``."""
        scheme, _, params = authorization.partition(" ")
        fields = dict(part.strip().partition("=")[::2] for part in params.split(","))
        if scheme.lower() != "vapid" or not fields.get("t") or not fields.get("k"):
            raise Rejected(401, f"not a VAPID Authorization header: {authorization!r}")
        if fields["k"] != self.application_server_key:
            raise Rejected(403, "k is not the key the subscription was made with")
        try:
            header, claims, signature = (b64url_decode(part) for part in fields["t"].split("."))
            signer = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(fields["k"])
            )
            if json.loads(header) != {"typ": "JWT", "alg": "ES256"} or len(signature) != 64:
                raise ValueError("not an ES256 JWT")
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            signed = fields["t"].rpartition(".")[0].encode()
            signer.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
            claims = json.loads(claims)
        except (ValueError, InvalidSignature) as error:
            raise Rejected(401, f"bad VAPID token: {error!r}") from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = time.time()
        if claims.get("aud") != self.url:
            raise Rejected(401, f"aud {claims.get('aud')!r} is not {self.url}")
        if not isinstance(claims.get("exp"), int) or not now < claims["exp"] <= now + (
            MAX_VAPID_LIFETIME
        ):
            raise Rejected(401, f"exp {claims.get('exp')!r} not within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise Rejected(401, f"sub {claims.get('sub')!r} is not a mailto: or https: URL")

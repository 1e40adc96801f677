"""Client certificates bound to senders (MNotify's MPass registration): a request presenting a
bound certificate, over Herald's own TLS or forwarded by a trusted proxy, is that sender.

A binding is the SHA-256 fingerprint of the certificate's DER encoding, the one value both
paths see (the TLS peer's DER, a proxy's PEM decoded). A sender may hold several (renewals
overlap); a fingerprint belongs to one sender. Fingerprints are public, so they are stored as
they are; the subject and expiry are kept for listings only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from peewee import AutoField, CharField, ForeignKeyField, IntegrityError

from models.base import BaseModel, UTCDateTimeField, utcnow
from models.errors import ModelError
from models.sender import Sender

#: The largest PEM file or forwarded certificate read (a certificate is a few KB).
MAX_PEM_BYTES = 64 * 1024
#: A fingerprint as written: 64 hex digits, optionally in colon-separated pairs.
FINGERPRINT = re.compile(r"(?:[0-9a-f]{2}:){31}[0-9a-f]{2}|[0-9a-f]{64}", re.I)


class ClientCertificate(BaseModel):
    id = AutoField()
    sender = ForeignKeyField(Sender, on_delete="CASCADE")
    sender_id: int  # peewee's accessor for the key's raw value
    fingerprint = CharField(max_length=64, unique=True, help_text="SHA-256 of the DER, hex")
    subject = CharField(max_length=500)
    not_after = UTCDateTimeField()
    created_at = UTCDateTimeField(default=utcnow)


class InvalidCertificate(ModelError):
    """Not one PEM X.509 certificate (the message says why)."""


class CertificateTaken(ModelError):
    """The certificate is bound to another sender (named in the message)."""


@dataclass(frozen=True)
class Certificate:
    """What Herald keeps of a certificate."""

    fingerprint: str
    subject: str
    not_before: datetime
    not_after: datetime

    def expired(self, now: datetime | None = None) -> bool:
        return self.not_after < (now or utcnow())

    def valid_now(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.not_before <= now <= self.not_after


def fingerprint_of_der(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def read_pem(data: bytes) -> Certificate:
    """The one certificate in PEM ``data``, or InvalidCertificate."""
    if len(data) > MAX_PEM_BYTES:
        raise InvalidCertificate(f"larger than {MAX_PEM_BYTES // 1024} KB")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise InvalidCertificate("no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise InvalidCertificate(f"not a readable PEM certificate ({error})") from None
    if len(certificates) != 1:
        raise InvalidCertificate(f"{len(certificates)} certificates in it; give one")
    return _described(certificates[0])


def _described(certificate: x509.Certificate) -> Certificate:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Certificate(
        fingerprint=fingerprint_of_der(certificate.public_bytes(Encoding.DER)),
        subject=certificate.subject.rfc4514_string()[:500],
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def normal_fingerprint(text: str) -> str | None:
    """``text`` as a stored fingerprint (lower-case hex), or None if it is not one."""
    text = text.strip()
    return text.replace(":", "").lower() if FINGERPRINT.fullmatch(text) else None


def bind_certificate(sender: Sender, certificate: Certificate) -> bool:
    """Bind ``certificate`` to ``sender``; False when it already was. CertificateTaken when
    another sender holds it."""
    holder = ClientCertificate.get_or_none(ClientCertificate.fingerprint == certificate.fingerprint)
    if holder is None:
        try:
            ClientCertificate.create(
                sender=sender,
                fingerprint=certificate.fingerprint,
                subject=certificate.subject,
                not_after=certificate.not_after,
            )
            return True
        except IntegrityError:  # bound at the same moment by another command
            holder = ClientCertificate.get(ClientCertificate.fingerprint == certificate.fingerprint)
    if holder.sender_id != sender.id:
        raise CertificateTaken(f"the certificate is bound to sender {holder.sender.name!r}")
    return False


def unbind_certificate(sender: Sender, fingerprint: str) -> bool:
    """Unbind the certificate with ``fingerprint`` from ``sender``; False if it was not bound."""
    query = ClientCertificate.delete().where(
        ClientCertificate.sender == sender, ClientCertificate.fingerprint == fingerprint
    )
    return query.execute() > 0


def certificates_of(sender: Sender) -> list[ClientCertificate]:
    return list(
        ClientCertificate.select()
        .where(ClientCertificate.sender == sender)
        .order_by(ClientCertificate.not_after, ClientCertificate.id)
    )


def sender_for_fingerprint(fingerprint: str) -> Sender | None:
    """The sender holding the certificate with ``fingerprint``, or None."""
    return (
        Sender.select()
        .join(ClientCertificate)
        .where(ClientCertificate.fingerprint == fingerprint)
        .first()
    )


def set_certificate_required(sender: Sender, required: bool) -> None:
    """Whether ``sender``'s requests need a bound certificate as well as an API key."""
    sender.require_certificate = required
    sender.save(only=[Sender.require_certificate])

"""Webhook endpoints: URLs a sender registers to have its webhooks to them signed with the
endpoint's own secret (Standard Webhooks ``whsec_…``), so that no receiver can sign for another.

Secrets are stored as generated, not hashed (Herald needs them to compute signatures), like the
sender's callback secret; they are shown once, when made, and never listed or logged. After a
rotation the previous secret goes on signing next to the new one for
``WEBHOOK_SECRET_GRACE_SECONDS``.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from peewee import ForeignKeyField, IntegrityError, TextField, UUIDField

from models.base import BaseModel, UTCDateTimeField, new_id, utcnow
from models.db import run_sql, write_transaction
from models.errors import ModelError
from models.sender import Sender, visible_to
from settings import settings

SECRET_PREFIX = "whsec_"
#: Random bytes in a secret (the spec asks for 24 to 64).
SECRET_BYTES = 32
_DEFAULT_PORTS = {"https": 443, "http": 80}


class WebhookEndpoint(BaseModel):
    """A sender's registered webhook URL (normalised, see :func:`normalise_url`) and secrets."""

    id = UUIDField(primary_key=True, default=new_id)
    sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
    url = TextField(help_text="normalised: normalise_url")
    secret = TextField(help_text="whsec_…: signs this endpoint's webhooks")
    previous_secret = TextField(null=True, help_text="signs too, for the grace after rotated_at")
    rotated_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("sender", "url"), True),)

    def signing_secrets(self, now: datetime | None = None) -> tuple[str, ...]:
        """The secrets that sign now: the current one, and the previous one during its grace."""
        grace = timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS)
        moment = now or utcnow()
        if self.previous_secret and self.rotated_at and moment < self.rotated_at + grace:
            return (self.secret, self.previous_secret)
        return (self.secret,)


class EndpointExists(ModelError):
    pass


def new_secret() -> str:
    """``whsec_`` and the base64 of random bytes: the Standard Webhooks form of a secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def normalise_url(url: str) -> str:
    """The form in which URLs are compared, for a URL the URL guard accepted: scheme and host in
    lower case, the scheme's default port dropped, an empty path as ``/``, no fragment; path and
    query as written (they are case-sensitive)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{parts.path or '/'}{query}"


def create_endpoint(sender: Sender, url: str) -> WebhookEndpoint:
    """Register ``url`` (already through the URL guard) for ``sender``, with a new secret."""
    try:
        with write_transaction():
            return WebhookEndpoint.create(
                sender=sender, url=normalise_url(url), secret=new_secret()
            )
    except IntegrityError:
        raise EndpointExists(url) from None


def endpoints_of(sender: Sender):
    """The endpoints ``sender`` may see (all for an admin), oldest first."""
    query = WebhookEndpoint.select().order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return visible_to(sender, query, WebhookEndpoint)


def endpoint_for(sender: Sender, endpoint_id) -> WebhookEndpoint | None:
    return endpoints_of(sender).where(WebhookEndpoint.id == endpoint_id).first()


def rotate_endpoint_secret(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Give ``endpoint`` a new secret; the current one becomes the previous (signing during the
    grace). A rotation during a grace ends the older secret's grace at once."""
    endpoint.previous_secret, endpoint.secret = endpoint.secret, new_secret()
    endpoint.rotated_at = utcnow()
    endpoint.save(
        only=[WebhookEndpoint.previous_secret, WebhookEndpoint.secret, WebhookEndpoint.rotated_at]
    )
    return endpoint


def endpoint_signing_secrets(sender_id: int, url: str) -> tuple[str, ...] | None:
    """The secrets that sign a webhook of ``sender_id`` to ``url`` now, or None when ``url`` is
    not one of its registered endpoints. Read at every send (one indexed read, its statement
    built once), so a registration, a rotation or a deletion holds from the next webhook on:
    no worker signs with a secret the receiver was just told to drop the other one for. A URL
    that cannot be parsed (a stored one the URL guard will refuse at send) is no endpoint."""
    try:
        normalised = normalise_url(url)
    except ValueError:  # urlsplit's port check: the guard then fails the message
        return None
    params = (WebhookEndpoint.sender.db_value(sender_id), normalised)
    row = run_sql(_SECRETS, params).fetchone()
    if row is None:
        return None
    secret, previous_secret, rotated_at = row
    endpoint = WebhookEndpoint(
        __no_default__=1,
        secret=secret,
        previous_secret=previous_secret,
        rotated_at=WebhookEndpoint.rotated_at.python_value(rotated_at),
    )
    return endpoint.signing_secrets()


_SECRETS = (
    'SELECT "secret", "previous_secret", "rotated_at" FROM "webhook_endpoint" '
    'WHERE "sender_id" = ? AND "url" = ?'
)

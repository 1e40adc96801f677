"""What providers post to ``/v1/providers/…``, in their own wire names, bounded.

Unlike Herald's own API, these schemas ignore fields they do not name: providers add fields to
their callbacks without notice (Twilio and Meta say so), and refusing one would make them
retry, then give up on the webhook. Every field read is bounded, and so is the body
(``MAX_PROVIDER_BODY_BYTES``) and the number of statuses one webhook carries.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from channels.sms import TWILIO_STATUSES
from tasks.requests import CamelSchema

#: Largest body a provider may post (Twilio's callbacks and Viber's events are under 2 KB;
#: Meta batches statuses, at most :data:`MAX_STATUSES` of them).
MAX_PROVIDER_BODY_BYTES = 256 * 1024
#: Most statuses one WhatsApp webhook may carry, over all its entries and changes.
MAX_STATUSES = 500
#: Longest provider message id taken (Twilio's are 34 characters, Meta's wamids about 60).
MAX_PROVIDER_ID_LENGTH = 255
#: Longest error text read from a provider.
MAX_ERROR_TEXT = 500
#: Largest Unix time taken, in seconds (the year 5138): beyond it is no provider's clock.
MAX_UNIX_SECONDS = 10**11 - 1


class ProviderSchema(Schema):
    class Meta:
        unknown = EXCLUDE


def _text(length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=length), **kwargs)


# --- Twilio ---------------------------------------------------------------------------------
class TwilioStatusSchema(ProviderSchema):
    """A Twilio message status callback (form-encoded; its other parameters are ignored, but
    signed too)."""

    MessageSid = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9]{1,64}$", error="A Twilio message SID."),
        metadata={"description": "The message's SID, as Twilio answered the send"},
    )
    MessageStatus = fields.String(
        required=True,
        validate=validate.OneOf(sorted(TWILIO_STATUSES)),
        metadata={"description": "The message's status now"},
    )
    ErrorCode = fields.String(
        validate=validate.Regexp(r"^\d{0,10}$", error="A Twilio error code (digits)."),
        metadata={"description": "Twilio's error code, with undelivered and failed"},
    )


# --- WhatsApp Cloud API ---------------------------------------------------------------------
class WhatsAppVerificationSchema(Schema):
    """The query of Meta's webhook verification request."""

    mode = fields.String(required=True, data_key="hub.mode", validate=validate.Length(max=32))
    verify_token = fields.String(
        required=True, data_key="hub.verify_token", validate=validate.Length(max=255)
    )
    challenge = fields.String(
        required=True, data_key="hub.challenge", validate=validate.Length(min=1, max=255)
    )


class WhatsAppErrorSchema(ProviderSchema):
    code = fields.Integer(strict=True, validate=validate.Range(0, 2**31 - 1))
    title = _text(MAX_ERROR_TEXT)
    message = _text(MAX_ERROR_TEXT)


class WhatsAppStatusSchema(ProviderSchema):
    id = _text(MAX_PROVIDER_ID_LENGTH, required=True)
    status = _text(32, required=True)
    timestamp = fields.String(
        validate=validate.Regexp(r"^\d{1,11}$", error="Unix time in seconds, as digits.")
    )
    errors = fields.List(fields.Nested(WhatsAppErrorSchema), validate=validate.Length(max=10))


class WhatsAppValueSchema(ProviderSchema):
    statuses = fields.List(
        fields.Nested(WhatsAppStatusSchema), validate=validate.Length(max=MAX_STATUSES)
    )


class WhatsAppChangeSchema(ProviderSchema):
    field = _text(64)
    value = fields.Nested(WhatsAppValueSchema)


class WhatsAppEntrySchema(ProviderSchema):
    changes = fields.List(
        fields.Nested(WhatsAppChangeSchema), validate=validate.Length(max=MAX_STATUSES)
    )


class WhatsAppWebhookSchema(ProviderSchema):
    """A Cloud API webhook: ``entry[].changes[].value.statuses[]`` (messages and other
    changes are not Herald's and are ignored)."""

    object = _text(64)
    entry = fields.List(
        fields.Nested(WhatsAppEntrySchema),
        required=True,
        validate=validate.Length(max=MAX_STATUSES),
    )

    @validates_schema
    def _bounded(self, data, **kwargs) -> None:
        if len(statuses_of(data)) > MAX_STATUSES:
            raise ValidationError(f"At most {MAX_STATUSES} statuses in one webhook.", "entry")


def statuses_of(webhook: dict) -> list[dict]:
    """Every status a loaded webhook carries, in order."""
    return [
        status
        for entry in webhook.get("entry", [])
        for change in entry.get("changes", [])
        for status in (change.get("value") or {}).get("statuses", [])
    ]


# --- Viber ----------------------------------------------------------------------------------
class ViberEventSchema(ProviderSchema):
    """A Viber callback: ``delivered``, ``seen`` and ``failed`` name the message by its
    ``message_token``; ``unsubscribed`` names the user; others (``webhook``, ``subscribed``,
    ``conversation_started``, ``message``) are answered and ignored."""

    event = _text(64, required=True)
    timestamp = fields.Integer(strict=True, validate=validate.Range(0, MAX_UNIX_SECONDS * 1000))
    message_token = fields.Integer(strict=True, validate=validate.Range(0, 2**63 - 1))  # a long
    user_id = _text(100)
    desc = fields.String(validate=validate.Length(max=MAX_ERROR_TEXT))


# --- answers --------------------------------------------------------------------------------
class ReceiptsTakenSchema(CamelSchema):
    """What a provider's post did: how many receipts ``matched`` a message Herald sent (applied,
    or already applied before), how many were ``unmatched``: for a message Herald does not
    know (not sent by it, or purged after retention)."""

    matched = fields.Integer()
    unmatched = fields.Integer()

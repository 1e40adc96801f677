"""Notification requests as senders send them (camelCase JSON), in one schema that the API
loads a request with and the scheduler loads a reminder's stored request with; and the
camelCase base and fields every wire format of Herald's is built from (the OpenAPI document is
built from these)."""

from __future__ import annotations

import base64
import binascii
import json
import re

import marshmallow as ma
from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from channel_table import INAPP
from channels import RECIPIENT_TYPES, REGISTRY, configured_channels
from channels.base import InvalidContent, InvalidDestination
from models.base import OUT_OF_CALENDAR, in_calendar, utcnow
from models.contact import CONTACT_CHANNEL_TYPES, IDNP, idnp_problem
from settings import settings
from templating.engine import TemplateProblem, language_tag

#: The channels a contact's registered addresses are delivered through.
CONTACT_CHANNELS = [RECIPIENT_TYPES[kind] for kind in CONTACT_CHANNEL_TYPES]


def camelcase(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class CamelSchema(ma.Schema):
    """Attribute ``target_id`` is ``targetId`` on the wire. Unknown fields are rejected."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)


#: What str.splitlines (and so an email header) takes for a line break, and NUL.
NO_LINE_BREAKS = validate.Regexp(
    r"^[^\x00\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*$",
    error="Must not contain line breaks (CR, LF, VT, FF, U+0085, U+2028, U+2029, …) or NUL.",
)
MAX_VALUE_JSON_BYTES = 4096


class Instant(fields.AwareDateTime):
    """An ISO 8601 date and time with its offset, within the calendar Herald computes with
    (``models.base.in_calendar``: converting ``9999-12-31T23:59:59-14:00`` to UTC overflows)."""

    default_error_messages = {"out_of_calendar": OUT_OF_CALENDAR}

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not in_calendar(moment):
            raise self.make_error("out_of_calendar")
        return moment


def _label(length: int):
    return fields.String(validate=validate.Length(min=1, max=length), load_default=None)


def small_json(value) -> None:
    if len(json.dumps(value, separators=(",", ":"))) > MAX_VALUE_JSON_BYTES:
        raise ValidationError(f"At most {MAX_VALUE_JSON_BYTES} bytes of JSON.")


def attributes_size(value) -> None:
    if len(json.dumps(value, separators=(",", ":"))) > settings.MAX_ATTRIBUTES_BYTES:
        raise ValidationError(f"At most {settings.MAX_ATTRIBUTES_BYTES} bytes of JSON.")


def not_configured(channel: str) -> str:
    """The 400 message for a channel this server has no credentials for."""
    return f"The {channel} channel is not configured on this server."


def _configured(names: list[str]) -> None:
    if unconfigured := [name for name in names if not REGISTRY[name].is_configured()]:
        raise ValidationError([not_configured(name) for name in unconfigured])


def language(value: str) -> None:
    """A language tag Herald can render in (``ro``, ``ru``, ``en``, ``ro-MD``, …)."""
    try:
        language_tag(value)
    except TemplateProblem as problem:
        raise ValidationError(str(problem)) from None


def _any_case(name: str) -> str:
    """A regular expression matching ``name`` (ASCII) in any mix of upper and lower case."""
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in name)


class TypeName(fields.String):
    """One of ``names`` (Herald's lower-case type names) in any case: ``Idnp``, ``IDNP`` and
    ``idnp`` load as ``idnp``. MNotify writes ``"type": "Idnp"``; the OpenAPI document gets a
    pattern of the accepted names (an enum of the lower-case ones would not be true)."""

    default_error_messages = {"unknown": "Must be one of: {names} (in any case)."}

    def __init__(self, names, *, description: str, **kwargs) -> None:
        self.names = frozenset(names)
        listed = ", ".join(sorted(self.names))
        metadata = {
            "description": f"{description}: {listed}; case does not matter",
            "pattern": "^(" + "|".join(_any_case(name) for name in sorted(self.names)) + ")$",
        }
        super().__init__(metadata={**metadata, **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.isascii() or text.lower() not in self.names:  # U+212A lowers to ASCII k
            raise self.make_error("unknown", names=", ".join(sorted(self.names)))
        return text.lower()


def canonical_recipients(body: dict) -> dict:
    """A validated request ``body`` (as sent) with each recipient's ``type`` spelled as Herald
    names it (``Idnp`` → ``idnp``), for storing a request to load again (reminders)."""
    recipients = body.get("recipients")
    if not isinstance(recipients, list):
        return body
    return {**body, "recipients": [{**r, "type": r["type"].lower()} for r in recipients]}


class RecipientSchema(CamelSchema):
    """A recipient: a person by ``idnp`` (resolved through the contact registry), or an address
    whose ``type`` picks the channel, which validates ``value``."""

    type = TypeName(
        [*RECIPIENT_TYPES, IDNP],
        required=True,
        description="How `value` addresses the recipient",
        metadata={"example": "email"},
    )
    value = fields.Raw(
        required=True,
        validate=small_json,
        metadata={
            "description": "An address: a string for most types; a PushSubscription object for "
            "`webpush`; a list of lines for `address`",
            "example": "ion.popescu@example.md",
        },
    )
    attributes = fields.Dict(
        validate=attributes_size,
        metadata={"description": "Template attributes for this recipient (override the shared)"},
    )
    language = fields.String(validate=language)

    @post_load
    def normalise(self, data: dict, **kwargs) -> dict:
        if data["type"] == IDNP:
            if problem := idnp_problem(data["value"]):
                raise ValidationError(problem, "value")
            data["channel"] = None
            return data
        channel = REGISTRY[RECIPIENT_TYPES[data["type"]]]
        if not channel.is_configured():
            raise ValidationError(not_configured(channel.name), "type")
        try:
            data["value"] = channel.parse_destination(data["value"])
        except InvalidDestination as error:
            raise ValidationError(str(error), "value") from None
        data["channel"] = channel.name
        return data


class WhatsAppTemplateSchema(CamelSchema):
    """A message template approved for the WhatsApp Business account, sent instead of text."""

    name = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=512),
            validate.Regexp(r"^[a-z0-9_]+$", error="Lowercase letters, digits and underscores."),
        ],
        metadata={"example": "appointment_reminder"},
    )
    language = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", error="A language code such as ro or en_US."
        ),
        metadata={"example": "ro"},
    )
    components = fields.List(
        fields.Dict(),
        validate=[validate.Length(max=20), small_json],
        metadata={"description": "Cloud API template components (parameters), passed as given"},
    )


def _fits_request_limit(text: str) -> None:
    if len(text.encode(errors="surrogatepass")) > settings.MAX_REQUEST_BYTES:
        raise ValidationError(f"At most {settings.MAX_REQUEST_BYTES} bytes.")


def _allowed_content_type(value: str) -> None:
    allowed = [item.strip() for item in settings.ATTACHMENT_CONTENT_TYPES.split(",")]
    if value not in allowed:
        raise ValidationError(f"Must be one of: {', '.join(allowed)}.")


MAX_ATTACHMENTS = 10


class AttachmentSchema(CamelSchema):
    """A file sent with every email: base64 ``content`` in; a document store reference out."""

    filename = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=255),
            validate.Regexp(
                r"^(?!\.{1,2}$)[^/\\\x00-\x1f\x7f]+$",
                error="Must be a file name without path separators or control characters.",
            ),
        ],
        metadata={"example": "programare.pdf"},
    )
    content_type = fields.String(
        required=True,
        validate=_allowed_content_type,
        metadata={"description": "One of ATTACHMENT_CONTENT_TYPES", "example": "application/pdf"},
    )
    content = fields.String(
        required=True, load_only=True, metadata={"description": "The file, base64-encoded"}
    )
    document_id = fields.String(dump_only=True, metadata={"description": "Where it is stored"})
    size = fields.Integer(dump_only=True, metadata={"description": "Bytes, decoded"})

    @post_load
    def decode(self, data: dict, **kwargs) -> dict:
        try:
            data["content"] = base64.b64decode("".join(data["content"].split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("Not valid base64.", "content") from None
        return data


class MessageContentSchema(CamelSchema):
    subject = fields.String(validate=[validate.Length(min=1, max=998), NO_LINE_BREAKS])
    body = fields.String(required=True, validate=[validate.Length(min=1), _fits_request_limit])
    html = fields.String(validate=[validate.Length(min=1), _fits_request_limit])
    action_url = fields.Url(
        schemes={"https", "http"}, require_tld=False, validate=validate.Length(max=2000)
    )
    data = fields.Dict(validate=small_json, metadata={"description": "Free-form data for apps"})
    whatsapp_template = fields.Nested(
        WhatsAppTemplateSchema,
        metadata={"description": "Sent on WhatsApp instead of `body` (needed after 24 hours)"},
    )
    attachments = fields.List(
        fields.Nested(AttachmentSchema),
        validate=validate.Length(max=MAX_ATTACHMENTS, error="At most {max} attachments."),
        metadata={"description": "Files attached to every email (other channels ignore them)"},
    )

    @validates_schema(skip_on_field_errors=True)
    def attachments_fit(self, data: dict, **kwargs) -> None:
        """The attachments' decoded sizes add up to at most MAX_ATTACHMENT_BYTES."""
        total, limit = 0, settings.MAX_ATTACHMENT_BYTES
        for index, attachment in enumerate(data.get("attachments") or []):
            total += len(attachment["content"])
            if total > limit:
                message = f"Attachments may total at most {limit} bytes (decoded)."
                raise ValidationError({"attachments": {index: {"content": [message]}}})


def _in_the_future(value) -> None:
    if value <= utcnow():
        raise ValidationError("Must be in the future.")


def _recipient_count(recipients: list) -> None:
    limit = settings.MAX_RECIPIENTS_PER_REQUEST
    if len(recipients) > limit:
        raise ValidationError(f"At most {limit} recipients per request.")


class NotificationCreateSchema(CamelSchema):
    recipients = fields.List(fields.Nested(RecipientSchema), validate=_recipient_count)
    is_broadcast = fields.Boolean(
        load_default=False,
        metadata={"description": "Send to every subscriber of `serviceName` instead"},
    )
    channels = fields.List(
        fields.String(validate=validate.OneOf(sorted(REGISTRY))),
        validate=[validate.Length(min=1, max=len(REGISTRY)), _configured],
        metadata={"description": "The channels IDNP recipients may be reached on (default: all)"},
    )
    channel_policy = fields.String(
        load_default="all",
        validate=validate.OneOf(["all", "fallback"]),
        metadata={"description": "all: every channel; fallback: one at a time, by priority"},
    )
    message = fields.Nested(MessageContentSchema, metadata={"description": "Or a template"})
    template = fields.String(
        validate=validate.Length(min=1, max=100), metadata={"description": "Template id or code"}
    )
    attributes = fields.Dict(
        validate=attributes_size, metadata={"description": "Template attributes for everyone"}
    )
    language = fields.String(
        validate=language, metadata={"description": "Language for recipients without their own"}
    )
    service_name = _label(100)
    event = _label(100)
    target_id = _label(100)
    target_type = _label(100)
    reference = _label(255)
    send_at = Instant(
        validate=_in_the_future, metadata={"description": "Send later (ISO 8601 with offset)"}
    )
    valid_till = Instant(
        validate=_in_the_future,
        metadata={"description": "In-app: hidden after; push: never sent after"},
    )
    urgent = fields.Boolean(load_default=False, metadata={"description": "Ignore quiet hours"})
    critical = fields.Boolean(
        load_default=False,
        metadata={"description": "Sent despite opt-outs (needs the send_critical grant)"},
    )
    require_action = fields.Boolean(
        load_default=False, metadata={"description": "In-app: the user is expected to act"}
    )

    @validates_schema(skip_on_field_errors=True)
    def recipients_or_broadcast(self, data: dict, **kwargs) -> None:
        if data["is_broadcast"]:
            if data.get("recipients"):
                raise ValidationError(
                    "A broadcast goes to subscribers: no recipients.", "recipients"
                )
            if not data.get("service_name"):
                raise ValidationError("A broadcast needs the service's name.", "serviceName")
        elif not data.get("recipients"):
            raise ValidationError("At least one recipient is required.", "recipients")

    @validates_schema(skip_on_field_errors=True)
    def message_or_template(self, data: dict, **kwargs) -> None:
        if "message" in data and "template" in data:
            raise ValidationError("Give a message or a template, not both.", "template")
        if "message" not in data and "template" not in data:
            raise ValidationError("A message or a template is required.", "message")

    @validates_schema(skip_on_field_errors=True)
    def valid_after_sending(self, data: dict, **kwargs) -> None:
        if data.get("send_at") and data.get("valid_till") and data["valid_till"] <= data["send_at"]:
            raise ValidationError("Must be later than sendAt.", "validTill")

    @validates_schema(skip_on_field_errors=True)
    def content_fits_channels(self, data: dict, **kwargs) -> None:
        """Each channel in use checks the content it would send (email needs a subject, …)."""
        if "message" not in data:
            return  # template contents are checked against the template at submission
        errors: dict[str, list[str]] = {}
        for name in sorted(channels_in_use(data)):
            try:
                REGISTRY[name].check_content(data["message"])
            except InvalidContent as error:
                errors.setdefault(error.field, []).append(str(error))
        if errors:
            raise ValidationError(errors, "message")


def channels_in_use(data: dict) -> set[str]:
    """The channels a request may reach: its direct recipients' channels, and for IDNP
    recipients and broadcasts, the allowed ``channels`` (by default every contact channel this
    server is configured for, as fan-out skips the others)."""
    used = {r["channel"] for r in data.get("recipients") or [] if r["channel"]}
    if data["is_broadcast"] or any(r["channel"] is None for r in data.get("recipients") or []):
        default = configured_channels() & {*CONTACT_CHANNELS, INAPP.name}
        used |= set(data.get("channels") or default)
    if data["is_broadcast"] and not data.get("channels"):
        used.discard(INAPP.name)  # an in-app broadcast is asked for by naming the channel
    return used

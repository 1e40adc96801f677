"""Hackney's wire formats (seed ``002``): the notification request and item, the action
request, the listing's parameters, and GOV.UK Notify's message status. Field names are
Hackney's (and Notify's); each has a size limit, and the request's rules (which field each
``notificationType`` and ``require…`` flag needs) are stated here, naming Hackney's fields."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from api.inbox_schemas import ACTION_TYPES, MAX_NOTE
from api.pagination import PageArgs
from channel_table import CHANNELS, EMAIL, INAPP, LETTER, SMS, ChannelRow
from channels.letter import MIN_ADDRESS_LINES
from tasks.requests import CamelSchema, attributes_size

#: ``notificationType`` → channel: Screen, Email, Text, Letter.
HACKNEY_TYPES: dict[str, ChannelRow] = {row.hackney: row for row in CHANNELS if row.hackney}
#: The channels a ``require…`` flag adds, in the order their messages are made.
EXTRA_CHANNELS: tuple[tuple[str, ChannelRow], ...] = (
    ("require_email_notification", EMAIL),
    ("require_sms_notification", SMS),
    ("require_letter", LETTER),
)
#: The Hackney field that holds each channel's address, and its flag's wire name.
ADDRESS_FIELDS = {
    INAPP.name: "user",
    EMAIL.name: "email",
    SMS.name: "mobileNumber",
    LETTER.name: "personalisationParams",
}
FLAG_FIELDS = {
    EMAIL.name: "requireEmailNotification",
    SMS.name: "requireSmsNotification",
    LETTER.name: "requireLetter",
}
#: ``personalisationParams`` keys that make a letter's address, in order.
ADDRESS_LINES = tuple(f"addressLine{number}" for number in range(1, 8))
MAX_MESSAGE = 10_000
#: GOV.UK Notify's message statuses, as ``/message-status`` answers them.
NOTIFY_STATUSES = [
    "created",
    "sending",
    "delivered",
    "permanent-failure",
    "temporary-failure",
    "technical-failure",
    "cancelled",
]
NOTIFY_TYPES = [EMAIL.name, SMS.name, LETTER.name]


def _text(length: int, **metadata) -> fields.String:
    return fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=length), metadata=metadata
    )


class Flag(fields.Boolean):
    """A boolean, also written as the string ``"true"`` or ``"false"`` (Hackney's seed sends
    ``"requireAction": "true"``); null reads as false."""

    default_error_messages = {"invalid": 'Must be true or false (or the string "true"/"false").'}

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise self.make_error("invalid")

    def deserialize(self, value, attr=None, data=None, **kwargs):
        return False if value is None else super().deserialize(value, attr, data, **kwargs)


def _flag(description: str) -> Flag:
    return Flag(load_default=False, allow_none=True, metadata={"description": description})


class HackneyNotificationCreateSchema(CamelSchema):
    """``POST /notifications``: one notification on its ``notificationType``'s channel, plus
    the channels its ``require…`` flags add. Empty strings read as absent."""

    target_id = _text(100, example="7e6041e2-01b6-4c41-9ccd-5b0932616b50")
    target_type = _text(100, example="FailedDirectDebits")
    notification_type = fields.String(
        required=True, validate=validate.OneOf(sorted(HACKNEY_TYPES)), metadata={"example": "Email"}
    )
    user = _text(200, description="Screen: the user whose in-app inbox shows it")
    message = _text(MAX_MESSAGE, description="Screen's text (without templateId)")
    service_key = _text(255, description="GOV.UK Notify key: its secret part is never stored")
    template_id = _text(100, description="A Herald template id or code")
    mobile_number = _text(50, example="07700 900123")
    email = _text(320, example="test@example.com")
    personalisation_params = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        allow_none=True,
        load_default=None,
        validate=attributes_size,
        metadata={"description": "Template attributes; addressLine1…7 make a letter's address"},
    )
    require_action = _flag("An action is expected (true/false, or the strings)")
    require_email_notification = _flag("Also send it by email")
    require_sms_notification = _flag("Also send it by SMS")
    require_letter = _flag("Also send it as a letter")

    @post_load
    def blanks_are_absent(self, data: dict, **kwargs) -> dict:
        return {key: None if value == "" else value for key, value in data.items()}

    @validates_schema(skip_on_field_errors=True)
    def each_channel_has_what_it_needs(self, data: dict, **kwargs) -> None:
        data = self.blanks_are_absent(data)
        errors: dict[str, list[str]] = {}
        used = [row.name for row in channels_of(data)]
        screen_only = used == [INAPP.name]
        if not screen_only and not data["template_id"]:
            errors["templateId"] = ["Required except for Screen notifications."]
        if INAPP.name in used and not data["user"] and not data["target_id"]:
            errors["user"] = ["Required for a Screen notification without targetId."]
        if screen_only and not data["template_id"] and not data["message"]:
            errors["message"] = ["Required for a Screen notification without templateId."]
        if EMAIL.name in used and not data["email"]:
            errors["email"] = ["Required when the notification is sent by email."]
        if SMS.name in used and not data["mobile_number"]:
            errors["mobileNumber"] = ["Required when the notification is sent by text."]
        if LETTER.name in used and (problem := address_problem(data["personalisation_params"])):
            errors["personalisationParams"] = [problem]
        if errors:
            raise ValidationError(errors)


def channels_of(data: dict) -> list[ChannelRow]:
    """The channels a request uses: its ``notificationType``'s first, then each flag's."""
    first = HACKNEY_TYPES[data["notification_type"]]
    extra = [row for flag, row in EXTRA_CHANNELS if data.get(flag) and row is not first]
    return [first, *extra]


def address_lines(params: dict | None) -> list:
    """A letter's address: the non-blank ``addressLine1…7`` of ``personalisationParams``."""
    lines = [(params or {}).get(key) for key in ADDRESS_LINES]
    return [
        line for line in lines if not (line is None or (isinstance(line, str) and not line.strip()))
    ]


def address_problem(params: dict | None) -> str | None:
    lines = address_lines(params)
    if any(not isinstance(line, str) for line in lines):
        return "addressLine1…addressLine7 must be strings."
    if len(lines) < MIN_ADDRESS_LINES:
        return f"A letter needs at least {MIN_ADDRESS_LINES} of addressLine1…addressLine7."
    return None


class HackneyListArgs(PageArgs):
    notification_type = fields.String(
        validate=validate.OneOf(sorted(HACKNEY_TYPES)),
        metadata={"description": "Notifications with a message on this channel"},
    )
    target_id = fields.String(validate=validate.Length(min=1, max=100))
    target_type = fields.String(validate=validate.Length(min=1, max=100))


class HackneyActionRequestSchema(CamelSchema):
    """``PATCH /notifications/{id}``: ``id``, when given (the seed always sends it), must be
    the path's."""

    id = fields.UUID(allow_none=True, load_default=None)
    action_type = fields.String(required=True, validate=validate.OneOf(ACTION_TYPES))
    action_note = fields.String(allow_none=True, validate=validate.Length(max=MAX_NOTE))
    performed_action_done_by = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Who acted (Herald addition; read back as given)"},
    )


class DotNetTime(fields.DateTime):
    """UTC with seven fractional digits and ``Z``, as Hackney's .NET service writes times
    (``2021-11-12T10:19:45.6224673Z``)."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class NotifyTime(fields.DateTime):
    """UTC with six fractional digits and ``Z``, as GOV.UK Notify writes times."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _nullable(field_class=fields.String, **metadata):
    return field_class(allow_none=True, metadata=metadata)


class SentMessageSchema(CamelSchema):
    """One message sent for the notification (its id is ``/message-status``'s)."""

    id = fields.UUID()
    type = fields.String(metadata={"enum": NOTIFY_TYPES})
    status = fields.String(metadata={"enum": NOTIFY_STATUSES})


class HackneyNotificationSchema(CamelSchema):
    """A notification as Hackney's GET lists it; null where retention has erased the person."""

    id = fields.UUID()
    target_id = _nullable()
    target_type = _nullable()
    notification_type = _nullable(enum=sorted(HACKNEY_TYPES))
    user = _nullable(description="The in-app recipient (Screen), if not targetId")
    message = _nullable()
    service_key = _nullable(description="serviceKey without its secret part (serviceName)")
    template_id = _nullable(description="The Herald template's id")
    mobile_number = _nullable(description="As stored (E.164); masked per contacts:read")
    email = _nullable(description="Masked per contacts:read")
    require_action = fields.Boolean()
    require_email_notification = fields.Boolean()
    require_sms_notification = fields.Boolean()
    require_letter = fields.Boolean()
    is_read_status = fields.Boolean()
    sent_message_details = fields.List(
        fields.Nested(SentMessageSchema),
        allow_none=True,
        metadata={"description": "The email, SMS and letter messages; null if none"},
    )
    action_note = _nullable()
    performed_action_done_by = _nullable()
    performed_action_type = _nullable(enum=ACTION_TYPES)
    is_removable = fields.Boolean()
    personalisation_params = fields.Dict(allow_none=True)
    performed_action_date = DotNetTime(allow_none=True)
    created_date = DotNetTime()


class NotifyTemplateSchema(CamelSchema):
    id = fields.String()
    version = fields.Integer()
    path = fields.String(metadata={"description": "Herald's URL of the template version"})


class NotifyMessageStatusSchema(CamelSchema):
    """A message as GOV.UK Notify's ``GET /v2/notifications/{id}`` shows it."""

    id = fields.UUID()
    completed_at = NotifyTime(allow_none=True)
    email_address = _nullable()
    body = _nullable()
    subject = _nullable()
    line1 = _nullable()
    line2 = _nullable()
    line3 = _nullable()
    line4 = _nullable()
    line5 = _nullable()
    line6 = _nullable(description="The sixth line, and any after it, comma-separated")
    phone_number = _nullable()
    postage = _nullable(description="Always null: Herald's letters are posted outside it")
    reference = _nullable()
    sent_at = NotifyTime(allow_none=True)
    status = fields.String(metadata={"enum": NOTIFY_STATUSES})
    type = fields.String(metadata={"enum": NOTIFY_TYPES})
    created_by_name = _nullable(description="Always null: sent through the API")
    template = fields.Nested(NotifyTemplateSchema, allow_none=True)

"""Wire formats (camelCase JSON), one statement each: the OpenAPI document is built from these."""

from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

import settings
from channels import RECIPIENT_TYPES
from models.message import Attempt, Message
from models.states import notification_state


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


NO_LINE_BREAKS = validate.Regexp(r"^[^\r\n]*$", error="Must not contain line breaks.")
is_email = validate.Email(error="Not a valid email address.")


def _label(length: int):
    return fields.String(validate=validate.Length(min=1, max=length), load_default=None)


# --- requests ------------------------------------------------------------------------------
class RecipientSchema(CamelSchema):
    type = fields.String(
        required=True,
        validate=validate.OneOf(sorted(RECIPIENT_TYPES)),
        metadata={"description": "How `value` addresses the recipient", "example": "email"},
    )
    value = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"example": "ion.popescu@example.md"},
    )

    @pre_load
    def strip_value(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("value"), str):
            data = {**data, "value": data["value"].strip()}
        return data

    @validates_schema
    def check_address(self, data: dict, **kwargs) -> None:
        if data["type"] == "email":
            value = data["value"]
            if len(value) > 254 or re.search(r"\s", value):
                raise ValidationError("Not a valid email address.", "value")
            try:
                is_email(value)
            except ValidationError as error:
                raise ValidationError(error.messages, "value") from None


class MessageContentSchema(CamelSchema):
    subject = fields.String(validate=[validate.Length(min=1, max=998), NO_LINE_BREAKS])
    body = fields.String(required=True, validate=validate.Length(min=1))
    html = fields.String(validate=validate.Length(min=1))


def _recipient_count(recipients: list) -> None:
    limit = settings.MAX_RECIPIENTS_PER_REQUEST
    if not recipients:
        raise ValidationError("At least one recipient is required.")
    if len(recipients) > limit:
        raise ValidationError(f"At most {limit} recipients per request.")


class NotificationCreateSchema(CamelSchema):
    recipients = fields.List(
        fields.Nested(RecipientSchema), required=True, validate=_recipient_count
    )
    message = fields.Nested(MessageContentSchema, required=True)
    service_name = _label(100)
    event = _label(100)
    target_id = _label(100)
    target_type = _label(100)
    reference = _label(255)

    @validates_schema(skip_on_field_errors=True)
    def subject_for_email(self, data: dict, **kwargs) -> None:
        needs_subject = any(r["type"] == "email" for r in data["recipients"])
        if needs_subject and not data["message"].get("subject"):
            raise ValidationError({"subject": ["Required for email recipients."]}, "message")


# --- responses -----------------------------------------------------------------------------
class MessageSummarySchema(CamelSchema):
    id = fields.UUID()
    channel = fields.String()
    destination = fields.String()
    state = fields.String()
    failure_reason = fields.String(allow_none=True)


class NotificationSchema(CamelSchema):
    id = fields.UUID()
    state = fields.Method(
        "get_state", metadata={"enum": ["pending", "completed", "partial", "failed"]}
    )
    service_name = fields.String(allow_none=True)
    event = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    target_type = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    message = fields.Nested(MessageContentSchema, attribute="content")
    created_at = fields.DateTime()
    messages = fields.Method("get_messages")

    def get_state(self, notification) -> str:
        return notification_state([m.state for m in self._messages(notification)])

    def get_messages(self, notification) -> list:
        return MessageSummarySchema(many=True).dump(self._messages(notification))

    @staticmethod
    def _messages(notification) -> list[Message]:
        cached = notification.__dict__.get("message_list")
        if cached is None:
            cached = list(
                Message.select()
                .where(Message.notification == notification.id)
                .order_by(Message.created_at, Message.id)
            )
            notification.__dict__["message_list"] = cached
        return cached


class AttemptSchema(CamelSchema):
    number = fields.Integer()
    started_at = fields.DateTime()
    finished_at = fields.DateTime()
    outcome = fields.String()
    error = fields.String(allow_none=True)
    provider_id = fields.String(allow_none=True)


class MessageSchema(MessageSummarySchema):
    notification_id = fields.UUID(attribute="notification_id")
    attempts = fields.Integer(metadata={"description": "Delivery attempts made so far"})
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    attempt_history = fields.Method("get_attempt_history")

    def get_attempt_history(self, message) -> list:
        rows = Attempt.select().where(Attempt.message == message.id).order_by(Attempt.number)
        return AttemptSchema(many=True).dump(rows)


class HealthSchema(ma.Schema):
    status = fields.String()
    database = fields.String()
    broker = fields.String()

"""Wire formats of the contact registry."""

from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from api.pagination import PageArgs
from api.preference_schemas import PreferencesSchema
from api.reminder_schemas import check_timezone
from channels import RECIPIENT_TYPES, REGISTRY
from channels.base import InvalidDestination
from models.contact import CONTACT_CHANNEL_TYPES, idnp_problem
from tasks.requests import CamelSchema, TypeName, language, small_json

#: A time of day, 24-hour.
CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"


def check_idnp(value: str) -> None:
    if problem := idnp_problem(value):
        raise ValidationError(problem)


class QuietHoursSchema(CamelSchema):
    """When non-urgent push messages wait: ``start`` to ``end`` (local), across midnight if
    ``start`` is later."""

    start = fields.String(required=True, validate=validate.Regexp(CLOCK, error="HH:MM"))
    end = fields.String(required=True, validate=validate.Regexp(CLOCK, error="HH:MM"))
    timezone = fields.String(required=True, validate=[validate.Length(max=64), check_timezone])


class ContactChannelSchema(CamelSchema):
    id = fields.Integer(dump_only=True)
    type = TypeName(
        CONTACT_CHANNEL_TYPES,
        required=True,
        description="The channel, named as a direct recipient's `type`",
        metadata={"example": "email"},
    )
    address = fields.Raw(
        required=True,
        validate=small_json,
        metadata={"description": "As a direct recipient of this type (webpush: an object)"},
    )
    active = fields.Boolean(dump_only=True)
    priority = fields.Integer(load_default=100, validate=validate.Range(min=0, max=1000))
    deactivated_reason = fields.String(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @post_load
    def normalise(self, data: dict, **kwargs) -> dict:
        channel = REGISTRY[RECIPIENT_TYPES[data["type"]]]
        try:
            data["address"] = channel.parse_destination(data["address"])
        except InvalidDestination as error:
            raise ValidationError(str(error), "address") from None
        return data


class ChannelPatchSchema(CamelSchema):
    active = fields.Boolean()
    priority = fields.Integer(validate=validate.Range(min=0, max=1000))


class ContactSchema(CamelSchema):
    idnp = fields.String(required=True, validate=check_idnp, metadata={"example": "2001234567890"})
    name = fields.String(validate=validate.Length(max=200), allow_none=True)
    preferred_language = fields.String(validate=language, allow_none=True)
    attributes = fields.Dict(validate=small_json)
    channels = fields.List(fields.Nested(ContactChannelSchema), validate=validate.Length(max=50))
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)
    subscriptions = fields.Method("get_subscriptions", dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    def get_subscriptions(self, contact) -> list[str]:
        return sorted(s.service_name for s in contact.subscriptions)

    @validates_schema(skip_on_field_errors=True)
    def distinct_channels(self, data: dict, **kwargs) -> None:
        keys = [(c["type"], c["address"]) for c in data.get("channels", [])]
        if len(keys) != len(set(keys)):
            raise ValidationError("The same channel is listed twice.", "channels")


class ContactPatchSchema(CamelSchema):
    name = fields.String(validate=validate.Length(max=200), allow_none=True)
    preferred_language = fields.String(validate=language, allow_none=True)
    attributes = fields.Dict(validate=small_json)
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)


class LanguageSchema(CamelSchema):
    preferred_language = fields.String(required=True, validate=language)


class ReachabilitySchema(CamelSchema):
    exists = fields.Boolean()
    has_active_channel = fields.Boolean()
    active_channels = fields.List(
        fields.Dict(),
        metadata={"description": "Active, configured, and not opted out of everywhere"},
    )
    preferences = fields.Nested(
        PreferencesSchema, allow_none=True, metadata={"description": "null: no such contact"}
    )


class SubscriptionSchema(CamelSchema):
    service_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    created_at = fields.DateTime(dump_only=True)


class ContactListArgs(PageArgs):
    channel_type = TypeName(CONTACT_CHANNEL_TYPES, description="Has an active channel of this type")
    language = fields.String(validate=validate.Length(max=16))
    text = fields.String(validate=validate.Length(min=1, max=100))


class ImportResultSchema(CamelSchema):
    created = fields.Integer()
    updated = fields.Integer()
    rejected = fields.Integer()
    errors = fields.List(fields.Dict(), metadata={"description": "[{row, errors}] (row from 1)"})

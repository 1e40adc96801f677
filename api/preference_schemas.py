"""The wire format of a person's preferences: channel opt-outs, everywhere or per service."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from channel_table import CHANNELS_BY_NAME
from models.preference import MAX_SERVICE, MAX_SERVICES
from tasks.requests import NO_LINE_BREAKS, CamelSchema

CHANNEL_NAMES = ", ".join(CHANNELS_BY_NAME)


class StrictBoolean(fields.Boolean):
    """``true`` or ``false``, nothing that merely looks like one (``1``, ``"yes"``)."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _channel_name(value: str) -> None:
    if value not in CHANNELS_BY_NAME:
        raise ValidationError(f"Unknown channel {value[:40]!r}; one of: {CHANNEL_NAMES}.")


def _channel_map(description: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=_channel_name),
        values=StrictBoolean(),
        load_default=dict,
        metadata={
            "description": f"{description}; channel → false (opted out) or true (the default). "
            f"Channels: {CHANNEL_NAMES}",
            "example": {"sms": False},
        },
    )


class PreferencesSchema(CamelSchema):
    """``{"channels": {"sms": false}, "services": {"permits": {"email": false}}}``: a missing
    key means the default (on)."""

    channels = _channel_map("Opt-outs for every service")
    services = fields.Dict(
        keys=fields.String(validate=[validate.Length(min=1, max=MAX_SERVICE), NO_LINE_BREAKS]),
        values=_channel_map("Opt-outs for this service (serviceName)"),
        load_default=dict,
        metadata={
            "description": f"serviceName → its channel opt-outs; at most {MAX_SERVICES} services",
            "example": {"permits": {"email": False}},
        },
    )

    @validates_schema
    def few_services(self, data: dict, **kwargs) -> None:
        if len(data.get("services") or {}) > MAX_SERVICES:
            raise ValidationError(f"At most {MAX_SERVICES} services.", "services")

"""Mambu's wire formats (seed ``001``): the search body and its pagination, the notification
message object, the resend answer and the error body, with Herald's states and channels said in
Mambu's names."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import fields, validate

from api.notification_schemas import DESTINATION_DESCRIPTION, retained_destination, viewer
from api.search_schemas import FilterConstraintSchema
from channel_table import CHANNELS, CHANNELS_BY_NAME
from models.privacy import text_as_shown
from models.search import is_retained
from models.search_syntax import MAX_CONSTRAINTS
from models.states import MessageState
from tasks.requests import CamelSchema

#: Mambu's message states → Herald's message states each stands for.
STATES: dict[str, tuple[MessageState, ...]] = {
    "SENT": (
        MessageState.SENT,
        MessageState.DELIVERED,
        MessageState.UNREAD,
        MessageState.READ,
        MessageState.DELETED,
    ),
    "QUEUED": (MessageState.QUEUED, MessageState.RETRYING),
    "QUEUED_FOR_STREAM": (),
    "WAITING": (MessageState.SCHEDULED, MessageState.HELD),
    "SENDING_ASYNC": (MessageState.SENDING,),
    "FAILED": (MessageState.FAILED, MessageState.CANCELLED, MessageState.EXPIRED),
}
#: Herald's state → Mambu's.
MAMBU_STATE = {herald: mambu for mambu, heralds in STATES.items() for herald in heralds}
#: The failure reason shown for a message of these states that has none of its own.
STATE_REASONS = {MessageState.CANCELLED: "CANCELLED", MessageState.EXPIRED: "EXPIRED"}
#: Mambu's ``type`` of each channel.
TYPES = ", ".join(row.mambu for row in CHANNELS)
#: Mambu's pagination: ``limit`` defaults to 50, at most 1,000.
DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 50, 1000, 10_000_000
#: marshmallow's message for a query parameter that is not a whole number.
NOT_AN_INTEGER = fields.Integer.default_error_messages["invalid"]


def mambu_date(moment: datetime | None) -> str | None:
    """``2015-06-12T10:55:16+0000``: Mambu's dates, in UTC to the second."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def mambu_type(channel: str) -> str:
    row = CHANNELS_BY_NAME.get(channel)
    return row.mambu if row else channel.upper()


def failure_reason(message) -> str | None:
    """Herald's failure reason; for a cancelled or expired message without one, the state."""
    return message.failure_reason or STATE_REASONS.get(message.state)


class MambuFilterConstraintSchema(FilterConstraintSchema):
    """One of Mambu's ``filterConstraints``: /v1's, whose selection may be a custom field's
    encoded key (longer), with Mambu's ``dataItemType`` and ``dataFieldType``."""

    filter_selection = fields.String(
        required=True, validate=validate.Length(min=1, max=100), metadata={"example": "STATE"}
    )
    data_item_type = fields.String(
        validate=validate.Length(max=100),
        metadata={"description": "Accepted; every field is the message's or its notification's"},
    )
    data_field_type = fields.String(
        validate=validate.OneOf(["NATIVE", "CUSTOM"]),
        metadata={
            "description": "NATIVE (default); CUSTOM is refused: Herald has no custom fields"
        },
    )


class MambuSearchSchema(CamelSchema):
    filter_constraints = fields.List(
        fields.Nested(MambuFilterConstraintSchema),
        load_default=list,
        validate=validate.Length(max=MAX_CONSTRAINTS, error="At most {max} constraints."),
    )


class MambuPageArgs(CamelSchema):
    """Mambu's ``offset`` and ``limit``; ``paginationDetails=ON`` adds the ``Items-*`` headers."""

    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=0, max=MAX_LIMIT)
    )
    pagination_details = fields.String(load_default="OFF", validate=validate.OneOf(["ON", "OFF"]))


PAGE_HEADERS = {
    name: {"description": description, "schema": {"type": "integer"}}
    for name, description in (
        ("Items-Offset", "With paginationDetails=ON: the offset asked for"),
        ("Items-Limit", "With paginationDetails=ON: the limit asked for"),
        ("Items-Total", "With paginationDetails=ON: the matching messages (capped)"),
    )
}


TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": "string", "nullable": True}


def _retained_text(name: str):
    def text(message) -> str | None:
        return getattr(message, name) if is_retained(message) else None

    return text


class NotificationMessageSchema(CamelSchema):
    """A message as Mambu's notification message; destination and content are null past
    MESSAGE_RETENTION_DAYS."""

    encoded_key = fields.Function(
        lambda message: message.id.hex,
        metadata={**TEXT, "description": "The message id, 32 hex digits (a UUID without dashes)"},
    )
    creation_date = fields.Function(
        lambda message: mambu_date(message.created_at),
        metadata={**TEXT, "example": "2015-06-12T10:55:16+0000"},
    )
    send_date = fields.Function(lambda message: mambu_date(message.sent_at), metadata=NULLABLE_TEXT)
    type = fields.Function(
        lambda message: mambu_type(message.channel), metadata={**TEXT, "description": TYPES}
    )
    state = fields.Function(
        lambda message: MAMBU_STATE[message.state], metadata={**TEXT, "enum": list(STATES)}
    )
    failure_reason = fields.Function(failure_reason, metadata=NULLABLE_TEXT)
    failure_cause = fields.Function(
        lambda message: text_as_shown(viewer(), message, _retained_text("last_error")(message)),
        metadata={**NULLABLE_TEXT, "description": "The last error, as the provider gave it"},
    )
    destination = fields.Function(
        retained_destination,
        metadata={**NULLABLE_TEXT, "description": DESTINATION_DESCRIPTION},
    )
    event = fields.Function(lambda message: message.notification.event, metadata=NULLABLE_TEXT)
    subject = fields.Function(_retained_text("subject"), metadata=NULLABLE_TEXT)
    body = fields.Function(_retained_text("body"), metadata=NULLABLE_TEXT)
    num_retries = fields.Function(
        lambda message: max(message.attempts - 1, 0), metadata={"type": "integer"}
    )
    reference_id = fields.Function(
        _retained_text("provider_id"),
        metadata={**NULLABLE_TEXT, "description": "The provider's id of the sent message"},
    )


class MambuReturnSchema(CamelSchema):
    return_code = fields.Integer(metadata={"example": 200})
    return_status = fields.String(metadata={"example": "SUCCESS"})


class MambuErrorSchema(MambuReturnSchema):
    """Mambu's error body: ``returnCode`` and ``returnStatus`` (Mambu's response codes: 2
    INVALID_CREDENTIALS, 3 INVALID_API_OPERATION, 4 INVALID_PARAMETERS, 5
    METHOD_NOT_IMPLEMENTED, 6 INTERNAL_ERROR, 11–14 pagination, 15 INVALID_PERMISSIONS), the
    first field at fault (``errorSource``), then Herald's error payload as the detail."""

    error_source = fields.String(metadata={"example": "filterConstraints[0].value"})
    code = fields.Integer(metadata={"description": "The HTTP status", "example": 400})
    status = fields.String(metadata={"example": "Bad Request"})
    message = fields.String()
    errors = fields.Dict(metadata={"description": "Each field at fault (in Mambu's names)"})

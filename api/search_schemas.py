"""Wire formats of history search, resend, listing and export (camelCase JSON)."""

from __future__ import annotations

from collections.abc import Callable

from marshmallow import ValidationError, fields, post_load, validate

from api.errors import TOO_DEEP, InvalidText, TooDeep, read_json
from api.notification_schemas import DESTINATION_DESCRIPTION, MessageSchema, retained_destination
from api.pagination import PageArgs
from channel_table import CHANNELS
from models.resend import MAX_RESEND
from models.search import FIELDS, is_retained
from models.search_syntax import MAX_CONSTRAINTS, MAX_VALUES
from tasks.requests import CamelSchema, small_json

MAX_FILTER_JSON = 8000
#: Hackney's ``notificationType`` values, which the listing takes for channels.
HACKNEY_TYPES = ", ".join(row.hackney for row in CHANNELS if row.hackney)
_label = validate.Length(min=1, max=255)


def takeable_json(text: str) -> None:
    """JSON in a query parameter is held to what a JSON body is (``api.errors.read_json``);
    JSON that does not parse is left for the endpoint to name."""
    try:
        read_json(text)
    except TooDeep:
        raise ValidationError(TOO_DEEP) from None
    except InvalidText as invalid:
        raise ValidationError(invalid.errors) from None
    except ValueError:
        pass


def _upper_choice(choices) -> Callable[[str], None]:
    allowed = sorted(choices)

    def check(value: str) -> None:
        if value.upper() not in allowed:
            raise ValidationError(f"Must be one of: {', '.join(allowed)}.")

    return check


class FilterConstraintSchema(CamelSchema):
    filter_selection = fields.String(
        required=True, validate=validate.Length(min=1, max=40), metadata={"example": "STATE"}
    )
    filter_element = fields.String(
        required=True, validate=validate.Length(min=1, max=40), metadata={"example": "EQUALS"}
    )
    value = fields.Raw(validate=small_json, metadata={"example": "FAILED"})
    second_value = fields.Raw(validate=small_json)
    values = fields.List(
        fields.Raw(validate=small_json),
        validate=validate.Length(max=MAX_VALUES, error="At most {max} values."),
    )


class SearchSchema(CamelSchema):
    """Mambu-style search: constraints ANDed, one sort."""

    filter_constraints = fields.List(
        fields.Nested(FilterConstraintSchema),
        load_default=list,
        validate=validate.Length(max=MAX_CONSTRAINTS, error="At most {max} constraints."),
    )
    sort_by = fields.String(load_default="CREATION_DATE", validate=_upper_choice(FIELDS))
    sort_order = fields.String(load_default="DESC", validate=_upper_choice(["ASC", "DESC"]))

    @post_load
    def upper(self, data: dict, **kwargs) -> dict:
        data["sort_by"], data["sort_order"] = data["sort_by"].upper(), data["sort_order"].upper()
        return data


class ResendSchema(CamelSchema):
    action = fields.String(required=True, validate=validate.OneOf(["resend"]))
    identifiers = fields.List(
        fields.String(validate=validate.Length(max=100)),
        required=True,
        validate=validate.Length(min=1, max=MAX_RESEND),
    )


class ResendResultSchema(CamelSchema):
    return_code = fields.Integer(metadata={"example": 200})
    return_status = fields.String(metadata={"example": "SUCCESS"})
    resent = fields.Integer(
        metadata={"description": "Messages handed to the queue now", "example": 2}
    )
    queued = fields.Integer(
        metadata={
            "description": "Messages put back to queued (all named); any not resent now "
            "(broker unavailable) are sent by the replay job",
            "example": 2,
        }
    )


class RetentionMixin:
    """Destination and rendered content, given only while the message is within retention
    (the destination as the caller may see it: ``models.privacy``)."""

    retained = fields.Method(
        "get_retained", metadata={"description": "false: past MESSAGE_RETENTION_DAYS"}
    )
    destination = fields.Method(
        "get_destination", metadata={"description": DESTINATION_DESCRIPTION}
    )
    subject = fields.Method("get_subject")
    body = fields.Method("get_body")

    def get_retained(self, message) -> bool:
        return is_retained(message)

    def get_destination(self, message) -> str | None:
        return retained_destination(message)

    def get_subject(self, message) -> str | None:
        return message.subject if is_retained(message) else None

    def get_body(self, message) -> str | None:
        return message.body if is_retained(message) else None


def _label_of(name: str) -> fields.Function:
    return fields.Function(lambda message: getattr(message.notification, name))


class MessageResultSchema(RetentionMixin, CamelSchema):
    """One message in a search result, with its notification's labels."""

    id = fields.UUID()
    notification_id = fields.UUID(attribute="notification_id")
    channel = fields.String()
    state = fields.String()
    failure_reason = fields.String(allow_none=True)
    event = _label_of("event")
    service_name = _label_of("service_name")
    reference = _label_of("reference")
    attempts = fields.Integer()
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    read_at = fields.DateTime(allow_none=True)


class MessageDetailSchema(RetentionMixin, MessageSchema):
    """A message with every delivery attempt; destination and content only within retention."""

    read_at = fields.DateTime(allow_none=True)


def _query_text(length: int = 255):
    return fields.String(validate=validate.Length(min=1, max=length))


class ListingFilterArgs(CamelSchema):
    """Filters as query parameters: equalities on labels, channel and state, a creation range."""

    service_name = _query_text()
    event = _query_text()
    target_id = _query_text()
    target_type = _query_text()
    notification_type = fields.String(
        validate=_label, metadata={"description": f"A channel, or {HACKNEY_TYPES}"}
    )
    state = _query_text()
    created_from = _query_text(40)
    created_to = _query_text(40)


class NotificationListArgs(ListingFilterArgs, PageArgs):
    filter = fields.String(
        validate=[validate.Length(max=MAX_FILTER_JSON), takeable_json],
        metadata={"description": "NotifyBC filter: JSON {where, fields, order, skip, limit}"},
    )


class ExportArgs(ListingFilterArgs):
    channel = _query_text()
    failure_reason = _query_text()
    recipient = _query_text()
    reference = _query_text()
    notification_id = _query_text(40)
    filter_constraints = fields.String(
        validate=[validate.Length(max=MAX_FILTER_JSON), takeable_json],
        metadata={"description": "Mambu filterConstraints as JSON"},
    )

"""Wire formats of the inbox, user tokens and notification actions."""

from __future__ import annotations

from marshmallow import fields, validate

from models.action import ActionType
from models.states import MessageState
from settings import settings
from tasks.requests import CamelSchema

ACTION_TYPES = [action.value for action in ActionType]
MAX_NOTE = 2000


def _ttl_range() -> validate.Range:
    return validate.Range(min=1, max=settings.USER_TOKEN_MAX_TTL_SECONDS)


class TokenRequestSchema(CamelSchema):
    user = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The user id (or IDNP) whose inbox the token opens"},
    )
    ttl_seconds = fields.Integer(
        load_default=3600,
        validate=lambda value: _ttl_range()(value),
        metadata={"description": "Lifetime, at most USER_TOKEN_MAX_TTL_SECONDS"},
    )


class TokenSchema(CamelSchema):
    token = fields.String()
    user = fields.String()
    expires_at = fields.DateTime()


class InboxArgs(CamelSchema):
    state = fields.String(
        validate=validate.OneOf([MessageState.UNREAD.value]),
        metadata={"description": "unread: only the items not read yet"},
    )


class InboxItemSchema(CamelSchema):
    id = fields.UUID(metadata={"description": "The item: a message, or a broadcast"})
    notification_id = fields.UUID()
    broadcast = fields.Boolean()
    state = fields.String(metadata={"enum": ["unread", "read"]})
    subject = fields.String(allow_none=True)
    body = fields.String()
    action_url = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True)
    service_name = fields.String(allow_none=True)
    event = fields.String(allow_none=True)
    require_action = fields.Boolean()
    action_required = fields.Boolean(metadata={"description": "Still waiting for an action"})
    valid_till = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class InboxCountSchema(CamelSchema):
    unread = fields.Integer()
    total = fields.Integer()


class InboxPatchSchema(CamelSchema):
    state = fields.String(
        required=True,
        validate=validate.OneOf([MessageState.READ.value, MessageState.DELETED.value]),
    )


class ActionRequestSchema(CamelSchema):
    action_type = fields.String(required=True, validate=validate.OneOf(ACTION_TYPES))
    action_note = fields.String(validate=validate.Length(max=MAX_NOTE), load_default=None)
    performed_by = fields.String(validate=validate.Length(min=1, max=200), load_default=None)


class ActionSchema(CamelSchema):
    id = fields.Integer()
    notification_id = fields.UUID(attribute="notification_id")
    action_type = fields.String(metadata={"enum": ACTION_TYPES})
    action_note = fields.String(allow_none=True)
    performed_by = fields.String(allow_none=True)
    user = fields.String(
        attribute="recipient_key",
        allow_none=True,
        metadata={"description": "The user who acted through their inbox"},
    )
    recorded_by = fields.Method("get_recorded_by", metadata={"enum": ["sender", "user"]})
    created_at = fields.DateTime()

    def get_recorded_by(self, action) -> str:
        return "user" if action.recipient_key is not None else "sender"


class ReaderSchema(CamelSchema):
    user = fields.String()
    state = fields.String(metadata={"enum": ["read", "deleted"]})
    at = fields.DateTime()

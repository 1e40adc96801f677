"""NotifyBC's wire formats for ``api.compat.notifybc``: the notification record as NotifyBC
shows it (built from Herald's notification, its messages and its readers), the create and
update bodies, and a created one as Herald's request (``herald_request``)."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, time

import marshmallow as ma
from flask_smorest import abort
from marshmallow import ValidationError, fields, validate

from api.notification_schemas import retained_destination
from channel_table import CHANNELS, INAPP
from models.base import OUT_OF_CALENDAR, in_calendar
from models.states import MessageState, notification_state
from tasks.requests import NotificationCreateSchema

#: Herald's channel name → NotifyBC's (``inApp``); channels NotifyBC lacks keep Herald's name.
CHANNEL_NAMES = {row.name: row.notifybc or row.name for row in CHANNELS}
#: NotifyBC's channels a POST may create → Herald's channel and recipient type.
CREATABLE = {"inApp": ("inapp", "user"), "email": ("email", "email"), "sms": ("sms", "phone")}
#: NotifyBC's ``state`` → the message states it stands for.
STATES = {
    "new": (
        MessageState.SCHEDULED,
        MessageState.QUEUED,
        MessageState.SENDING,
        MessageState.RETRYING,
        MessageState.HELD,
        MessageState.UNREAD,
    ),
    "read": (MessageState.READ,),
    "deleted": (MessageState.DELETED,),
    "sent": (MessageState.SENT, MessageState.DELIVERED),
    "error": (MessageState.FAILED, MessageState.CANCELLED, MessageState.EXPIRED),
}
STATE_OF = {state: name for name, states in STATES.items() for state in states}
#: A notification's aggregate state (``models.states.notification_state``) → NotifyBC's.
AGGREGATE = {"pending": "new", "completed": "sent", "partial": "sent", "failed": "error"}
#: Where Herald keeps what NotifyBC has and Herald's content does not (``message.data``).
ENVELOPE = "notifybc"
#: The most users shown in a broadcast's ``readBy`` or ``deletedBy``.
MAX_READERS_SHOWN = 1000
MAX_FILTER_JSON = 8000


class NotifyBCDate(fields.DateTime):
    """A date (``2000-01-01``: its UTC midnight) or an ISO datetime (without an offset: UTC),
    as NotifyBC's ``validTill``/``invalidBefore`` take them."""

    default_error_messages = {
        "invalid": "Not an ISO 8601 date or datetime.",
        "out_of_calendar": OUT_OF_CALENDAR,
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 40:
            raise self.make_error("invalid")
        try:
            if len(value) == 10:
                moment = datetime.combine(date.fromisoformat(value), time(), UTC)
            else:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.make_error("invalid") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if not in_calendar(moment):
            raise self.make_error("out_of_calendar")
        return moment.astimezone(UTC)


def _text(length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=length), **kwargs)


class NotificationBodySchema(ma.Schema):
    """A NotifyBC notification as POSTed (every field) or PATCHed (any of them)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    serviceName = _text(100, required=True, metadata={"example": "myService"})
    channel = fields.String(
        load_default="inApp", validate=validate.OneOf(sorted(CREATABLE)), metadata={}
    )
    userChannelId = _text(255, allow_none=True, metadata={"description": "Address or user id"})
    userId = _text(200, allow_none=True)
    isBroadcast = fields.Boolean(load_default=False)
    skipSubscriptionConfirmationCheck = fields.Boolean(
        metadata={"description": "Accepted; Herald sends to the address given"}
    )
    validTill = NotifyBCDate(allow_none=True, metadata={"description": "Hidden / not sent after"})
    invalidBefore = NotifyBCDate(allow_none=True, metadata={"description": "Not before (sendAt)"})
    message = fields.Dict(
        required=True,
        metadata={
            "description": "inApp: any object (title or subject, body); email: from, subject, "
            "textBody, htmlBody; sms: textBody"
        },
    )
    data = fields.Dict(allow_none=True, metadata={"description": "Kept with the message"})
    state = fields.String(
        validate=validate.OneOf(sorted(STATES)),
        metadata={"description": "PATCH/PUT: read or deleted"},
    )


class NotificationUpdateSchema(NotificationBodySchema):
    """PATCH/PUT: any of the fields, as read back (a user's keep ``state`` only)."""

    class Meta(NotificationBodySchema.Meta):
        pass

    serviceName = _text(100, allow_none=True)
    channel = fields.String(allow_none=True, validate=validate.Length(max=20))
    message = fields.Dict(allow_none=True)
    id = fields.String(validate=validate.Length(max=100))
    created = NotifyBCDate()
    updated = NotifyBCDate()
    readBy = fields.List(fields.String(validate=validate.Length(max=200)), allow_none=True)
    deletedBy = fields.List(fields.String(validate=validate.Length(max=200)), allow_none=True)

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        field_obj.required = False
        field_obj.load_default = ma.missing


class RecordSchema(ma.Schema):
    """A notification as NotifyBC shows it. A user's never has ``readBy``/``deletedBy``."""

    class Meta:
        ordered = True

    id = fields.String(metadata={"description": "Herald's notification id (a UUID)"})
    serviceName = fields.String(allow_none=True)
    channel = fields.String(allow_none=True, metadata={"description": "null: several"})
    userChannelId = fields.String(allow_none=True)
    userId = fields.String(allow_none=True)
    state = fields.String(metadata={"enum": sorted(STATES)})
    created = fields.DateTime()
    updated = fields.DateTime()
    isBroadcast = fields.Boolean()
    validTill = fields.DateTime(allow_none=True)
    invalidBefore = fields.DateTime(allow_none=True)
    message = fields.Dict(allow_none=True, metadata={"description": "null after retention"})
    data = fields.Dict(allow_none=True)
    readBy = fields.List(fields.String(), allow_none=True, metadata={"description": "Admin"})
    deletedBy = fields.List(fields.String(), allow_none=True, metadata={"description": "Admin"})


RECORD_FIELDS = list(RecordSchema().fields)


class FilterArgs(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    filter = fields.String(
        validate=validate.Length(max=MAX_FILTER_JSON),
        metadata={
            "description": 'JSON: {"where", "fields", "order", "skip"/"offset", "limit", "include"}'
        },
    )


# --- from Herald ---------------------------------------------------------------------------
def html_text(markup: str) -> str:
    """A plain-text part for an email given only an HTML body: its text, tags removed."""
    return html.unescape(re.sub(r"<[^>]*>", " ", markup)).strip() or markup


def envelope_of(content: dict | None) -> dict:
    data = (content or {}).get("data")
    held = data.get(ENVELOPE) if isinstance(data, dict) else None
    return held if isinstance(held, dict) else {}


def shown_message(content: dict, channel: str | None) -> dict | None:
    """The ``message`` object in NotifyBC's words: as POSTed for inApp, else from Herald's
    content (``subject``, ``body``, ``html``); None once purged."""
    if not content:
        return None
    envelope = envelope_of(content)
    if "message" in envelope:
        return envelope["message"]
    if channel in ("email", "sms"):
        parts = {
            "from": envelope.get("from"),
            "subject": content.get("subject"),
            "textBody": content.get("body"),
            "htmlBody": content.get("html"),
        }
        if channel == "sms":
            parts = {"textBody": content.get("body")}
    else:
        parts = {k: content.get(k) for k in ("subject", "body", "actionUrl", "action_url")}
    return {key: value for key, value in parts.items() if value is not None}


def shown_data(content: dict) -> dict | None:
    if not content:
        return None
    envelope = envelope_of(content)
    return envelope["data"] if "data" in envelope else content.get("data")


def one(values) -> str | None:
    values = set(values)
    return next(iter(values)) if len(values) == 1 else None


def record(notification, facts: dict, user_state: str | None = None) -> dict:
    """``notification`` as NotifyBC shows it. ``facts``: its messages' ``channels``,
    ``states``, ``updated`` and its ``message`` when it has exactly one; with ``user_state``
    (a user request) the user's own state and no ``readBy``/``deletedBy``."""
    message = facts.get("message")
    herald_channel = one(notification.channels or []) if notification.is_broadcast else None
    herald_channel = herald_channel or one(facts.get("channels", ()))
    channel = CHANNEL_NAMES.get(herald_channel or "", herald_channel)
    content = notification.content or {}
    envelope = envelope_of(content)
    user_id = envelope.get("userId")
    if user_id is None and message is not None and message.channel == INAPP.name:
        user_id = message.recipient_key
    shown = {
        "id": str(notification.id),
        "serviceName": notification.service_name,
        "channel": channel,
        "userChannelId": retained_destination(message) if message is not None else None,
        "userId": user_id,
        "state": user_state or _state(notification, facts),
        "created": notification.created_at,
        "updated": max(facts.get("updated") or notification.created_at, notification.created_at),
        "isBroadcast": notification.is_broadcast,
        "validTill": notification.valid_till,
        "invalidBefore": notification.send_at,
        "message": shown_message(content, channel),
        "data": shown_data(content),
    }
    if user_state is None:
        shown["readBy"] = facts.get("readBy")
        shown["deletedBy"] = facts.get("deletedBy")
    return shown


def _state(notification, facts: dict) -> str:
    if notification.deleted_at is not None:
        return "deleted"
    states = facts.get("states", ())
    if facts.get("message") is not None and len(states) == 1:
        return STATE_OF.get(states[0], "new")
    if facts.get("fanning_out") or not states:
        return "new"
    return AGGREGATE[notification_state(list(states), fanning_out=False)]


# --- POST: NotifyBC → Herald ---------------------------------------------------------------
def herald_request(data: dict) -> dict:
    """A NotifyBC notification as Herald's validated request (``NotificationCreateSchema``),
    with ``invalidBefore`` as ``sendAt``; ValidationError names NotifyBC's fields."""
    channel = data["channel"]
    herald_channel, recipient_type = CREATABLE[channel]
    herald: dict = {"serviceName": data["serviceName"], "message": _content(data)}
    if data["isBroadcast"]:
        if data.get("userChannelId"):
            raise ValidationError({"userChannelId": ["A broadcast has no userChannelId."]})
        herald.update(isBroadcast=True, channels=[herald_channel])
    else:
        address = data.get("userChannelId") or (data.get("userId") if channel == "inApp" else None)
        if not address:
            abort(403, message="invalid user", errors={"userChannelId": ["Required."]})
        herald["recipients"] = [{"type": recipient_type, "value": address}]
    try:
        loaded = NotificationCreateSchema().load(herald)
    except ValidationError as invalid:
        raise ValidationError(_notifybc_errors(invalid.normalized_messages(), channel)) from None
    valid_till, invalid_before = data.get("validTill"), data.get("invalidBefore")
    if valid_till and invalid_before and valid_till <= invalid_before:
        raise ValidationError({"validTill": ["Must be later than invalidBefore."]})
    return loaded | {"send_at": invalid_before, "valid_till": valid_till}


EMAIL_FIELDS = {"from", "subject", "textBody", "htmlBody"}


def _content(data: dict) -> dict:
    """Herald's content for the NotifyBC ``message``; what Herald has no field for (the inApp
    object as given, ``from``, ``data``, ``userId``) is kept in ``data.notifybc``."""
    message, channel = data["message"], data["channel"]
    envelope = {"data": data.get("data"), "userId": data.get("userId")}
    if channel == "inApp":
        subject = message.get("title", message.get("subject"))
        body = message.get("body", subject)
        envelope["message"] = message
        content = {"subject": subject, "body": body}
    else:
        allowed = (
            {"from", "subject", "textBody", "htmlBody"} if channel == "email" else {"textBody"}
        )
        if unknown := sorted(set(message) - allowed):
            raise ValidationError({"message": {unknown[0]: [f"Unknown for {channel}."]}})
        html = message.get("htmlBody")
        body = message.get("textBody")
        if body is None and isinstance(html, str):
            body = html_text(html)
        content = {"subject": message.get("subject"), "body": body, "html": html}
        envelope["from"] = message.get("from")
    content = {key: value for key, value in content.items() if value is not None}
    kept = {key: value for key, value in envelope.items() if value is not None}
    if kept:
        content["data"] = {ENVELOPE: kept}
    return content


#: Herald's field → NotifyBC's, in the errors of a POST.
TOP_NAMES = {"recipients": "userChannelId", "sendAt": "invalidBefore", "channels": "channel"}
MESSAGE_NAMES = {
    "inApp": {"subject": "title", "body": "body", "data": "message"},
    "email": {"body": "textBody", "html": "htmlBody", "subject": "subject"},
    "sms": {"body": "textBody"},
}


def _notifybc_errors(errors: dict, channel: str) -> dict:
    renamed: dict = {}
    for key, value in errors.items():
        if key == "message" and isinstance(value, dict):
            names = MESSAGE_NAMES[channel]
            for inner, messages in value.items():
                if inner == "data" and channel != "inApp":
                    renamed.setdefault("data", messages)
                else:
                    renamed.setdefault("message", {})[names.get(inner, inner)] = messages
        elif key == "recipients" and isinstance(value, dict):
            for problems in value.values():
                for inner, messages in problems.items() if isinstance(problems, dict) else ():
                    target = "channel" if inner == "type" else "userChannelId"
                    renamed.setdefault(target, []).extend(messages)
        else:
            renamed[TOP_NAMES.get(key, key)] = value
    return renamed

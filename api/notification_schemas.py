"""Notifications and messages as the API shows them (camelCase JSON)."""

from __future__ import annotations

from typing import Any

from flask import g, has_app_context
from marshmallow import fields, pre_dump

from models.fanout_chunk import progress_of
from models.message import Attempt, Message
from models.privacy import destination_as_shown, details_as_shown, text_as_shown
from models.search import is_retained
from models.sender import Sender
from models.states import FanoutState, notification_state
from models.template import Template, TemplateVersion
from tasks.requests import CamelSchema, MessageContentSchema


def viewer() -> Sender | None:
    """The sender a response is for (None outside a sender's request: then nothing that the
    contact registry gave is shown)."""
    return g.get("sender") if has_app_context() else None


def retained_destination(message: Message) -> str | None:
    """The destination as the viewer may see it (``models.privacy``), or None past
    MESSAGE_RETENTION_DAYS."""
    return destination_as_shown(viewer(), message) if is_retained(message) else None


DESTINATION_DESCRIPTION = (
    "null past MESSAGE_RETENTION_DAYS; an address found in the contact registry is masked "
    "(i***@example.md, +373******01) unless the key holds contacts:read"
)


class MessageSummarySchema(CamelSchema):
    id = fields.UUID()
    channel = fields.String()
    destination = fields.Method(
        "get_destination", metadata={"description": DESTINATION_DESCRIPTION}
    )
    language = fields.String(allow_none=True)
    state = fields.String()
    failure_reason = fields.String(allow_none=True)
    opt_out_bypassed = fields.Function(
        lambda message: bool(message.opt_out_bypassed),
        metadata={"type": "boolean", "description": "Sent despite an opt-out (critical)"},
    )

    def get_destination(self, message) -> str | None:
        return retained_destination(message)


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
    template = fields.Method("get_template", metadata={"description": "{id, code, version}"})
    attributes = fields.Dict(allow_none=True)
    send_at = fields.DateTime(allow_none=True)
    valid_till = fields.DateTime(allow_none=True)
    urgent = fields.Boolean()
    critical = fields.Boolean(metadata={"description": "Opt-outs bypassed (send_critical)"})
    require_action = fields.Boolean()
    reminder_id = fields.UUID(allow_none=True, metadata={"description": "Sent by this reminder"})
    occurrence_at = fields.DateTime(
        allow_none=True, metadata={"description": "For this occurrence"}
    )
    created_at = fields.DateTime()
    messages = fields.Method("get_messages")
    fanout = fields.Method(
        "get_fanout",
        metadata={
            "description": "How far resolving its people got: {chunks, chunksDone, people, "
            "messages}; null when there is nothing to resolve (direct recipients) or nothing "
            "started yet"
        },
    )

    @pre_dump(pass_collection=True)
    def load_related(self, data, many: bool, **kwargs):
        """The messages and template versions of every notification dumped, one query each
        for the whole page (not one per row)."""
        notifications = list(data) if many else [data]
        with_related(notifications)
        return notifications if many else data

    def get_template(self, notification) -> dict | None:
        return template_shown(notification)

    def get_state(self, notification) -> str:
        return state_shown(notification)

    def get_messages(self, notification) -> list:
        return _MESSAGE_SUMMARIES.dump(notification.__dict__["message_list"])

    def get_fanout(self, notification) -> dict | None:
        return notification.__dict__.get("fanout_progress")


def template_shown(notification) -> dict | None:
    """A notification's ``template``: ``{id, code, version}``, or None."""
    if notification.template_version_id is None:
        return None
    version = notification.template_version
    template = version.template
    return {"id": str(template.id), "code": template.code, "version": version.version}


def state_shown(notification) -> str:
    """A notification's ``state``, from its attached messages (``message_list``)."""
    states = [m.state for m in notification.__dict__["message_list"]]
    fanning_out = notification.fanout_state == FanoutState.PENDING
    return notification_state(states, fanning_out=fanning_out)


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def _text(value) -> str | None:
    return None if value is None else str(value)


#: Message content keys :func:`notification_json` writes itself, with their wire names, in
#: MessageContentSchema's order; content with any other key goes through the schema.
_PLAIN_CONTENT = {"subject": "subject", "body": "body", "html": "html", "action_url": "actionUrl"}


def _content_shown(content: dict | None) -> dict | None:
    if content is None:
        return None
    if not content.keys() <= {*_PLAIN_CONTENT, "data"}:
        return _CONTENT.dump(content)
    shown: dict[str, Any] = {
        wire: _text(content[key]) for key, wire in _PLAIN_CONTENT.items() if key in content
    }
    if "data" in content:
        shown["data"] = None if content["data"] is None else dict(content["data"])
    return shown


def notification_json(notification) -> dict:
    """``NotificationSchema().dump(notification)`` without marshmallow's per-field machinery,
    for a notification whose messages are attached (``message_list``, as the accept path has
    them): the same dict (tests/api/test_accept_path.py compares them), in a tenth of the
    time. The schema stays the statement of the wire format."""
    n = notification
    return {
        "id": str(n.id),
        "state": state_shown(n),
        "serviceName": _text(n.service_name),
        "event": _text(n.event),
        "targetId": _text(n.target_id),
        "targetType": _text(n.target_type),
        "reference": _text(n.reference),
        "message": _content_shown(n.content),
        "template": template_shown(n),
        "attributes": None if n.attributes is None else dict(n.attributes),
        "sendAt": _iso(n.send_at),
        "validTill": _iso(n.valid_till),
        "urgent": n.urgent,
        "critical": n.critical,
        "requireAction": n.require_action,
        "reminderId": _text(n.reminder_id),
        "occurrenceAt": _iso(n.occurrence_at),
        "createdAt": _iso(n.created_at),
        "messages": [
            {
                "id": str(m.id),
                "channel": _text(m.channel),
                "destination": retained_destination(m),
                "language": _text(m.language),
                "state": _text(m.state),
                "failureReason": _text(m.failure_reason),
                "optOutBypassed": bool(m.opt_out_bypassed),
            }
            for m in n.__dict__["message_list"]
        ],
        "fanout": n.__dict__.get("fanout_progress"),
    }


def with_related(notifications: list) -> None:
    """Attach to each notification its messages (oldest first, as ``message_list``, unless it
    has them already) and its template version with the version's template: one query for
    the messages and one for the versions, whatever the number of notifications."""
    unloaded = [n for n in notifications if "message_list" not in n.__dict__]
    if unloaded:
        found: dict = {n.id: [] for n in unloaded}
        messages = Message.select().where(Message.notification.in_(list(found)))
        for message in messages.order_by(Message.created_at, Message.id):
            found[message.notification_id].append(message)
        for notification in unloaded:
            notification.__dict__["message_list"] = found[notification.id]
    fanning = [n.id for n in notifications if n.fanout_state != FanoutState.NONE]
    if fanning:
        progress = progress_of(fanning)
        for notification in notifications:
            notification.__dict__["fanout_progress"] = progress.get(notification.id)
    unpinned = [
        n
        for n in notifications
        if n.template_version_id is not None and "template_version" not in n.__rel__
    ]
    pinned = {n.template_version_id for n in unpinned}
    if not pinned:
        return
    query = (
        TemplateVersion.select(
            TemplateVersion.id,
            TemplateVersion.version,
            TemplateVersion.template,
            Template.id,
            Template.code,
        )
        .join(Template)
        .where(TemplateVersion.id.in_(list(pinned)))
    )
    versions = {version.id: version for version in query}
    for notification in unpinned:  # what peewee's accessor reads, without marking a change
        notification.__rel__["template_version"] = versions[notification.template_version_id]


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
    last_error = fields.Method("get_last_error", metadata={"type": "string", "nullable": True})
    details = fields.Method(
        "get_details",
        metadata={
            "type": "object",
            "nullable": True,
            "description": "What the channel reported (segments, …)",
        },
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    attempt_history = fields.Method("get_attempt_history")

    def get_last_error(self, message) -> str | None:
        return text_as_shown(viewer(), message, message.last_error)

    def get_details(self, message) -> dict | None:
        return details_as_shown(viewer(), message)

    def get_attempt_history(self, message) -> list:
        rows = Attempt.select().where(Attempt.message == message.id).order_by(Attempt.number)
        attempts = _ATTEMPTS.dump(rows)
        for attempt in attempts:
            attempt["error"] = text_as_shown(viewer(), message, attempt["error"])
        return attempts


#: Built once for the dump methods above (a schema per call cost ~0.5 ms in the accept path).
_MESSAGE_SUMMARIES = MessageSummarySchema(many=True)
_CONTENT = MessageContentSchema()
_ATTEMPTS = AttemptSchema(many=True)

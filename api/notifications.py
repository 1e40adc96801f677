"""``/v1/notifications``: submit a notification and follow it."""

from __future__ import annotations

from uuid import UUID

from flask import make_response
from flask.views import MethodView
from flask_smorest import abort

from api.auth import current_sender, require
from api.errors import Blueprint
from api.idempotency import KeptAnswer, idempotent, requested_idempotency
from api.inbox_schemas import ActionRequestSchema, ActionSchema, ReaderSchema
from api.notification_schemas import NotificationSchema, notification_json
from api.pagination import PageArgs, paginate
from api.search import notification_listing
from api.search_schemas import NotificationListArgs
from models.action import NotificationDeleted, actions_of, record_action
from models.inbox import readers_of
from models.lifecycle import DeleteOutcome, soft_delete
from models.notification import Notification, notification_for
from tasks.requests import NotificationCreateSchema
from tasks.submit import InvalidSubmission, submit_notification

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/v1/notifications",
    description="Send and follow notifications",
)


SEND_CRITICAL = "send_critical"

#: Schemas are built once: building one per response (and its nested ones) cost ~1 ms.
_NOTIFICATION = NotificationSchema()


def dump_notification(notification) -> dict:
    return _NOTIFICATION.dump(notification)


def _accepted(notification: Notification, messages: list) -> tuple[int, dict]:
    """The 202 answering a submission (NotificationSchema's dump, made directly)."""
    notification.__dict__["message_list"] = messages
    return 202, notification_json(notification)


@blp.route("")
class Notifications(MethodView):
    @blp.arguments(NotificationCreateSchema)
    @blp.response(202, NotificationSchema)
    @blp.alt_response(422, description="Idempotency-Key reused with a different body")
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "Idempotency-Key",
                "schema": {"type": "string", "maxLength": 255},
                "description": "Same key and body: the first response again; different body: 422",
            }
        ]
    )
    @blp.alt_response(403, description="critical without the send_critical grant")
    @idempotent(dump_notification, 202)
    def post(self, data):
        """Submit a notification: one message per recipient is queued for delivery. With
        ``critical``, the recipients' opt-outs are bypassed (and each such message says so)."""
        if data["critical"]:
            require(SEND_CRITICAL)
        answer = KeptAnswer(_accepted)
        try:
            notification, messages = submit_notification(
                current_sender(), data, requested_idempotency(), answer
            )
        except InvalidSubmission as invalid:
            abort(400, errors=invalid.errors)
        status, body = answer.made or _accepted(notification, messages)
        return make_response(body, status)

    @blp.arguments(NotificationListArgs, location="query")
    @blp.response(200, NotificationSchema(many=True))
    def get(self, args):
        """Notifications, newest first, filtered by query parameters or a NotifyBC ``filter``;
        a message field (state, notificationType) means "has a message that matches"."""
        return notification_listing(args)


@blp.route("/<uuid:notification_id>")
class NotificationById(MethodView):
    @blp.response(200, NotificationSchema)
    def get(self, notification_id: UUID):
        """A notification with its messages and their states."""
        return _notification(notification_id)

    @blp.arguments(ActionRequestSchema)
    @blp.response(200, ActionSchema)
    @blp.alt_response(409, description="The notification was deleted")
    def patch(self, data, notification_id: UUID):
        """Record an action on the notification (the screen-notification shape
        ``{"actionType", "actionNote"}``); the same as POST .../actions."""
        return _record(_notification(notification_id), data)

    @blp.response(204)
    @blp.alt_response(409, description="Already deleted, nothing left to cancel")
    def delete(self, notification_id: UUID):
        """Soft-delete: hidden from every inbox, messages not yet sent cancelled, kept for
        audit."""
        notification = _notification(notification_id)
        if soft_delete(notification.id) == DeleteOutcome.NOTHING_LEFT:
            abort(409, message="The notification is deleted and has nothing left to cancel.")
        return "", 204


@blp.route("/<uuid:notification_id>/actions")
class NotificationActions(MethodView):
    @blp.arguments(ActionRequestSchema)
    @blp.response(201, ActionSchema)
    @blp.alt_response(409, description="The notification was deleted")
    def post(self, data, notification_id: UUID):
        """Record what was done about the notification (approved, rejected…), with a note."""
        return _record(_notification(notification_id), data)

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ActionSchema(many=True))
    def get(self, args, notification_id: UUID):
        """The audit trail of actions, oldest first: who, what, note, when."""
        items, headers = paginate(actions_of(_notification(notification_id).id), args)
        return items, 200, headers


@blp.route("/<uuid:notification_id>/readers")
class NotificationReaders(MethodView):
    @blp.response(200, ReaderSchema(many=True))
    def get(self, notification_id: UUID):
        """Who read or deleted the notification in their inbox, and when."""
        return readers_of(_notification(notification_id).id)


def _notification(notification_id: UUID) -> Notification:
    notification = notification_for(current_sender(), notification_id)
    if notification is None:
        abort(404, message="No such notification.")
    return notification


def _record(notification: Notification, data: dict):
    try:
        return record_action(
            notification.id,
            data["action_type"],
            note=data["action_note"],
            performed_by=data["performed_by"],
            sender_id=current_sender().id,
        )
    except NotificationDeleted:
        abort(409, message="The notification was deleted; no more actions can be recorded.")

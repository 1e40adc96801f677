"""``/v1/notifications``: submit a notification and follow it."""

from __future__ import annotations

from uuid import UUID

from flask import make_response
from flask.views import MethodView
from flask_smorest import abort

from api.auth import current_sender
from api.errors import Blueprint
from api.idempotency import idempotent, requested_idempotency
from api.schemas import NotificationCreateSchema, NotificationSchema
from api.search import notification_listing
from api.search_schemas import NotificationListArgs
from models.notification import notification_for
from tasks.submit import InvalidSubmission, submit_notification

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/v1/notifications",
    description="Send and follow notifications",
)


def dump_notification(notification) -> dict:
    return NotificationSchema().dump(notification)


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
    @idempotent(dump_notification, 202)
    def post(self, data):
        """Submit a notification: one message per recipient is queued for delivery."""
        try:
            notification, messages = submit_notification(
                current_sender(), data, requested_idempotency()
            )
        except InvalidSubmission as invalid:
            abort(400, errors=invalid.errors)
        notification.__dict__["message_list"] = messages
        return make_response(dump_notification(notification), 202)

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
        notification = notification_for(current_sender(), notification_id)
        if notification is None:
            abort(404, message="No such notification.")
        return notification

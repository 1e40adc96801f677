"""``/v1/reminders``: reminder campaigns, each occurrence of which sends a notification."""

from __future__ import annotations

from uuid import UUID

from flask import request
from flask.views import MethodView
from flask_smorest import abort

from api.auth import current_sender
from api.errors import Blueprint
from api.pagination import PageArgs, paginate
from api.reminder_schemas import SCHEDULE_KEYS, ReminderCreateSchema, ReminderSchema
from models.base import utcnow
from models.reminder import cancel_reminder, create_reminder, reminder_for, reminders_of
from tasks.requests import canonical_recipients
from tasks.submit import InvalidSubmission, template_version

blp = Blueprint(
    "reminders",
    __name__,
    url_prefix="/v1/reminders",
    description="Reminder campaigns: notifications sent on a schedule",
)


@blp.route("")
class Reminders(MethodView):
    @blp.arguments(ReminderCreateSchema)
    @blp.response(201, ReminderSchema)
    def post(self, data):
        """Create a reminder: the notification is sent at each occurrence of the schedule."""
        sender = current_sender()
        template_id = None
        if "template" in data:
            try:
                template_id = template_version(sender, data).template_id
            except InvalidSubmission as invalid:
                abort(400, errors=invalid.errors)
        body = {k: v for k, v in request.get_json().items() if k not in SCHEDULE_KEYS}
        body = canonical_recipients(body)
        return create_reminder(sender, body, data["schedule"], template_id, utcnow())

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ReminderSchema(many=True))
    def get(self, args):
        """The sender's reminders, newest first."""
        items, headers = paginate(reminders_of(current_sender()), args)
        return items, 200, headers


@blp.route("/<uuid:reminder_id>")
class ReminderById(MethodView):
    @blp.response(200, ReminderSchema)
    def get(self, reminder_id: UUID):
        """A reminder, its schedule, next occurrence and how many have fired."""
        reminder = reminder_for(current_sender(), reminder_id)
        if reminder is None:
            abort(404, message="No such reminder.")
        return reminder

    @blp.response(204)
    @blp.alt_response(409, description="Every occurrence has already been sent")
    def delete(self, reminder_id: UUID):
        """Cancel a reminder's occurrences still to come."""
        reminder = reminder_for(current_sender(), reminder_id)
        if reminder is None:
            abort(404, message="No such reminder.")
        if not cancel_reminder(reminder):
            abort(409, message="Every occurrence of this reminder has already been sent.")

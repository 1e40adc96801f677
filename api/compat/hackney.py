"""Hackney's notifications API (seed ``002``) under ``/compat/hackney``: create, list, act on
and delete notifications, and the GOV.UK Notify message status.

A Hackney notification is a Herald notification: its ``notificationType`` channel's message
first, then one per ``require…`` flag. ``Screen`` is the in-app inbox of ``user`` (or, without
one, of ``targetId``: Hackney shows screen notifications per target); ``Email``, ``Text`` and
``Letter`` go to ``email``, ``mobileNumber`` and the ``addressLine1…7`` of
``personalisationParams``. Everything the listing shows is read back from Herald's notification,
its messages and its action trail, so retention and privacy masking hold as on ``/v1``. The
Notify message status answers for a Herald message id (``sentMessageDetails`` lists them).
"""

from __future__ import annotations

import hashlib
import re
from uuid import UUID

from flask import make_response
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError

from api.auth import authenticate, current_sender
from api.compat.dialect import Dialect
from api.compat.hackney_schemas import (
    ADDRESS_FIELDS,
    FLAG_FIELDS,
    HackneyActionRequestSchema,
    HackneyListArgs,
    HackneyNotificationCreateSchema,
    HackneyNotificationSchema,
    NotifyMessageStatusSchema,
    address_lines,
    channels_of,
)
from api.compat.hackney_views import message_status, notification_items
from api.errors import Blueprint
from api.idempotency import HEADER, idempotent, requested_idempotency
from api.pagination import paginate
from api.search import parsed_filter
from channel_table import EMAIL, INAPP, LETTER, SMS, ChannelRow
from models.action import NotificationDeleted, record_action
from models.lifecycle import DeleteOutcome, soft_delete
from models.message import message_for
from models.notification import Notification, notification_for
from models.search import is_retained, search_notifications
from models.search_syntax import parameter_filter
from settings import settings
from tasks.requests import NotificationCreateSchema, camelcase
from tasks.submit import InvalidSubmission, submit_notification

blp = Blueprint(
    "compat_hackney",
    __name__,
    url_prefix="/compat/hackney",
    description="Hackney's notifications API: notifications, actions and message status",
)

DIALECT = Dialect(blp, authenticate)

_CREATE = NotificationCreateSchema()
_ITEM = HackneyNotificationSchema()
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Same key and body: the first response again; different body: 422",
}


def dump_item(notification) -> dict:
    """The notification in Hackney's item shape (JSON-ready)."""
    return _ITEM.dump(notification_items([notification])[0])


@blp.route("/notifications")
class HackneyNotifications(MethodView):
    @blp.arguments(HackneyNotificationCreateSchema)
    @blp.response(201, HackneyNotificationSchema)
    @blp.alt_response(422, description="Idempotency-Key reused with a different body")
    @blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
    @idempotent(dump_item, 201)
    def post(self, data):
        """Create a notification and send it on its ``notificationType``'s channel and each
        ``require…`` channel; answers the created notification as the listing shows it."""
        body, channels = herald_request(data)
        try:
            request = _CREATE.load(body)
        except ValidationError as invalid:
            abort(400, errors=hackney_errors(invalid.messages, channels))
        if data["template_id"] and data["message"]:
            request["message"] = {"body": data["message"]}  # kept to be read back, not sent
        try:
            notification, _ = submit_notification(
                current_sender(), request, requested_idempotency()
            )
        except InvalidSubmission as invalid:
            abort(400, errors=hackney_errors(invalid.errors, channels))
        return make_response(dump_item(notification), 201)

    @blp.arguments(HackneyListArgs, location="query")
    @blp.response(200, HackneyNotificationSchema(many=True))
    def get(self, args):
        """Notifications with a message on ``notificationType``'s channel, for ``targetId``,
        newest first, ``pageSize`` (at most 200, default 50) a page; deleted ones are not
        listed."""
        page = {"page": args.pop("page"), "page_size": args.pop("page_size")}
        params = {camelcase(name): value for name, value in args.items()}
        sender = current_sender()
        node = parsed_filter(parameter_filter, params, sender)
        query = search_notifications(sender, node)
        items, headers = paginate(query, page, settings.SEARCH_COUNT_LIMIT)
        return notification_items(items), 200, headers


@blp.route("/notifications/<uuid:notification_id>")
class HackneyNotificationById(MethodView):
    @blp.arguments(HackneyActionRequestSchema)
    @blp.response(200, HackneyNotificationSchema)
    @blp.alt_response(409, description="The notification was deleted")
    def patch(self, data, notification_id: UUID):
        """Record an action (``IsRead`` sets ``isReadStatus``); answers the notification."""
        if data["id"] is not None and data["id"] != notification_id:
            abort(400, errors={"id": ["Must be the notification id in the path."]})
        notification = _notification(notification_id)
        try:
            record_action(
                notification.id,
                data["action_type"],
                note=data.get("action_note"),
                performed_by=data.get("performed_action_done_by"),
                sender_id=current_sender().id,
            )
        except NotificationDeleted:
            abort(409, message="The notification was deleted; no more actions can be recorded.")
        return notification_items([notification])[0]

    @blp.response(204)
    @blp.alt_response(409, description="Already deleted, nothing left to cancel")
    def delete(self, notification_id: UUID):
        """Delete: no longer listed, messages not yet sent cancelled; kept for audit."""
        notification = _notification(notification_id)
        if soft_delete(notification.id) == DeleteOutcome.NOTHING_LEFT:
            abort(409, message="The notification is deleted and has nothing left to cancel.")
        return "", 204


@blp.route("/message-status/<string(maxlength=100):service>/<uuid:notification_id>")
class HackneyMessageStatus(MethodView):
    @blp.response(200, NotifyMessageStatusSchema)
    def get(self, service: str, notification_id: UUID):
        """An email, SMS or letter message (``notificationId``: a Herald message id, as
        ``sentMessageDetails`` gives) in GOV.UK Notify's shape, within MESSAGE_RETENTION_DAYS
        (404 after, as Notify). ``service`` is not checked: the API key names the sender."""
        message = message_for(current_sender(), notification_id)
        if message is None or message.channel not in FLAG_FIELDS:
            abort(404, message="No such email, SMS or letter message.")
        if not is_retained(message):
            abort(404, message="No such message within the retention period.")
        return message_status(message)


def _notification(notification_id: UUID) -> Notification:
    notification = notification_for(current_sender(), notification_id)
    if notification is None:
        abort(404, message="No such notification.")
    return notification


# --- Hackney's request → Herald's ----------------------------------------------------------
#: A GOV.UK Notify API key: ``{key name}-{service id}-{secret}``.
NOTIFY_KEY = re.compile(
    r"^(?P<name>.*)-(?P<service>[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})-"
    r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}$",
    re.IGNORECASE,
)


def service_name(service_key: str) -> str:
    """Herald's ``serviceName`` for a Notify ``serviceKey``: the key without its secret part
    (key name and service id), or for a key not in Notify's form a SHA-256 fingerprint, so
    that no secret is stored in clear."""
    if match := NOTIFY_KEY.match(service_key):
        return f"{match['name'][:63]}-{match['service']}"
    return "sha256:" + hashlib.sha256(service_key.encode(errors="surrogatepass")).hexdigest()[:32]


def herald_request(data: dict) -> tuple[dict, list[ChannelRow]]:
    """The ``POST /v1/notifications`` body for a Hackney request, and the channel of each of
    its recipients (to name Hackney's fields in errors)."""
    channels = channels_of(data)
    addresses = {
        INAPP.name: data["user"] or data["target_id"],
        EMAIL.name: data["email"],
        SMS.name: data["mobile_number"],
        LETTER.name: address_lines(data["personalisation_params"]),
    }
    body: dict = {
        "recipients": [
            {"type": row.recipient_type, "value": addresses[row.name]} for row in channels
        ],
        "requireAction": data["require_action"],
    }
    for name in ("target_id", "target_type"):
        if data[name] is not None:
            body[camelcase(name)] = data[name]
    if data["service_key"] is not None:
        body["serviceName"] = service_name(data["service_key"])
    params = data["personalisation_params"]
    if data["template_id"]:
        body["template"] = data["template_id"]
        if params:
            body["attributes"] = params
    else:
        body["message"] = {"body": data["message"], **({"data": params} if params else {})}
    return body, channels


#: Herald's request fields → Hackney's (the others have the same name).
HACKNEY_NAMES = {
    "template": "templateId",
    "attributes": "personalisationParams",
    "serviceName": "serviceKey",
}
MESSAGE_PARTS = {"data": "personalisationParams"}


def hackney_errors(errors: dict, channels: list[ChannelRow]) -> dict:
    """Herald's validation errors, keyed by the Hackney fields that caused them: a recipient's
    address by the field it came from, its channel by the field that asked for it."""
    named: dict = {}
    for key, problems in errors.items():
        if key == "recipients" and isinstance(problems, dict):
            for index, parts in problems.items():
                row = channels[int(index)]
                for part, messages in parts.items():
                    _add(named, _recipient_field(row, part, index), messages)
        elif key == "message" and isinstance(problems, dict):
            for part, messages in problems.items():
                _add(named, MESSAGE_PARTS.get(part, "message"), messages)
        else:
            _add(named, HACKNEY_NAMES.get(key, key), problems)
    return named


def _recipient_field(row: ChannelRow, part: str, index) -> str:
    if part == "value":
        return ADDRESS_FIELDS[row.name]
    if part == "type":
        return "notificationType" if int(index) == 0 else FLAG_FIELDS[row.name]
    return "personalisationParams"


def _add(named: dict, field: str, messages) -> None:
    if isinstance(messages, dict):
        messages = [text for value in messages.values() for text in _flat(value)]
    named.setdefault(field, [])
    named[field] += [text for text in _flat(messages) if text not in named[field]]


def _flat(messages) -> list[str]:
    if isinstance(messages, dict):
        return [text for value in messages.values() for text in _flat(value)]
    if isinstance(messages, list):
        return [text for value in messages for text in _flat(value)]
    return [str(messages)]

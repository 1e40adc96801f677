"""Herald's notifications and messages read as Hackney's items and GOV.UK Notify's message
status (``api/compat/hackney.py``): built from the notification, its messages and its action
trail, a page in a fixed number of queries, with destinations as the caller may see them and
nothing of the person past retention.

Herald's message states in Notify's words:

=============================================  =====================================
Herald                                         Notify ``status``
=============================================  =====================================
scheduled, queued, held                        created
sending, retrying                              sending
sent: SMS (its gateway reports delivery)       sending
sent: email, letter (no later receipt)         delivered
delivered                                      delivered
failed: INVALID_DESTINATION, DEAD_ADDRESS,     permanent-failure
REJECTED_BY_PROVIDER, UNSUBSCRIBED,
NO_ACTIVE_CHANNEL
failed: RETRIES_EXHAUSTED, THROTTLED           temporary-failure
failed: TEMPLATE_ERROR, EXPIRED, other         technical-failure
cancelled (deleted before it was sent)         cancelled (Notify's letter word)
=============================================  =====================================
"""

from __future__ import annotations

from flask import url_for
from peewee import fn

from api.notification_schemas import retained_destination
from channel_table import CHANNELS_BY_NAME, EMAIL, INAPP, LETTER, SMS
from models.action import NotificationAction, latest_actions, marked_read
from models.message import Message
from models.notification import Notification
from models.states import FailureReason, MessageState
from models.template import Template, TemplateVersion

#: Channels whose provider reports delivery later: ``sent`` there is still on its way.
REPORTS_DELIVERY = {SMS.name}
NOTIFY_CHANNELS = (EMAIL.name, SMS.name, LETTER.name)
_CREATED = {MessageState.SCHEDULED, MessageState.QUEUED, MessageState.HELD}
_SENDING = {MessageState.SENDING, MessageState.RETRYING}
_PERMANENT = {
    FailureReason.INVALID_DESTINATION,
    FailureReason.DEAD_ADDRESS,
    FailureReason.REJECTED_BY_PROVIDER,
    FailureReason.UNSUBSCRIBED,
    FailureReason.NO_ACTIVE_CHANNEL,
}
_TEMPORARY = {FailureReason.RETRIES_EXHAUSTED, FailureReason.THROTTLED}
#: Notify statuses a message does not leave (``completedAt`` is set).
COMPLETED = {
    "delivered",
    "permanent-failure",
    "temporary-failure",
    "technical-failure",
    "cancelled",
}


def notify_status(message: Message) -> str:
    """``message``'s state in GOV.UK Notify's vocabulary (the table above)."""
    state = message.state
    if state in _CREATED:
        return "created"
    if state in _SENDING:
        return "sending"
    if state == MessageState.SENT:
        return "sending" if message.channel in REPORTS_DELIVERY else "delivered"
    if state == MessageState.DELIVERED:
        return "delivered"
    if state == MessageState.CANCELLED:
        return "cancelled"
    if message.failure_reason in _PERMANENT:
        return "permanent-failure"
    if message.failure_reason in _TEMPORARY:
        return "temporary-failure"
    return "technical-failure"


def first_per_channel(notification_ids: list) -> dict:
    """Each notification's first message on each channel, in the order they were made (one
    query: a broadcast's many messages give one row per channel)."""
    ranked = Message.select(
        Message.id,
        fn.ROW_NUMBER()
        .over(
            partition_by=[Message.notification, Message.channel],
            order_by=[Message.created_at, Message.id],
        )
        .alias("rank"),
    ).where(Message.notification.in_(notification_ids))
    ranked = ranked.alias("ranked")
    query = (
        Message.select()
        .join(ranked, on=(Message.id == ranked.c.id))
        .where(ranked.c.rank == 1)
        .order_by(Message.created_at, Message.id)
    )
    found: dict = {}
    for message in query:
        found.setdefault(message.notification_id, []).append(message)
    return found


def _template_ids(version_ids: set) -> dict:
    """Template version id → its template's id (one query)."""
    if not version_ids:
        return {}
    query = TemplateVersion.select(TemplateVersion.id, TemplateVersion.template).where(
        TemplateVersion.id.in_(list(version_ids))
    )
    return {version.id: str(version.template_id) for version in query}


def notification_items(notifications: list[Notification]) -> list[dict]:
    """The notifications as Hackney's items (``HackneyNotificationSchema`` attributes), in
    five queries whatever their number."""
    ids = [notification.id for notification in notifications]
    if not ids:
        return []
    messages = first_per_channel(ids)
    actions, read = latest_actions(ids), marked_read(ids)
    templates = _template_ids({n.template_version_id for n in notifications} - {None})
    return [
        _item(
            notification,
            messages.get(notification.id, []),
            actions.get(notification.id),
            notification.id in read,
            templates.get(notification.template_version_id),
        )
        for notification in notifications
    ]


def _item(
    notification: Notification,
    messages: list[Message],
    action: NotificationAction | None,
    read: bool,
    template_id: str | None,
) -> dict:
    by_channel = {message.channel: message for message in messages}
    named = [m.channel for m in messages if CHANNELS_BY_NAME[m.channel].hackney]
    first = named[0] if named else None
    inapp = by_channel.get(INAPP.name)
    content = notification.content or {}
    user = _address(inapp)
    sent = [m for m in messages if m.channel in NOTIFY_CHANNELS]
    return {
        "id": notification.id,
        "target_id": notification.target_id,
        "target_type": notification.target_type,
        "notification_type": CHANNELS_BY_NAME[first].hackney if first else None,
        "user": None if user == notification.target_id else user,
        "message": content.get("body"),
        "service_key": notification.service_name,
        "template_id": template_id,
        "mobile_number": _address(by_channel.get(SMS.name)),
        "email": _address(by_channel.get(EMAIL.name)),
        "require_action": notification.require_action,
        "require_email_notification": first != EMAIL.name and EMAIL.name in by_channel,
        "require_sms_notification": first != SMS.name and SMS.name in by_channel,
        "require_letter": first != LETTER.name and LETTER.name in by_channel,
        "is_read_status": read or (inapp is not None and inapp.state == MessageState.READ),
        "sent_message_details": [
            {"id": m.id, "type": m.channel, "status": notify_status(m)} for m in sent
        ]
        or None,
        "action_note": action.action_note if action else None,
        "performed_action_done_by": _actor(action),
        "performed_action_type": action.action_type if action else None,
        "is_removable": notification.deleted_at is None,
        "personalisation_params": (
            notification.attributes if notification.template_version_id else content.get("data")
        ),
        "performed_action_date": action.created_at if action else None,
        "created_date": notification.created_at,
    }


def _address(message: Message | None) -> str | None:
    """The message's destination as the caller may see it; None past retention."""
    return (retained_destination(message) or None) if message is not None else None


def _actor(action: NotificationAction | None) -> str | None:
    if action is None:
        return None
    return action.performed_by or (action.recipient_key or None)


def message_status(message: Message) -> dict:
    """``message`` (email, SMS or letter, within retention) as GOV.UK Notify shows it
    (``NotifyMessageStatusSchema`` attributes)."""
    notification = message.notification
    status = notify_status(message)
    destination = retained_destination(message)
    lines = _lines(destination if message.channel == LETTER.name else None)
    completed = message.delivered_at or (message.updated_at if status in COMPLETED else None)
    return {
        "id": message.id,
        "completed_at": completed,
        "email_address": destination if message.channel == EMAIL.name else None,
        "body": message.body,
        "subject": message.subject,
        **{f"line{number}": line for number, line in enumerate(lines, 1)},
        "phone_number": destination if message.channel == SMS.name else None,
        "postage": None,
        "reference": notification.reference,
        "sent_at": message.sent_at,
        "status": status,
        "type": message.channel,
        "created_by_name": None,
        "template": _template(notification),
    }


def _lines(address: str | None) -> list[str | None]:
    """A letter's address as Notify's ``line1…line6``: the sixth holds any lines after it."""
    lines: list[str | None] = list(address.split("\n")) if address else []
    if len(lines) > 6:
        lines = [*lines[:5], ", ".join(line or "" for line in lines[5:])]
    return lines + [None] * (6 - len(lines))


def _template(notification: Notification) -> dict | None:
    if notification.template_version_id is None:
        return None
    version = (
        TemplateVersion.select(TemplateVersion, Template.id)
        .join(Template)
        .where(TemplateVersion.id == notification.template_version_id)
        .get()
    )
    template_id = str(version.template.id)
    path = url_for(
        "templates.TemplateVersionByNumber",
        id_or_code=template_id,
        number=version.version,
        _external=True,
    )
    return {"id": template_id, "version": version.version, "path": path}

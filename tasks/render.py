"""Turning a message into what its channel sends."""

from __future__ import annotations

from channels.base import Rendered
from models.message import Message


def render(message: Message) -> Rendered:
    """The rendered content of ``message`` (its notification's content, for now verbatim).

    Reads the notification and the sender from ``message``: ``claim_message`` has joined both.
    """
    notification = message.notification
    content = notification.content
    return Rendered(
        subject=content.get("subject"),
        body=content["body"],
        html=content.get("html"),
        action_url=content.get("action_url"),
        data=content.get("data"),
        headers={"X-Herald-Message-Id": str(message.id)},
        content=content,
        signing_secret=message.sender.callback_secret,
        metadata={
            "messageId": str(message.id),
            "notificationId": str(notification.id),
            "event": notification.event,
            "serviceName": notification.service_name,
            "reference": notification.reference,
            "targetId": notification.target_id,
            "targetType": notification.target_type,
        },
    )

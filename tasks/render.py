"""Turning a message into what its channel sends."""

from __future__ import annotations

from channels.base import Rendered
from models.message import Message


def render(message: Message) -> Rendered:
    """The rendered content of ``message`` (its notification's content, for now verbatim)."""
    content = message.notification.content
    return Rendered(
        subject=content.get("subject"),
        body=content["body"],
        html=content.get("html"),
        action_url=content.get("action_url"),
        data=content.get("data"),
        headers={"X-Herald-Message-Id": str(message.id)},
        content=content,
    )

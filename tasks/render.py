"""Turning a message into what its channel sends: the notification's own content, or its pinned
template version rendered in the message's language with its attributes."""

from __future__ import annotations

from functools import lru_cache

from channels.base import PermanentError, Rendered
from models.contact import Contact
from models.message import Message
from models.states import FailureReason
from models.template import TemplateVersion
from tasks.templating import TemplateProblem, render_version


@lru_cache(maxsize=1024)
def _version(version_id) -> TemplateVersion:
    """Template versions never change once saved, so each worker loads one once."""
    return TemplateVersion.get_by_id(version_id)


def contact_attributes(contact_id: int) -> dict:
    """What a template sees of the person as ``contact.*``."""
    contact = Contact.get_or_none(Contact.id == contact_id)
    if contact is None:
        return {}
    return {
        "name": contact.name,
        "idnp": contact.idnp,
        "language": contact.preferred_language,
        "attributes": contact.attributes or {},
    }


def render(message: Message) -> Rendered:
    """The rendered content of ``message``; a template that cannot render fails it with
    TEMPLATE_ERROR. Reads the notification and the sender from ``message``: ``claim_message``
    has joined both."""
    notification = message.notification
    content = notification.content
    parts = content
    if notification.template_version_id is not None:
        attributes = {**(notification.attributes or {}), **(message.attributes or {})}
        if message.contact_id is not None:
            attributes["contact"] = contact_attributes(message.contact_id)
        version = _version(notification.template_version_id)
        try:
            parts = render_version(version, message.channel, message.language, attributes)
        except TemplateProblem as problem:
            raise PermanentError(FailureReason.TEMPLATE_ERROR, problem.with_part()) from None
    return Rendered(
        subject=parts.get("subject"),
        body=parts["body"],
        html=parts.get("html"),
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

"""Turning a message into what its channel sends: the notification's own content, or its pinned
template version rendered in the message's language with its attributes."""

from __future__ import annotations

from functools import lru_cache

from channels.base import PermanentError, Rendered
from models.contact import Contact
from models.message import Message
from models.notification import Notification
from models.states import FailureReason
from models.template import TemplateVersion
from templating.engine import TemplateProblem, render_version


@lru_cache(maxsize=1024)
def _version(version_id) -> TemplateVersion:
    """Template versions never change once saved, so each worker loads one once."""
    return TemplateVersion.get_by_id(version_id)


def contact_attributes(contact_id: int) -> dict:
    """What a template sees of the person as ``contact.*``."""
    contact = Contact.get_or_none(Contact.id == contact_id)
    return {} if contact is None else _as_seen(contact)


def contacts_attributes(contact_ids) -> dict[int, dict]:
    """:func:`contact_attributes` of several contacts, read in one query (a deleted one is
    missing)."""
    ids = list(set(contact_ids))
    if not ids:
        return {}
    return {
        contact.id: _as_seen(contact) for contact in Contact.select().where(Contact.id.in_(ids))
    }


def _as_seen(contact: Contact) -> dict:
    return {
        "name": contact.name,
        "idnp": contact.idnp,
        "language": contact.preferred_language,
        "attributes": contact.attributes or {},
    }


def template_parts(
    notification: Notification,
    message: Message | None,
    channel: str,
    language: str | None,
    contacts: dict[int, dict] | None = None,
) -> dict:
    """The notification's template version rendered for ``channel`` in ``language`` (its
    ``subject``, ``body``, ``html`` and ``language``), with the notification's attributes,
    ``message``'s over them and the message's contact as ``contact`` (from ``contacts``, what
    :func:`contacts_attributes` read for a page of messages, when given). Raises
    :class:`TemplateProblem`."""
    attributes = {**(notification.attributes or {}), **((message and message.attributes) or {})}
    if message is not None and message.contact_id is not None:
        if contacts is None:
            attributes["contact"] = contact_attributes(message.contact_id)
        else:
            attributes["contact"] = contacts.get(message.contact_id, {})
    version = _version(notification.template_version_id)
    return render_version(version, channel, language, attributes)


def render(message: Message) -> Rendered:
    """The rendered content of ``message``; a template that cannot render fails it with
    TEMPLATE_ERROR. Reads the notification and the sender from ``message``: ``claim_message``
    has joined both."""
    notification = message.notification
    content = notification.content
    parts = content
    if notification.template_version_id is not None:
        try:
            parts = template_parts(notification, message, message.channel, message.language)
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
        signing_secret=message.sender.webhook_secret,
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

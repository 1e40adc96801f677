"""Turning a message into what its channel sends: the notification's own content, or its pinned
template version rendered in the message's language with its attributes."""

from __future__ import annotations

from functools import lru_cache

from channel_table import EMAIL
from channels.base import PermanentError, Rendered
from channels.unsubscribe import target_for, unsubscribe_mailto, unsubscribe_url
from models.contact import Contact
from models.message import Message
from models.notification import Notification
from models.states import FailureReason
from models.template import TemplateVersion
from templating.engine import Placeholder, TemplateProblem, render_version

#: The template variable holding an email's one-click unsubscribe link ("" where there is none:
#: other channels, critical notifications, no PUBLIC_BASE_URL), and what it shows when a
#: template is checked or previewed.
UNSUBSCRIBE_URL = "unsubscribe_url"
UNSUBSCRIBE_URL_EXAMPLE = Placeholder("https://herald.example.md/unsubscribe/…")


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
    unsubscribe: str | None = None,
    contacts: dict[int, dict] | None = None,
) -> dict:
    """The notification's template version rendered for ``channel`` in ``language`` (its
    ``subject``, ``body``, ``html`` and ``language``), with the notification's attributes,
    ``message``'s over them, the message's contact as ``contact`` (from ``contacts``, what
    :func:`contacts_attributes` read for a page of messages, when given) and ``unsubscribe`` as
    :data:`UNSUBSCRIBE_URL`. Raises :class:`TemplateProblem`."""
    attributes = {**(notification.attributes or {}), **((message and message.attributes) or {})}
    if message is not None and message.contact_id is not None:
        if contacts is None:
            attributes["contact"] = contact_attributes(message.contact_id)
        else:
            attributes["contact"] = contacts.get(message.contact_id, {})
    attributes[UNSUBSCRIBE_URL] = unsubscribe or ""
    version = _version(notification.template_version_id)
    return render_version(version, channel, language, attributes)


def render(message: Message) -> Rendered:
    """The rendered content of ``message``; a template that cannot render fails it with
    TEMPLATE_ERROR. Reads the notification and the sender from ``message``: ``claim_message``
    has joined both."""
    notification = message.notification
    content = notification.content
    parts = content
    link, mailto = unsubscribe_links(message)
    if notification.template_version_id is not None:
        try:
            parts = template_parts(notification, message, message.channel, message.language, link)
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
            "unsubscribeUrl": link,
            "unsubscribeMailto": mailto,
        },
    )


def unsubscribe_links(message: Message) -> tuple[str | None, str | None]:
    """An email's unsubscribe link and ``mailto:`` address (each None where it is not
    configured); neither for another channel or a critical notification, which opt-outs do not
    stop."""
    notification = message.notification
    if message.channel != EMAIL.name or notification.critical:
        return None, None
    target = target_for(message)
    if target is None:
        return None, None
    return unsubscribe_url(target), unsubscribe_mailto(message.id)

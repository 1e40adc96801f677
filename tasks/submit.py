"""Accepting a notification: write it and its messages in one transaction, then enqueue.

The database is the source of truth and the queue only carries work: if enqueueing fails
after the commit, the notification is still accepted and the scheduler's replay job enqueues
its messages later.
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import IntegrityError

from channel_table import CHANNELS_BY_NAME, INAPP
from channels import documents
from models.base import new_id, utcnow
from models.db import bulk_insert, group_commit
from models.idempotency import (
    Idempotency,
    IdempotencyReplay,
    find_idempotency_record,
    record_idempotency,
)
from models.message import Message
from models.notification import Notification
from models.preference import addresses_opted_out
from models.sender import Sender
from models.states import FailureReason, FanoutState, MessageState
from models.template import TemplateVersion, current_version, template_for
from tasks.deliver import enqueue
from tasks.errors import TaskError
from tasks.fanout import start_fanout
from tasks.limits import give_back, take_all_messages
from templating.engine import check_use

#: Makes a submission's response from its notification and messages: (status code, JSON body).
Answer = Callable[[Notification, list[Message]], tuple[int, dict]]


class InvalidSubmission(TaskError):
    """The request is well-formed but cannot be sent as asked; ``errors`` name the fields."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


def submit_notification(
    sender: Sender,
    data: dict,
    idempotency: Idempotency | None = None,
    answer: Answer | None = None,
) -> tuple[Notification, list[Message]]:
    """Store a notification with one message per recipient × channel, then enqueue them.

    ``data`` is the validated request (snake_case keys). With an ``idempotency`` key,
    ``answer(notification, messages)`` makes the response (status code, JSON body) before
    anything is written, so that the idempotency record keeps it in the same transaction (no
    second write). Raises :class:`IdempotencyReplay` when the idempotency key was already used
    by this sender, :class:`InvalidSubmission` when the template cannot serve the request,
    :class:`~tasks.limits.DailyLimitExceeded` when its direct messages do not all fit in the
    sender's daily message limit (nothing is stored; IDNP recipients and broadcasts are
    counted as their fan-out makes their messages).
    """
    if idempotency and (record := find_idempotency_record(sender, idempotency.key)):
        raise IdempotencyReplay(record)
    version = template_version(sender, data) if "template" in data else None
    now = utcnow()
    recipients = data.get("recipients") or []
    people = [
        {"idnp": r["value"], "attributes": r.get("attributes"), "language": r.get("language")}
        for r in recipients
        if r["channel"] is None
    ]
    inbox_broadcast = data["is_broadcast"] and INAPP.name in (data.get("channels") or [])
    fans_out = bool(people) or (data["is_broadcast"] and data.get("channels") != [INAPP.name])
    later = data.get("send_at") if data.get("send_at") and data["send_at"] > now else None
    direct = [r for r in recipients if r["channel"] is not None]
    unwanted = addresses_opted_out(map(_address, direct), data.get("service_name"))
    content, stored = store_attachments(data.get("message") or {})
    notification = Notification(
        id=new_id(),
        sender=sender,
        service_name=data.get("service_name"),
        event=data.get("event"),
        target_id=data.get("target_id"),
        target_type=data.get("target_type"),
        reference=data.get("reference"),
        content=content,
        template_version=version,
        attributes=data.get("attributes") if version else None,
        channels=data.get("channels"),
        channel_policy=data["channel_policy"],
        is_broadcast=data["is_broadcast"],
        inbox_broadcast=inbox_broadcast,
        recipients=people or None,
        fanout_state=FanoutState.PENDING if fans_out else FanoutState.NONE,
        fanout_updated_at=now if fans_out else None,
        language=data.get("language"),
        send_at=data.get("send_at"),
        valid_till=data.get("valid_till"),
        urgent=data["urgent"],
        critical=data.get("critical", False),
        require_action=data["require_action"],
        reminder=data.get("reminder_id"),
        occurrence_at=data.get("occurrence_at"),
        created_at=now,
    )
    messages = _direct_messages(sender, notification, data, unwanted, later or now)
    counted = sum(message.state != MessageState.FAILED for message in messages)
    taken = None
    try:
        taken = take_all_messages(sender, counted)
        response = answer(notification, messages) if answer and idempotency else None
        _insert(sender, notification, messages, idempotency, response)
    except BaseException:
        if taken:
            give_back(taken, counted)
        for document_id in stored:
            documents.delete(document_id)
        raise
    if not later:
        queued = (m for m in messages if m.state == MessageState.QUEUED)
        enqueue(((message.id, message.channel) for message in queued), quiet=True)
    if fans_out:
        start_fanout(notification.id)
    return notification, messages


def _direct_messages(
    sender: Sender, notification: Notification, data: dict, unwanted: set, due_at
) -> list[Message]:
    """A message per direct recipient of ``data``, due at ``due_at`` (scheduled if that is
    later than the notification's creation). One whose address opted out of its channel
    (``unwanted``) is failed with UNSUBSCRIBED, or, for a critical notification, sent and marked
    ``opt_out_bypassed``."""
    now = notification.created_at
    messages = []
    for recipient in data.get("recipients") or []:
        if recipient["channel"] is None:
            continue
        off = _address(recipient) in unwanted
        refused = off and not notification.critical
        due = MessageState.SCHEDULED if due_at > now else MessageState.QUEUED
        message = Message(
            id=new_id(),
            notification=notification,
            sender=sender,
            channel=recipient["channel"],
            destination=recipient["value"],
            language=recipient.get("language") or data.get("language"),
            attributes=recipient.get("attributes"),
            recipient_key=recipient["value"] if recipient["channel"] == INAPP.name else None,
            state=MessageState.FAILED if refused else due,
            failure_reason=FailureReason.UNSUBSCRIBED if refused else None,
            due_at=None if refused else due_at,
            created_at=now,
            updated_at=now,
            opt_out_bypassed=True if off and notification.critical else None,
        )
        messages.append(message)
    return messages


def _address(recipient: dict) -> tuple[str, str]:
    """A direct recipient as (recipient type, address), the way opt-outs are looked up."""
    return CHANNELS_BY_NAME[recipient["channel"]].recipient_type, recipient["value"]


def store_attachments(content: dict) -> tuple[dict, list[str]]:
    """Put each attachment in the document store once (however many recipients there are).

    Returns the content to keep in the database, whose attachments are references
    (``document_id``, ``filename``, ``content_type``, ``size``) rather than bytes, and the ids
    stored, so that a failed submission can remove them.
    """
    attachments = content.get("attachments")
    if not attachments:
        return content, []
    stored: list[str] = []
    references = []
    try:
        for attachment in attachments:
            data = attachment["content"]
            document_id = documents.put(data, attachment["content_type"], attachment["filename"])
            stored.append(document_id)
            references.append(
                {
                    "document_id": document_id,
                    "filename": attachment["filename"],
                    "content_type": attachment["content_type"],
                    "size": len(data),
                }
            )
    except BaseException:
        for document_id in stored:
            documents.delete(document_id)
        raise
    return content | {"attachments": references}, stored


def _insert(
    sender: Sender,
    notification: Notification,
    messages: list[Message],
    idempotency: Idempotency | None,
    response: tuple[int, dict] | None = None,
) -> None:
    """Write the notification, its messages and its idempotency record in one transaction,
    committed with those of the process's other requests (:data:`~models.db.group_commit`: one
    SQLite write lock and one commit for all the requests waiting, instead of each thread
    polling for the lock)."""

    def write() -> None:
        bulk_insert(Notification, [notification.__data__])
        bulk_insert(Message, [message.__data__ for message in messages])
        if idempotency:
            record_idempotency(sender, idempotency, notification, response)

    try:
        group_commit.run(write)
    except IntegrityError:
        record = idempotency and find_idempotency_record(sender, idempotency.key)
        if record:  # a concurrent request with the same key won the race
            raise IdempotencyReplay(record) from None
        raise


def template_version(sender: Sender, data: dict) -> TemplateVersion:
    """The current version of the requested template, checked against the recipients."""
    template = template_for(sender, data["template"])
    if template is None:
        raise InvalidSubmission({"template": ["No such template."]})
    version = current_version(template)
    errors = check_use(
        version, data["recipients"], data.get("attributes") or {}, data.get("language")
    )
    if errors:
        raise InvalidSubmission(errors)
    return version

"""Messages (one per recipient × channel) and their delivery attempts, with the state guards
that keep delivery exactly-once per claim: every transition is one guarded UPDATE."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    Field,
    ForeignKeyField,
    IntegerField,
    TextField,
    UUIDField,
)

from models.base import BaseModel, JSONField, UTCDateTimeField, new_id, utcnow
from models.cache import ExpiringCache
from models.contact import Contact
from models.db import group_commit, run_sql, tuple_rows, write_transaction
from models.notification import Notification
from models.reminder import ACTIVE, Reminder
from models.sender import Sender, visible_to
from models.states import CLAIMABLE, AttemptOutcome, FailureReason, MessageState
from models.template import Template, TemplateVersion

logger = logging.getLogger(__name__)

#: A delayed retry job may arrive this much before its ``due_at`` (clock skew between hosts).
CLAIM_EARLY_TOLERANCE = timedelta(seconds=2)


class Message(BaseModel):
    """One recipient on one channel.

    ``due_at`` is when the next step is due, read by state: ``queued`` → when it was queued,
    ``retrying`` → the next attempt, ``sending`` → when the worker's lease expires,
    ``scheduled`` → the send time. One index on (state, due_at) serves every recovery query.
    """

    id = UUIDField(primary_key=True, default=new_id)
    notification = ForeignKeyField(Notification, backref="messages", on_delete="CASCADE")
    notification_id: UUID  # peewee's accessor for the key's raw value
    sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
    sender_id: int  # peewee's accessor for the key's raw value
    channel = CharField(max_length=20)
    destination = TextField()
    language = CharField(max_length=16, null=True)
    attributes = JSONField(null=True, help_text="this recipient's template attributes")
    contact = ForeignKeyField(Contact, null=True, on_delete="SET NULL")
    contact_id: int | None  # peewee's accessor for the key's raw value
    fallback_rank = IntegerField(null=True, help_text="place in a fallback chain (0: first)")
    #: Sent although the person opted out of its channel: the notification was critical.
    opt_out_bypassed = BooleanField(null=True, help_text="true: sent despite an opt-out")
    recipient_key = CharField(max_length=200, null=True, help_text="IDNP or in-app user id")
    state = CharField(max_length=16, default=MessageState.QUEUED)
    failure_reason = CharField(max_length=32, null=True)
    attempts = IntegerField(default=0)
    resends = IntegerField(default=0, help_text="automatic resends after RETRIES_EXHAUSTED")
    due_at = UTCDateTimeField(null=True)
    last_error = TextField(null=True)
    provider_id = TextField(null=True)
    details = JSONField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    sent_at = UTCDateTimeField(null=True)
    delivered_at = UTCDateTimeField(null=True)
    read_at = UTCDateTimeField(null=True)
    subject = TextField(null=True, help_text="as rendered when sent; gone after retention")
    body = TextField(null=True, help_text="as rendered when sent; gone after retention")

    class Meta:
        indexes = (
            (("state", "due_at"), False),
            (("created_at",), False),
            (("state", "channel", "created_at"), False),
            (("notification", "sender"), False),
            (("sender", "created_at"), False),
            (("recipient_key", "created_at"), False),
            (("recipient_key", "channel", "state"), False),
            (("channel", "provider_id"), False),  # receipts find their message by it
        )


class Attempt(BaseModel):
    """One try at handing a message to its provider, and how it ended."""

    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    message = ForeignKeyField(Message, backref="attempt_rows", on_delete="CASCADE", index=False)
    number = IntegerField()
    started_at = UTCDateTimeField()
    finished_at = UTCDateTimeField()
    outcome = CharField(max_length=16)
    error = TextField(null=True)
    provider_id = TextField(null=True)

    class Meta:
        indexes = ((("message", "number"), True),)


def message_for(sender: Sender, message_id) -> Message | None:
    """The message with this id if ``sender`` may see it (its own, or any for an admin)."""
    return visible_to(sender, Message.select().where(Message.id == message_id), Message).first()


def notifications_for_recipient(sender: Sender, recipient_key: str):
    """Notifications with a message for this IDNP or user id that ``sender`` may see, newest
    first (a query, for paginating)."""
    sent_to = Message.select(Message.notification).where(Message.recipient_key == recipient_key)
    query = Notification.select().where(Notification.id.in_(sent_to))
    return visible_to(sender, query, Notification).order_by(Notification.created_at.desc())


def template_in_use(template: Template) -> bool:
    """Whether scheduled (not yet sent) notifications or live reminders still use it."""
    scheduled = (
        Message.select(Message.id)
        .join(Notification)
        .join(TemplateVersion)
        .where((TemplateVersion.template == template) & (Message.state == MessageState.SCHEDULED))
    )
    reminded = Reminder.select(Reminder.id).where(
        (Reminder.template == template) & (Reminder.state == ACTIVE)
    )
    return scheduled.exists() or reminded.exists()


def claim_message(message_id, lease_seconds: int, now: datetime | None = None) -> Message | None:
    """Move a message from ``queued``/``retrying`` to ``sending`` with a lease, atomically.

    Returns the claimed message (its notification and its sender's callback URL and secret
    attached), or None when there is nothing to claim: already sent, claimed by another worker,
    cancelled, or a retry not yet due. One guarded ``UPDATE … RETURNING``, committed with the
    other threads' claims (:data:`group_commit`).
    """
    now = now or utcnow()
    params = (
        MessageState.SENDING,
        _stored(now + timedelta(seconds=lease_seconds)),
        _stored(now),
        Message.id.db_value(message_id),
        *CLAIMABLE,
        _stored(now + CLAIM_EARLY_TOLERANCE),
    )
    rows = group_commit.run(lambda: run_sql(_CLAIM, params).fetchall())
    return _with_notification(rows[0]) if rows else None


def peek_message(message_id, now: datetime | None = None) -> Message | None:
    """The message :func:`claim_message` would claim now, read without claiming it, as that
    returns it (``attempts`` counting the attempt to come), or None. For a channel whose send is
    only its outcome's write (in-app): ``finish_attempt(…, claimed=False)`` then claims and
    records in one statement, fenced on the attempt count read here."""
    now = now or utcnow()
    params = (Message.id.db_value(message_id), *CLAIMABLE, _stored(now + CLAIM_EARLY_TOLERANCE))
    rows = run_sql(_PEEK, params).fetchall()
    if not rows:
        return None
    message = _with_notification(rows[0])
    message.attempts += 1
    return message


def _with_notification(row) -> Message:
    """The message of a row of all its columns, its notification and sender attached. The row
    goes into the instance's field data as it was read, which is what setting each field does
    (a third of the cost of a claim was the 26 field accessors)."""
    message = Message(__no_default__=1)
    message.__data__.update(zip(_NAMES, map(_python, _FIELDS, row), strict=True))
    notification = notification_with_sender(message.notification_id)
    message.notification, message.sender = notification, notification.sender
    return message


_FIELDS = Message._meta.sorted_fields
_NAMES = [field.name for field in _FIELDS]
#: A datetime as the database stores it.
_stored = Message.due_at.db_value
_CLAIM = (
    'UPDATE "message" SET "state" = ?, "attempts" = "attempts" + 1, "due_at" = ?, '
    '"updated_at" = ? WHERE "id" = ? AND "state" IN ({}) AND ("due_at" IS NULL OR "due_at" <= ?) '
    "RETURNING {}".format(
        ", ".join("?" * len(CLAIMABLE)), ", ".join(f'"{f.column_name}"' for f in _FIELDS)
    )
)


_PEEK = 'SELECT {} FROM "message" WHERE "id" = ? AND "state" IN ({}) AND ({})'.format(
    ", ".join(f'"{f.column_name}"' for f in _FIELDS),
    ", ".join("?" * len(CLAIMABLE)),
    '"due_at" IS NULL OR "due_at" <= ?',
)


def _python(field, value):
    return None if value is None else field.python_value(value)


#: Notifications (content, template, validity) never change while their messages are sent;
#: each worker process keeps the ones it reads, with their sender's callback settings, for
#: SENDER_CACHE_SECONDS.
_notifications = ExpiringCache(max_entries=10_000)


def notification_with_sender(notification_id) -> Notification:
    """The notification, its sender (id, callback URL, callback and webhook secrets) attached,
    from this process's short-lived cache or the database."""
    notification = _notifications.get(notification_id)
    if notification is not None:
        return notification
    notification = (
        Notification.select(
            Notification,
            Sender.id,
            Sender.callback_url,
            Sender.callback_secret,
            Sender.webhook_secret,
        )
        .join(Sender)
        .where(Notification.id == notification_id)
        .get()
    )
    _notifications.put(notification_id, notification)
    return notification


def forget_notifications() -> None:
    """Empty this process's notification cache."""
    _notifications.clear()


def finish_attempt(
    message: Message,
    outcome: AttemptOutcome,
    *,
    started_at: datetime,
    state: MessageState,
    failure_reason: FailureReason | None = None,
    error: str | None = None,
    provider_id: str | None = None,
    details: dict | None = None,
    due_at: datetime | None = None,
    rendered: tuple[str | None, str | None] | None = None,
    also: Callable[[], object] | None = None,
    claimed: bool = True,
) -> bool:
    """Record the attempt ``message.attempts`` and move the message out of ``sending``; or, not
    ``claimed`` (a message from :func:`peek_message`), out of ``queued``/``retrying`` if it is
    still there with the attempt count read, claiming and recording it in one statement.

    The update is fenced by state and attempt number, so a worker whose lease expired and whose
    message was claimed again cannot overwrite the newer attempt. Returns False when fenced out.
    ``also`` is plain SQL work committed with the outcome when it is recorded (the callback it
    owes). Committed with the other threads' outcomes (:data:`group_commit`).

    An outcome that cannot be stored as given (text the database cannot encode, such as a lone
    surrogate or a NUL, or a batch-mate's interrupt) is stored again without the rendered text
    and details, its error and provider id made safe and the error noting why, so that the
    message leaves ``sending`` all the same.
    """
    record = functools.partial(
        _recording,
        message,
        outcome,
        started_at=started_at,
        state=state,
        failure_reason=failure_reason,
        due_at=due_at,
        also=also,
        claimed=claimed,
    )
    try:
        return group_commit.run(
            record(error=error, provider_id=provider_id, details=details, rendered=rendered)
        )
    except Exception as failure:  # a boundary: left in sending, the message would go again
        logger.exception("message %s: %s outcome not storable as given", message.id, outcome)
        note = f"outcome stored without its rendered text and details: {failure}"[:500]
        return group_commit.run(
            record(
                error=storable(f"{error}; {note}" if error else note),
                provider_id=storable(provider_id),
                details=None,
                rendered=None,
            )
        )


def storable(text: str | None) -> str | None:
    """``text`` as every database can store it: what UTF-8 cannot encode (lone surrogates) and
    NUL characters backslash-escaped."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _recording(
    message: Message,
    outcome: AttemptOutcome,
    *,
    started_at: datetime,
    state: MessageState,
    failure_reason: FailureReason | None,
    error: str | None,
    provider_id: str | None,
    details: dict | None,
    due_at: datetime | None,
    rendered: tuple[str | None, str | None] | None,
    also: Callable[[], object] | None,
    claimed: bool,
) -> Callable[[], bool]:
    """The group-commit work that records an attempt (see :func:`finish_attempt`)."""
    now = utcnow()
    changes: dict[Field, object] = {
        Message.state: state,
        Message.failure_reason: failure_reason,
        Message.last_error: error,
        Message.due_at: due_at,
        Message.updated_at: now,
    }
    if outcome == AttemptOutcome.SENT:
        changes[Message.sent_at] = now
        changes[Message.provider_id] = provider_id
        changes[Message.details] = details or None
    if rendered is not None:
        changes[Message.subject], changes[Message.body] = rendered
    if claimed:
        fence, fenced = '"state" = ?', [MessageState.SENDING, message.attempts]
    else:  # the claim's guard, and the attempt it would have counted
        changes[Message.attempts] = message.attempts
        fence, fenced = _UNCLAIMED, [*CLAIMABLE, message.attempts - 1]
    update = 'UPDATE "message" SET {} WHERE "id" = ? AND {} AND "attempts" = ?'.format(
        ", ".join(f'"{field.column_name}" = ?' for field in changes), fence
    )
    update_params = [field.db_value(value) for field, value in changes.items()]
    message_id = Message.id.db_value(message.id)
    update_params += [message_id, *fenced]
    attempt = (
        message_id,
        message.attempts,
        _stored(started_at),
        _stored(now),
        outcome,
        error,
        provider_id,
    )

    def record() -> bool:
        if not run_sql(update, update_params).rowcount:
            return False
        run_sql(_ATTEMPT, attempt)
        if also is not None:
            also()
        return True

    return record


_UNCLAIMED = '"state" IN ({})'.format(", ".join("?" * len(CLAIMABLE)))
_ATTEMPT = (
    'INSERT INTO "attempt" ("message_id", "number", "started_at", "finished_at", "outcome", '
    '"error", "provider_id") VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING'
)


def release_stuck(now: datetime, after_seconds: int, limit: int) -> list[tuple[str, str]]:
    """Put stuck messages back to ``queued`` and return their (id, channel) for re-enqueueing.

    Stuck means: ``queued`` or ``retrying`` and overdue by ``after_seconds`` (the job was lost,
    or the broker was down when it should have been enqueued), or ``sending`` past its lease
    (the worker died mid-send).
    """
    overdue = now - timedelta(seconds=after_seconds)
    stuck = (Message.state.in_(CLAIMABLE) & (Message.due_at < overdue)) | (
        (Message.state == MessageState.SENDING) & (Message.due_at < now)
    )
    return requeue(stuck, now, limit)


def requeue(where, now: datetime, limit: int, **changes) -> list[tuple[str, str]]:
    """Move up to ``limit`` messages matching ``where`` (oldest due first) to ``queued``, guarded
    by ``where`` again in the UPDATE; return their (id, channel) for enqueueing."""
    rows = tuple_rows(
        Message.select(Message.id, Message.channel)
        .where(where)
        .order_by(Message.due_at)
        .limit(limit)
    )
    if not rows:
        return []
    with write_transaction():
        (
            Message.update(state=MessageState.QUEUED, due_at=now, updated_at=now, **changes)
            .where(Message.id.in_([row[0] for row in rows]) & where)
            .execute()
        )
    return [(str(message_id), channel) for message_id, channel in rows]


def unclaim(message: Message, state: MessageState, **changes) -> bool:
    """Hand a just-claimed message back without an attempt: to ``scheduled`` (quiet hours,
    with ``due_at``) or to a final state (expired). Fenced like :func:`finish_attempt`."""
    return bool(
        Message.update(state=state, attempts=Message.attempts - 1, updated_at=utcnow(), **changes)
        .where(
            (Message.id == message.id)
            & (Message.state == MessageState.SENDING)
            & (Message.attempts == message.attempts)
        )
        .execute()
    )

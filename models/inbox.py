"""The in-app inbox: what one user sees — their own in-app messages and the in-app broadcasts
of the senders their token reaches — and the per-user read/delete state of broadcasts.

An in-app broadcast is ONE notification row (``inbox_broadcast``) however many users see it;
a :class:`BroadcastState` row exists only for a user who read or deleted it. Everything is
filtered at query time: soft-deleted notifications, those past ``valid_till`` and those purged
after retention are hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from peewee import JOIN, AutoField, CharField, ForeignKeyField, Value, fn

from channel_table import INAPP
from models.base import BaseModel, UTCDateTimeField, utcnow
from models.db import dict_rows, is_sqlite
from models.message import Message
from models.notification import Notification
from models.states import MessageState

#: States of a message its user can see.
SHOWN = (MessageState.UNREAD, MessageState.READ)


class BroadcastState(BaseModel):
    """One user's state of one in-app broadcast: ``read`` or ``deleted`` (no row: unread)."""

    id = AutoField()  # the key peewee adds implicitly, declared to be typed
    notification = ForeignKeyField(Notification, on_delete="CASCADE")
    recipient_key = CharField(max_length=200, help_text="the user id")
    state = CharField(max_length=10)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("recipient_key", "notification"), True),)


@dataclass(frozen=True)
class Reader:
    """Who is reading: a user id, and the sender whose notifications they may see (None: all)."""

    user: str
    sender_id: int | None = None


def _live(reader: Reader, now: datetime, deleted_too: bool = False):
    """Notifications still shown: not purged, not soft-deleted, due (``send_at`` reached: an
    in-app broadcast sent later is hidden until then), not expired, within the reader's scope."""
    live = (
        Notification.purged_at.is_null()
        & (Notification.valid_till.is_null() | (Notification.valid_till > now))
        & (Notification.send_at.is_null() | (Notification.send_at <= now))
    )
    if not deleted_too:
        live &= Notification.deleted_at.is_null()
    if reader.sender_id is not None:
        live &= Notification.sender == reader.sender_id
    return live


def _own_messages(reader: Reader, now: datetime, unread_only: bool, deleted_too: bool = False):
    states = (MessageState.UNREAD,) if unread_only else SHOWN
    return (
        Message.select(
            Message.id.alias("item_id"),
            Message.notification.alias("notification_id"),
            Message.state.alias("state"),
            Message.created_at.alias("created_at"),
            Message.read_at.alias("read_at"),
        )
        .join(Notification)
        .where(
            (Message.recipient_key == reader.user)
            & (Message.channel == INAPP.name)
            & Message.state.in_(states)
            & _live(reader, now, deleted_too)
        )
    )


def _broadcasts(reader: Reader, now: datetime, unread_only: bool, deleted_too: bool = False):
    own = (BroadcastState.notification == Notification.id) & (
        BroadcastState.recipient_key == reader.user
    )
    seen = (
        BroadcastState.id.is_null()
        if unread_only
        else (BroadcastState.id.is_null() | (BroadcastState.state == MessageState.READ))
    )
    return (
        Notification.select(
            Notification.id.alias("item_id"),
            Notification.id.alias("notification_id"),
            fn.COALESCE(BroadcastState.state, Value(MessageState.UNREAD.value)).alias("state"),
            Notification.created_at.alias("created_at"),
            BroadcastState.updated_at.alias("read_at"),
        )
        .join(BroadcastState, JOIN.LEFT_OUTER, on=own)
        .where(Notification.inbox_broadcast & _live(reader, now, deleted_too) & seen)
    )


def inbox_query(reader: Reader, unread_only: bool = False, now: datetime | None = None):
    """The reader's inbox, newest first, as rows of (item_id, notification_id, state,
    created_at, read_at): a query to paginate."""
    now = now or utcnow()
    union = _own_messages(reader, now, unread_only).union_all(_broadcasts(reader, now, unread_only))
    return union.order_by(union.c.created_at.desc(), union.c.item_id.desc()).dicts()


def inbox_counts(reader: Reader, now: datetime | None = None) -> dict[str, int]:
    """``{"unread", "total"}`` for the reader, counted by the indexes on (recipient_key,
    channel, state) for messages and (inbox_broadcast, created_at) for broadcasts."""
    now = now or utcnow()
    return {
        "unread": _own_messages(reader, now, True).count() + _broadcasts(reader, now, True).count(),
        "total": _own_messages(reader, now, False).count()
        + _broadcasts(reader, now, False).count(),
    }


def inbox_item(
    reader: Reader, item_id, now: datetime | None = None, deleted_too: bool = False
) -> dict | None:
    """One item of the reader's inbox by its id (a message or a broadcast), or None; with
    ``deleted_too``, also an item whose notification its sender deleted (``deleted`` says)."""
    now = now or utcnow()
    queries = (
        (Message, _own_messages(reader, now, False, deleted_too)),
        (Notification, _broadcasts(reader, now, False, deleted_too)),
    )
    for model, query in queries:
        row = (
            query.select_extend(Notification.deleted_at.is_null(False).alias("deleted"))
            .where(model.id == item_id)
            .dicts()
            .first()
        )
        if row:
            return row
    return None


def notification_item(reader: Reader, notification_id, now: datetime | None = None) -> dict | None:
    """The reader's item of a notification — their in-app message of it, or the broadcast —
    as :func:`inbox_item` gives it, one they deleted included (``state`` says); None when the
    reader has none (not addressed to them, out of their scope, expired, not yet due)."""
    now = now or utcnow()
    message = (
        Message.select(
            Message.id.alias("item_id"),
            Message.notification.alias("notification_id"),
            Message.state.alias("state"),
        )
        .join(Notification)
        .where(
            (Message.notification == notification_id)
            & (Message.recipient_key == reader.user)
            & (Message.channel == INAPP.name)
            & Message.state.in_((*SHOWN, MessageState.DELETED))
            & _live(reader, now)
        )
        .dicts()
        .first()
    )
    if message:
        return message
    own = (BroadcastState.notification == Notification.id) & (
        BroadcastState.recipient_key == reader.user
    )
    return (
        Notification.select(
            Notification.id.alias("item_id"),
            Notification.id.alias("notification_id"),
            fn.COALESCE(BroadcastState.state, Value(MessageState.UNREAD.value)).alias("state"),
        )
        .join(BroadcastState, JOIN.LEFT_OUTER, on=own)
        .where(
            (Notification.id == notification_id) & Notification.inbox_broadcast & _live(reader, now)
        )
        .dicts()
        .first()
    )


def set_item_state(reader: Reader, item: dict, state: str, now: datetime | None = None) -> None:
    """Mark an inbox item ``read`` or ``deleted`` for the reader: a guarded UPDATE of the
    message, or this user's state row of a broadcast."""
    now = now or utcnow()
    if item["item_id"] == item["notification_id"]:
        _set_broadcast_state(reader, item["notification_id"], state, now)
        return
    changes = {Message.state: state, Message.updated_at: now}
    if state == MessageState.READ:
        changes[Message.read_at] = fn.COALESCE(Message.read_at, now)
    (
        Message.update(changes)
        .where(
            (Message.id == item["item_id"])
            & (Message.recipient_key == reader.user)
            & Message.state.in_(SHOWN)
        )
        .execute()
    )


def _set_broadcast_state(reader: Reader, notification_id, state: str, now: datetime) -> None:
    """Upsert the reader's state row of a broadcast (a ``deleted`` one stays deleted), unless
    the broadcast was purged meanwhile: the purge deletes these rows, and one written after it
    would keep who read it. On PostgreSQL the broadcast's row is share-locked, so a purge under
    way is waited for."""
    unpurged = Notification.select(
        Notification.id,
        Value(reader.user),
        Value(state),
        Value(BroadcastState.updated_at.db_value(now)),
    ).where((Notification.id == notification_id) & Notification.purged_at.is_null())
    if not is_sqlite():
        # peewee takes the lock clause as text too; its stubs type the argument as a bool only
        unpurged = unpurged.for_update("FOR SHARE")  # type: ignore[arg-type]
    columns = [
        BroadcastState.notification,
        BroadcastState.recipient_key,
        BroadcastState.state,
        BroadcastState.updated_at,
    ]
    (
        BroadcastState.insert_from(unpurged, columns)
        .on_conflict(
            conflict_target=[BroadcastState.recipient_key, BroadcastState.notification],
            update={BroadcastState.state: state, BroadcastState.updated_at: now},
            where=(BroadcastState.state != MessageState.DELETED),
        )
        .execute()
    )


def forget_readers(notification_ids: list) -> int:
    """Delete the per-user read/delete states of these broadcasts (who read them); for the
    purge, inside its transaction. How many."""
    return (
        BroadcastState.delete().where(BroadcastState.notification.in_(notification_ids)).execute()
    )


def readers_of(notification_id) -> list[dict]:
    """Who read or deleted a notification's in-app copies, and when: its messages' users and
    the per-user state rows of a broadcast (for the sender and auditors)."""
    messages = dict_rows(
        Message.select(
            Message.recipient_key.alias("user"),
            Message.state.alias("state"),
            Message.read_at.alias("read_at"),
            Message.updated_at.alias("at"),
        ).where(
            (Message.notification == notification_id)
            & (Message.channel == INAPP.name)
            & Message.state.in_((MessageState.READ, MessageState.DELETED))
        )
    )
    states = dict_rows(
        BroadcastState.select(
            BroadcastState.recipient_key.alias("user"),
            BroadcastState.state.alias("state"),
            BroadcastState.updated_at.alias("at"),
        ).where(BroadcastState.notification == notification_id)
    )
    rows = [
        {"user": r["user"], "state": r["state"], "at": r["read_at"] or r["at"]} for r in messages
    ]
    return sorted([*rows, *states], key=lambda row: (row["at"], row["user"] or ""))

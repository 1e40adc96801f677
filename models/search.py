"""History search: one compiler from a tree of (field, operator, values) conditions to one
peewee query over messages or notifications.

The Mambu-style ``filterConstraints``, the NotifyBC-style ``where`` filter, the Hackney-style
query parameters and the CSV export all parse into this tree (``models/search_syntax.py``) and
compile here, so every surface filters the same way, in SQL, on indexed columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import reduce
from operator import and_, or_

from peewee import SQL, Case, ColumnBase, Expression, Field

from channel_table import CHANNELS
from models.base import utcnow
from models.message import Message
from models.notification import Notification
from models.privacy import visible_destinations
from models.sender import Sender, visible_to
from models.states import FINAL, FailureReason, MessageState
from settings import settings


class FieldType(StrEnum):
    KEY = "KEY"
    STRING = "STRING"
    ENUM = "ENUM"
    DATE = "DATE"
    NUMBER = "NUMBER"


#: Channel names as searched (lower case) → channel: Herald's names and the seed dialects' (Mambu's
#: TYPE values, Hackney's notificationType, NotifyBC's channel), from the channel table.
CHANNEL_NAMES = {alias: row.name for row in CHANNELS for alias in sorted(row.search_names)}


@dataclass(frozen=True)
class SearchField:
    """A searchable field: its Mambu ``filterSelection`` name, its camelCase name (NotifyBC
    filters, query parameters, result items), its column and its type. A ``personal`` field
    (the destination) matches only while retained, and only where the caller may see it."""

    name: str
    alias: str
    column: Field
    type: FieldType
    choices: dict[str, str] = field(default_factory=dict, hash=False)
    admin_only: bool = False
    personal: bool = False

    @property
    def model(self):
        return self.column.model


def _choices(values) -> dict[str, str]:
    return {str(value).lower(): str(value) for value in values}


FIELDS: dict[str, SearchField] = {
    f.name: f
    for f in (
        SearchField("ENCODED_KEY", "id", Message.id, FieldType.KEY),
        SearchField("NOTIFICATION_KEY", "notificationId", Message.notification, FieldType.KEY),
        SearchField("SENDER_KEY", "senderId", Message.sender, FieldType.KEY, admin_only=True),
        SearchField("RECIPIENT_USER_KEY", "recipient", Message.recipient_key, FieldType.STRING),
        SearchField(
            "DESTINATION", "destination", Message.destination, FieldType.STRING, personal=True
        ),
        SearchField("CREATION_DATE", "createdAt", Message.created_at, FieldType.DATE),
        SearchField("SENT_DATE", "sentAt", Message.sent_at, FieldType.DATE),
        SearchField("STATE", "state", Message.state, FieldType.ENUM, _choices(MessageState)),
        SearchField(
            "FAILURE_REASON",
            "failureReason",
            Message.failure_reason,
            FieldType.ENUM,
            _choices(FailureReason),
        ),
        SearchField("TYPE", "channel", Message.channel, FieldType.ENUM, CHANNEL_NAMES),
        SearchField("ATTEMPTS", "attempts", Message.attempts, FieldType.NUMBER),
        SearchField("EVENT", "event", Notification.event, FieldType.STRING),
        SearchField("SERVICE_NAME", "serviceName", Notification.service_name, FieldType.STRING),
        SearchField("TARGET_ID", "targetId", Notification.target_id, FieldType.STRING),
        SearchField("TARGET_TYPE", "targetType", Notification.target_type, FieldType.STRING),
        SearchField("REFERENCE", "reference", Notification.reference, FieldType.STRING),
    )
}
#: The same fields by camelCase name (``notificationType`` is Hackney's name for the channel).
BY_ALIAS = {f.alias: f for f in FIELDS.values()} | {"notificationType": FIELDS["TYPE"]}


class Op(StrEnum):
    EQ = "eq"
    NEQ = "neq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NIN = "nin"
    BETWEEN = "between"
    PREFIX = "prefix"
    LIKE = "like"
    EMPTY = "empty"
    NOT_EMPTY = "not_empty"


@dataclass(frozen=True)
class Condition:
    """``field op values``, with values already parsed to the field's type."""

    field: SearchField
    op: Op
    values: tuple = ()


@dataclass(frozen=True)
class All:
    """Every part holds (an empty ``All`` holds for every row)."""

    parts: tuple = ()


@dataclass(frozen=True)
class Any:
    """At least one part holds."""

    parts: tuple = ()


Node = Condition | All | Any


def retention_cutoff(now: datetime | None = None) -> datetime:
    """Messages that became final before this have lost their destination and bodies."""
    return (now or utcnow()) - timedelta(days=settings.MESSAGE_RETENTION_DAYS)


def is_retained(message: Message, now: datetime | None = None) -> bool:
    """Whether ``message`` still shows its details: it is not final yet, or became final
    (its last change) within MESSAGE_RETENTION_DAYS — the purge's rule, per message."""
    return message.state not in FINAL or message.updated_at >= retention_cutoff(now)


def _retained(now: datetime) -> Expression:
    """:func:`is_retained` in SQL."""
    return Message.state.not_in(list(FINAL)) | (Message.updated_at >= retention_cutoff(now))


def _empty(condition: Condition) -> Expression:
    column = condition.field.column
    if condition.field.type in (FieldType.STRING, FieldType.ENUM):
        return column.is_null() | (column == "")
    return column.is_null()


def _compare(condition: Condition) -> Expression:
    column, values = condition.field.column, condition.values
    match condition.op:
        case Op.EQ:
            return column.is_null() if values[0] is None else column == values[0]
        case Op.NEQ:
            if values[0] is None:
                return column.is_null(False)
            return (column != values[0]) | column.is_null()
        case Op.GT:
            return column > values[0]
        case Op.GTE:
            return column >= values[0]
        case Op.LT:
            return column < values[0]
        case Op.LTE:
            return column <= values[0]
        case Op.IN:
            return column.in_(list(values))
        case Op.NIN:
            return column.not_in(list(values)) | column.is_null()
        case Op.BETWEEN:
            return (column >= values[0]) & (column <= values[1])
        case Op.PREFIX:
            return column.startswith(values[0])
        case Op.LIKE:
            return column ** values[0]
        case Op.EMPTY:
            return _empty(condition)
        case Op.NOT_EMPTY:
            return ~_empty(condition)
    raise ValueError(f"unknown operator {condition.op!r}")


def _leaf(condition: Condition, target, now: datetime, visible: Expression | None) -> Expression:
    expression = _compare(condition)
    if condition.field.personal:
        retained = _retained(now)
        gone = condition.op in (Op.EMPTY, Op.NIN) or (condition.op == Op.NEQ)
        expression = (expression | ~retained) if gone else (expression & retained)
        if visible is not None:
            expression = expression & visible
    if condition.field.model is Message and target is Notification:
        return Notification.id.in_(Message.select(Message.notification).where(expression))
    return expression


def compile_node(
    node: Node,
    target=Message,
    now: datetime | None = None,
    visible: Expression | None = None,
) -> ColumnBase | None:
    """The SQL condition for ``node`` on rows of ``target`` (Message, joined to its
    Notification, or Notification); None when it holds for every row. A condition on a
    personal field (the destination) holds only where ``visible`` does (the messages whose
    destination the caller may see: ``models.privacy.visible_destinations``; None: all)."""
    now = now or utcnow()
    if isinstance(node, Condition):
        return _leaf(node, target, now, visible)
    parts = [compile_node(part, target, now, visible) for part in node.parts]
    if isinstance(node, All):
        parts = [part for part in parts if part is not None]
        return reduce(and_, parts) if parts else None
    if any(part is None for part in parts):
        return None
    return reduce(or_, parts) if parts else SQL("1 = 0")


@dataclass(frozen=True)
class Order:
    """Sort by ``field``, newest or largest first when ``descending``."""

    field: SearchField
    descending: bool = True


DEFAULT_ORDER = Order(FIELDS["CREATION_DATE"], descending=True)


def _ordering(order: Order, tiebreak: Field, visible: Expression | None = None) -> list:
    """ORDER BY ``order`` then ``tiebreak``; a personal field sorts the rows it may not show
    as if empty, so their order says nothing of what they hold."""
    column: ColumnBase = order.field.column
    if order.field.personal and visible is not None:
        column = Case(None, ((visible, column),), None)
    if order.descending:
        return [column.desc(), tiebreak.desc()]
    return [column.asc(), tiebreak.asc()]


def search_messages(
    sender: Sender, node: Node, order: Order = DEFAULT_ORDER, now: datetime | None = None
):
    """The messages ``sender`` may see that match ``node``, with their notification's labels,
    in ``order`` (a query, for paginating)."""
    query = Message.select(
        Message,
        Notification.id,
        Notification.event,
        Notification.service_name,
        Notification.target_id,
        Notification.target_type,
        Notification.reference,
    ).join(Notification)
    visible = visible_destinations(sender)
    condition = compile_node(node, Message, now, visible)
    if condition is not None:
        query = query.where(condition)
    ordering = _ordering(order, Message.id, visible)
    return visible_to(sender, query, Message).order_by(*ordering)


def search_notifications(
    sender: Sender, node: Node, order: Order = DEFAULT_ORDER, now: datetime | None = None
):
    """The notifications ``sender`` may see (not deleted) matching ``node``; a condition on a
    message field means "has a message that …" (a query, for paginating)."""
    if order.field.model is not Notification:
        order = Order(NOTIFICATION_CREATED, order.descending)
    query = Notification.select().where(Notification.deleted_at.is_null())
    condition = compile_node(node, Notification, now, visible_destinations(sender))
    if condition is not None:
        query = query.where(condition)
    return visible_to(sender, query, Notification).order_by(*_ordering(order, Notification.id))


#: Notifications sort by their own creation time where a message field is asked for.
NOTIFICATION_CREATED = SearchField(
    "CREATION_DATE", "createdAt", Notification.created_at, FieldType.DATE
)


#: The message columns a search result (and so the export) shows, with those that decide
#: what it may show (``is_retained``, ``models.privacy``); the export reads only these.
RESULT_COLUMNS = (
    Message.id,
    Message.notification,
    Message.channel,
    Message.destination,
    Message.recipient_key,
    Message.state,
    Message.failure_reason,
    Message.attempts,
    Message.created_at,
    Message.updated_at,
    Message.sent_at,
    Message.delivered_at,
    Message.read_at,
    Message.subject,
    Message.body,
)
#: The notification's columns a search result shows with each message.
RESULT_LABELS = (
    Notification.id,
    Notification.event,
    Notification.service_name,
    Notification.reference,
)


def iterate_messages(sender: Sender, node: Node, batch: int = 1000) -> Iterator[Message]:
    """Every matching message (its RESULT_COLUMNS, with its notification's labels), oldest
    first, fetched ``batch`` at a time by keyset on the time-ordered id, so an export of
    millions of rows holds one batch in memory."""
    after = None
    while True:
        query = search_messages(sender, node, Order(FIELDS["ENCODED_KEY"], descending=False))
        query = query.select(*RESULT_COLUMNS, *RESULT_LABELS)
        if after is not None:
            query = query.where(Message.id > after)
        rows = list(query.limit(batch))
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id

"""NotifyBC's notification API (seed ``003``) under ``/compat/notifybc``: NotifyBC's paths
(``/api/notifications``), model and rules, over Herald's core.

An *admin request* carries a sender's API key: it creates notifications and sees the sender's
own (an admin key: all), unabridged. A *user request* carries a user token (``hu_…``, scoped as
minted) or, only from a peer in TRUSTED_PROXY_ADDRESSES, SiteMinder's ``SM_USER`` header (that user,
every sender's notifications): it sees that user's inbox — in-app, addressed to them or
broadcast, not deleted by them, due, not expired — and marks items read or deleted.
"""

from __future__ import annotations

from flask import g, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError
from peewee import fn

from api.auth import CHALLENGE, authenticate_user
from api.auth import authenticate as authenticate_key
from api.compat import notifybc_filter as nf
from api.compat.dialect import Dialect
from api.compat.notifybc_schemas import (
    CREATABLE,
    MAX_READERS_SHOWN,
    STATE_OF,
    FilterArgs,
    NotificationBodySchema,
    NotificationUpdateSchema,
    RecordSchema,
    herald_request,
    record,
)
from api.errors import Blueprint
from api.proxies import from_trusted_proxy
from channel_table import INAPP
from models.db import dict_rows, tuple_rows
from models.inbox import BroadcastState, Reader, inbox_query, notification_item, set_item_state
from models.lifecycle import soft_delete
from models.message import Message
from models.notification import Notification, notification_for
from models.search import All, Order, search_notifications
from models.search_syntax import ForbiddenFilter, InvalidFilter, notifybc_where, parse_order
from models.states import FanoutState, MessageState
from tasks.submit import InvalidSubmission, submit_notification

blp = Blueprint(
    "compat_notifybc",
    __name__,
    url_prefix="/compat/notifybc",
    description="NotifyBC's notification API: admin (API key) and user (user token, or "
    "SiteMinder's SM_USER from a trusted proxy) requests",
)
SM_USER = "SM_USER"
#: SM_USER as the OpenAPI document states it, on every operation.
SM_USER_PARAMETER = {
    "in": "header",
    "name": SM_USER,
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "The user, from a SiteMinder proxy in TRUSTED_PROXY_ADDRESSES (else ignored)",
}
#: A user's listing filters their newest items, at most this many.
USER_SCAN = 1000


# --- who is asking -------------------------------------------------------------------------
def authenticate() -> None:
    """An API key (admin request: ``g.sender``), a user token or a trusted SM_USER (user
    request: ``g.reader``), or 401. A user may not create (403, before the body is read)."""
    g.reader = None
    credential = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if credential.startswith("hu_"):
        authenticate_user()
    elif request.headers.get("Authorization"):
        authenticate_key()
    elif (user := siteminder_user()) is not None:
        g.reader = Reader(user, None)
    else:
        abort(401, message="An API key or a user token is required.", headers=CHALLENGE)
    if g.reader is not None and request.method == "POST":
        abort(403, message="A user request cannot create notifications.")


def siteminder_user() -> str | None:
    """The SM_USER header's user, when the peer is a trusted proxy; otherwise None (the header
    is ignored)."""
    user = request.headers.get(SM_USER, "").strip()
    if not user or not from_trusted_proxy(request.remote_addr):
        return None
    if len(user) > 200 or not user.isprintable():
        abort(401, message="SM_USER must be a user id of at most 200 characters.")
    return user


def reader() -> Reader | None:
    return g.get("reader")


# --- Herald → NotifyBC records -------------------------------------------------------------
def facts_of(notifications: list[Notification], admin: bool) -> dict:
    """What the records of ``notifications`` need of their messages and readers, in a few
    queries whatever their number: channels, states and last change; the message of a
    notification that has one; who read or deleted a broadcast (admin requests)."""
    facts: dict = {n.id: {"channels": set(), "states": [], "updated": None} for n in notifications}
    counts: dict = {}
    if facts:
        rows = dict_rows(
            Message.select(
                Message.notification,
                Message.channel,
                Message.state,
                fn.COUNT(Message.id).alias("count"),
                fn.MAX(Message.updated_at).alias("updated"),
            )
            .where(Message.notification.in_(list(facts)))
            .group_by(Message.notification, Message.channel, Message.state)
        )
        for row in rows:
            fact = facts[row["notification"]]
            fact["channels"].add(row["channel"])
            fact["states"].append(row["state"])
            updated = Message.updated_at.python_value(row["updated"])
            fact["updated"] = max(filter(None, (fact["updated"], updated)), default=None)
            counts[row["notification"]] = counts.get(row["notification"], 0) + row["count"]
    singles = [n.id for n in notifications if counts.get(n.id) == 1 and not n.is_broadcast]
    for message in Message.select().where(Message.notification.in_(singles)) if singles else ():
        facts[message.notification_id]["message"] = message
    broadcasts = readers_of([n.id for n in notifications if n.inbox_broadcast]) if admin else {}
    for n in notifications:
        facts[n.id]["fanning_out"] = n.fanout_state == FanoutState.PENDING
        facts[n.id].update(broadcasts.get(n.id, {}))
    return facts


def readers_of(notification_ids: list) -> dict:
    """Who read and who deleted each broadcast (the first MAX_READERS_SHOWN of each, in the
    order they did), for all of them in one query: ``{id: {"readBy", "deletedBy"}}``."""
    shown: dict = {n: {"readBy": [], "deletedBy": []} for n in notification_ids}
    if not shown:
        return shown
    keys = {MessageState.READ.value: "readBy", MessageState.DELETED.value: "deletedBy"}
    ranked = (
        BroadcastState.select(
            BroadcastState.notification,
            BroadcastState.recipient_key,
            BroadcastState.state,
            fn.ROW_NUMBER()
            .over(
                partition_by=[BroadcastState.notification, BroadcastState.state],
                order_by=[BroadcastState.updated_at, BroadcastState.id],
            )
            .alias("rank"),
        )
        .where(BroadcastState.notification.in_(list(shown)) & BroadcastState.state.in_(list(keys)))
        .alias("ranked")
    )
    query = (
        BroadcastState.select(ranked.c.notification_id, ranked.c.recipient_key, ranked.c.state)
        .from_(ranked)
        .where(ranked.c.rank <= MAX_READERS_SHOWN)
        .order_by(ranked.c.notification_id, ranked.c.state, ranked.c.rank)
    )
    for notification_id, user, state in tuple_rows(query):
        shown[BroadcastState.notification.python_value(notification_id)][keys[state]].append(user)
    return shown


def admin_records(notifications: list[Notification]) -> list[dict]:
    facts = facts_of(notifications, admin=True)
    return [record(n, facts[n.id]) for n in notifications]


def user_records(user: Reader, rows: list[dict]) -> list[dict]:
    """Inbox rows (``models.inbox``) as the user's records: their own state, no readers."""
    ids = {row["notification_id"] for row in rows}
    notifications = {n.id: n for n in Notification.select().where(Notification.id.in_(ids))}
    own = [row["item_id"] for row in rows if row["item_id"] != row["notification_id"]]
    messages = {m.id: m for m in Message.select().where(Message.id.in_(own))} if own else {}
    shown = []
    for row in rows:
        facts = {"channels": {INAPP.name}, "message": messages.get(row["item_id"])}
        state = STATE_OF.get(row["state"], "new")
        shown.append(record(notifications[row["notification_id"]], facts, user_state=state))
    return shown


def projected(records: list[dict], chosen: list[str] | None) -> list[dict]:
    if chosen is None:
        return records
    return [{key: shown[key] for key in chosen if key in shown} for shown in records]


def parsed(parse, *args):
    """``parse(*args)``; a bad filter or body is a 400 naming its field, a forbidden one 403."""
    try:
        return parse(*args)
    except ValidationError as invalid:
        abort(400, errors=invalid.messages)
    except InvalidFilter as invalid:
        abort(400, errors={"filter": [str(m) for ms in invalid.errors.values() for m in ms]})
    except ForbiddenFilter as forbidden:
        abort(403, message=str(forbidden))


# --- listing -------------------------------------------------------------------------------
def admin_listing(spec: dict) -> list[dict]:
    """The sender's notifications (an admin key's: all) matching ``where``, in ``order``."""
    sender = g.sender
    where = spec.get("where")
    herald = parsed(nf.herald_where, where) if where is not None else {}
    node = parsed(notifybc_where, herald, sender) if herald else All(())
    order = Order(*parsed(parse_order, _herald_order(spec.get("order", "created DESC"))))
    query = search_notifications(sender, node, order)
    if (broadcast := parsed(nf.top_level, where, "isBroadcast")) is not None:
        query = query.where(Notification.is_broadcast.in_(broadcast))
    if (channels := parsed(nf.top_level, where, "channel")) is not None:
        names = [CREATABLE.get(c, (c, None))[0] for c in channels]
        on_channel = Message.select(Message.notification).where(Message.channel.in_(names))
        matches = Notification.id.in_(on_channel)
        if INAPP.name in names:
            matches |= Notification.inbox_broadcast
        query = query.where(matches)
    notifications = list(query.offset(spec["skip"]).limit(spec["limit"]))
    return projected(admin_records(notifications), spec["fields"])


def _herald_order(order) -> str:
    first = order[0] if isinstance(order, list) and order else order
    name, _, direction = str(first).strip().partition(" ")
    if name not in ("created", "serviceName"):
        abort(400, errors={"filter": ["order: created or serviceName, then ASC or DESC."]})
    return f"{nf.SEARCHED[name]} {direction}"


def user_listing(user: Reader, spec: dict) -> list[dict]:
    """The user's items (their newest USER_SCAN) as records matching ``where``, in ``order``."""
    rows = list(inbox_query(user).limit(USER_SCAN))
    records = user_records(user, rows)
    if spec.get("where") is not None:
        matches = parsed(nf.record_matcher, spec["where"])
        records = [shown for shown in records if matches(shown)]
    if "order" in spec:
        key, descending = parsed(nf.record_order, spec["order"])
        present = [r for r in records if r.get(key) is not None]
        absent = [r for r in records if r.get(key) is None]
        records = sorted(present, key=lambda r: r[key], reverse=descending) + absent
    page = records[spec["skip"] : spec["skip"] + spec["limit"]]
    return projected(page, spec["fields"])


@blp.route("/api/notifications", parameters=[SM_USER_PARAMETER])
class Notifications(MethodView):
    @blp.arguments(FilterArgs, location="query")
    @blp.response(200, RecordSchema(many=True))
    def get(self, args):
        """Notifications matching ``filter``: an admin request's all, unabridged; a user
        request's their in-app items only (their state, no ``readBy``/``deletedBy``)."""
        spec = parsed(nf.parsed_filter, args.get("filter"))
        user = reader()
        return user_listing(user, spec) if user else admin_listing(spec)

    @blp.arguments(NotificationBodySchema)
    @blp.response(200, RecordSchema)
    @blp.alt_response(403, description="A user request, or a unicast without userChannelId")
    def post(self, data):
        """Create a notification (admin requests): inApp, email or sms, unicast or broadcast.
        Sending is asynchronous: the answer's state is ``new``."""
        herald = parsed(herald_request, data)
        try:
            notification, messages = submit_notification(g.sender, herald)
        except InvalidSubmission as invalid:
            abort(400, errors=invalid.errors)
        return admin_records([notification])[0]


# --- one notification ----------------------------------------------------------------------
@blp.route("/api/notifications/<uuid:notification_id>", parameters=[SM_USER_PARAMETER])
class NotificationById(MethodView):
    @blp.arguments(FilterArgs, location="query")
    @blp.response(200, RecordSchema)
    def get(self, args, notification_id):
        """One notification (a user request: one of their items), ``filter.fields`` applied."""
        spec = parsed(nf.parsed_filter, args.get("filter"))
        user = reader()
        if user:
            item = _user_item(user, notification_id)
            if item["state"] == MessageState.DELETED:
                abort(404, message="No such notification.")
            shown = user_records(user, [item])
        else:
            shown = admin_records([_admin_notification(notification_id)])
        return projected(shown, spec["fields"])[0]

    @blp.arguments(NotificationUpdateSchema)
    @blp.response(204)
    @blp.alt_response(403, description="A user request on a notification not theirs")
    def patch(self, data, notification_id):
        """Update: a user request keeps ``state`` only (read or deleted: for them alone on a
        broadcast); an admin request may change ``state`` (deleted; read on an inApp unicast)
        and give the other fields as they are."""
        update(notification_id, data)
        return "", 204

    @blp.arguments(NotificationUpdateSchema)
    @blp.response(204)
    @blp.alt_response(403, description="A user request on a notification not theirs")
    def put(self, data, notification_id):
        """As PATCH (NotifyBC's documented form of it)."""
        update(notification_id, data)
        return "", 204

    @blp.response(204)
    @blp.alt_response(403, description="A user request on a notification not theirs")
    def delete(self, notification_id):
        """A user request: deleted for that user. An admin request: soft-deleted (hidden from
        every inbox, what is not yet sent cancelled, kept for audit)."""
        user = reader()
        if user:
            set_item_state(user, _user_item(user, notification_id), MessageState.DELETED)
        else:
            soft_delete(_admin_notification(notification_id).id)
        return "", 204


def _admin_notification(notification_id) -> Notification:
    notification = notification_for(g.sender, notification_id)
    if notification is None:
        abort(404, message="No such notification.")
    return notification


def _user_item(user: Reader, notification_id) -> dict:
    """The user's item of the notification; 404 when it is outside their scope, 403 when it
    is not theirs (NotifyBC's answer to a unicast addressed to someone else)."""
    query = Notification.select(Notification.id).where(Notification.id == notification_id)
    if user.sender_id is not None:
        query = query.where(Notification.sender == user.sender_id)
    if not query.exists():
        abort(404, message="No such notification.")
    item = notification_item(user, notification_id)
    if item is None:
        abort(403, message="This notification is not one of this user's in-app notifications.")
    return item


USER_STATES = (MessageState.READ, MessageState.DELETED)


def update(notification_id, data: dict) -> None:
    user = reader()
    if user:
        item = _user_item(user, notification_id)
        if data.get("state") not in USER_STATES:
            abort(400, errors={"state": ["A user request sets state to read or deleted."]})
        set_item_state(user, item, data["state"])
        return
    notification = _admin_notification(notification_id)
    current = admin_records([notification])[0]
    changed = {key: value for key, value in data.items() if current.get(key) != value}
    refused = {
        key: ["Herald cannot change this field of an accepted notification."]
        for key in changed
        if key != "state"
    }
    if refused:
        abort(400, errors=refused)
    if "state" in changed:
        _admin_state(notification, changed["state"])


def _admin_state(notification: Notification, state: str) -> None:
    if state == MessageState.DELETED:
        soft_delete(notification.id)
        return
    message = facts_of([notification], admin=False)[notification.id].get("message")
    if state != MessageState.READ or message is None or message.channel != INAPP.name:
        abort(
            400, errors={"state": ["An admin request sets deleted, or read on an inApp unicast."]}
        )
    item = {"item_id": message.id, "notification_id": notification.id}
    set_item_state(Reader(message.recipient_key or "", None), item, MessageState.READ)


DIALECT = Dialect(blp, authenticate)

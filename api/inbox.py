"""``/v1/inbox``: one user's in-app notifications, read with a user token; and
``/v1/inbox/tokens``, where a sender mints such tokens with its API key."""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView
from flask_smorest import abort

from api.auth import current_reader, current_sender
from api.errors import Blueprint
from api.inbox_schemas import (
    ActionRequestSchema,
    ActionSchema,
    InboxArgs,
    InboxCountSchema,
    InboxItemSchema,
    InboxPatchSchema,
    TokenRequestSchema,
    TokenSchema,
)
from api.pagination import PageArgs, paginate
from api.preference_schemas import PreferencesSchema
from api.preferences import preferences, replace_preferences
from channel_table import INAPP
from models.action import ActionType, NotificationAction, NotificationDeleted, record_action
from models.inbox import Reader, inbox_counts, inbox_item, inbox_query, set_item_state
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from models.user_token import mint_user_token
from templating.problem import TemplateProblem
from templating.render import contacts_attributes, template_parts

blp = Blueprint(
    "inbox", __name__, url_prefix="/v1/inbox", description="A user's inbox (user token)"
)
tokens_blp = Blueprint(
    "inbox_tokens", __name__, url_prefix="/v1/inbox/tokens", description="Mint user tokens"
)


class InboxListArgs(PageArgs, InboxArgs):
    pass


@tokens_blp.route("")
class Tokens(MethodView):
    @tokens_blp.arguments(TokenRequestSchema)
    @tokens_blp.response(201, TokenSchema)
    def post(self, data):
        """A signed, expiring token that opens ``user``'s inbox and nothing else. A sender's
        token shows that sender's notifications only; an admin's shows every sender's."""
        sender = current_sender()
        token, claims = mint_user_token(
            data["user"], None if sender.is_admin else sender.id, data["ttl_seconds"]
        )
        return {"token": token, "user": claims.user, "expires_at": claims.expires_at}


@blp.route("")
class Inbox(MethodView):
    @blp.arguments(InboxListArgs, location="query")
    @blp.response(200, InboxItemSchema(many=True))
    def get(self, args):
        """The user's in-app notifications and broadcasts, newest first: not deleted by the
        user, not expired; ``state=unread`` for the unread ones only."""
        reader = current_reader()
        query = inbox_query(reader, unread_only=args.get("state") == MessageState.UNREAD)
        rows, headers = paginate(query, args)
        return present(reader, rows), 200, headers


@blp.route("/count")
class InboxCount(MethodView):
    @blp.response(200, InboxCountSchema)
    def get(self):
        """How many items the user has, and how many are unread (for a badge)."""
        return inbox_counts(current_reader())


@blp.route("/<uuid:item_id>")
class InboxItem(MethodView):
    @blp.response(200, InboxItemSchema)
    def get(self, item_id: UUID):
        """One item of the user's inbox."""
        reader = current_reader()
        return present(reader, [_item(reader, item_id)])[0]

    @blp.arguments(InboxPatchSchema)
    @blp.response(200, InboxPatchSchema)
    def patch(self, data, item_id: UUID):
        """Mark the item ``read`` or ``deleted`` for this user (a broadcast: for this user
        only). A deleted item leaves the inbox."""
        reader = current_reader()
        set_item_state(reader, _item(reader, item_id), data["state"])
        return data


@blp.route("/<uuid:item_id>/actions")
class InboxActions(MethodView):
    @blp.arguments(ActionRequestSchema)
    @blp.response(201, ActionSchema)
    @blp.alt_response(409, description="The sender deleted the notification")
    def post(self, data, item_id: UUID):
        """Record what the user did about the item. ``IsRead`` also marks it read."""
        reader = current_reader()
        item = inbox_item(reader, item_id, deleted_too=True)
        if item is None:
            abort(404, message="No such item in this inbox.")
        try:
            action = record_action(
                item["notification_id"],
                data["action_type"],
                note=data["action_note"],
                performed_by=data["performed_by"] or reader.user,
                user=reader.user,
            )
        except NotificationDeleted:
            abort(409, message="The notification was deleted by its sender.")
        if data["action_type"] == ActionType.IS_READ:
            set_item_state(reader, item, MessageState.READ)
        return action


def _item(reader: Reader, item_id) -> dict:
    item = inbox_item(reader, item_id)
    if item is None:
        abort(404, message="No such item in this inbox.")
    return item


def present(reader: Reader, rows: list[dict]) -> list[dict]:
    """Inbox rows with their notifications' content (templates rendered for in-app) and
    whether an action is still required of this user."""
    ids = {row["notification_id"] for row in rows}
    notifications = {n.id: n for n in Notification.select().where(Notification.id.in_(ids))}
    templated = [
        r["item_id"] for r in rows if notifications[r["notification_id"]].template_version_id
    ]
    messages = (
        {m.id: m for m in Message.select().where(Message.id.in_(templated))} if templated else {}
    )
    acted = _acted_on(reader, ids)
    contacts = contacts_attributes(m.contact_id for m in messages.values() if m.contact_id)
    items = []
    for row in rows:
        notification = notifications[row["notification_id"]]
        content = _content(notification, messages.get(row["item_id"]), contacts)
        items.append(
            {
                "id": row["item_id"],
                "notification_id": notification.id,
                "broadcast": row["item_id"] == row["notification_id"],
                "state": row["state"],
                "subject": content.get("subject"),
                "body": content.get("body", ""),
                "action_url": content.get("action_url"),
                "data": content.get("data"),
                "service_name": notification.service_name,
                "event": notification.event,
                "require_action": notification.require_action,
                "action_required": notification.require_action and notification.id not in acted,
                "valid_till": notification.valid_till,
                "created_at": row["created_at"],
                "read_at": row["read_at"] if row["state"] == MessageState.READ else None,
            }
        )
    return items


def _acted_on(reader: Reader, notification_ids: set) -> set:
    """Of these notifications, those with an action other than IsRead by a sender or by this
    user."""
    if not notification_ids:
        return set()
    query = NotificationAction.select(NotificationAction.notification).where(
        NotificationAction.notification.in_(notification_ids)
        & (NotificationAction.action_type != ActionType.IS_READ)
        & (
            NotificationAction.recipient_key.is_null()
            | (NotificationAction.recipient_key == reader.user)
        )
    )
    return {row.notification_id for row in query}


def _content(
    notification: Notification, message: Message | None, contacts: dict[int, dict]
) -> dict:
    """What the item says: the notification's content, or its template rendered for in-app in
    the message's (or the notification's) language."""
    content = notification.content or {}
    if notification.template_version_id is None:
        return content
    language = (message and message.language) or notification.language
    try:
        parts = template_parts(notification, message, INAPP.name, language, contacts=contacts)
    except TemplateProblem:
        parts = {"body": ""}
    return {**content, **parts}


@blp.route("/preferences")
class InboxPreferences(MethodView):
    @blp.response(200, PreferencesSchema)
    def get(self):
        """The user's channel opt-outs, everywhere and per service (a missing key: on)."""
        return preferences(current_reader().user)

    @blp.arguments(PreferencesSchema)
    @blp.response(200, PreferencesSchema)
    def put(self, data):
        """Replace the user's whole preferences document; answers it as stored."""
        return replace_preferences(current_reader().user, data)

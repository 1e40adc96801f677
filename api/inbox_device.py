"""``/v1/inbox/me`` and ``/v1/inbox/push-subscription``, with a user token: who the user is to
the page (their language), and this device's web push subscription stored as the person's
``webpush`` channel. Routes on the inbox blueprint (``api.inbox.blp``)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError, fields, post_load, validate, validates

from api.auth import current_reader
from api.inbox import blp
from channel_table import WEBPUSH
from channels import urlguard
from channels.base import InvalidDestination
from channels.webpush import canonical_subscription
from models.base import utcnow
from models.contact import Contact, ContactChannel, contact_by_idnp, idnp_problem
from models.db import write_transaction
from tasks.requests import CamelSchema

MAX_ENDPOINT = 2000
MAX_KEY = 200


class InboxUserSchema(CamelSchema):
    user = fields.String(metadata={"description": "The user id the token is for"})
    contact = fields.Boolean(
        metadata={"description": "Whether the user is a person in the contact registry (IDNP)"}
    )
    language = fields.String(
        allow_none=True,
        metadata={"description": "The person's preferred language (null: not known)"},
    )


class PushKeysSchema(CamelSchema):
    p256dh = fields.String(required=True, validate=validate.Length(min=1, max=MAX_KEY))
    auth = fields.String(required=True, validate=validate.Length(min=1, max=MAX_KEY))


class PushSubscriptionSchema(CamelSchema):
    """A browser's ``PushSubscription.toJSON()``."""

    endpoint = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_ENDPOINT),
        metadata={"description": "The push service URL (https)"},
    )
    expiration_time = fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=2**53),
        metadata={"description": "As the browser gives it; not used"},
    )
    keys = fields.Nested(PushKeysSchema, required=True)

    @validates("endpoint")
    def endpoint_allowed(self, value: str, **kwargs) -> None:
        try:
            urlguard.check_url_syntax(value)
        except urlguard.UnsafeURL as error:
            raise ValidationError(str(error)) from None

    @post_load
    def canonical(self, data: dict, **kwargs) -> str:
        try:
            return canonical_subscription({"endpoint": data["endpoint"], "keys": data["keys"]})
        except InvalidDestination as error:
            raise ValidationError(str(error), "keys") from None


class PushChannelSchema(CamelSchema):
    id = fields.Integer()
    type = fields.String(metadata={"example": WEBPUSH.recipient_type})
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


@blp.route("/me")
class InboxUser(MethodView):
    @blp.response(200, InboxUserSchema)
    def get(self):
        """The user, and the language the inbox page speaks to them in: a person's (an IDNP in
        the contact registry) preferred language."""
        user = current_reader().user
        contact = person(user)
        return {
            "user": user,
            "contact": contact is not None,
            "language": contact.preferred_language if contact else None,
        }


@blp.route("/push-subscription")
class PushSubscription(MethodView):
    @blp.arguments(PushSubscriptionSchema)
    @blp.response(200, PushChannelSchema)
    @blp.alt_response(409, description="The user is not a person in the contact registry")
    def put(self, subscription: str):
        """Store this browser's push subscription as the person's ``webpush`` channel (active
        again if it was switched off); notifications to their IDNP then reach this device.
        Only a person in the contact registry (the token's user is their IDNP) has channels."""
        user = current_reader().user
        contact = person(user)
        if contact is None:
            abort(
                409,
                message=f"The user {user!r} is not a person in the contact registry; web push "
                "is stored as a contact's channel, so the token must be for their IDNP.",
            )
        return store_push_channel(contact, subscription)


def person(user: str) -> Contact | None:
    """The registry contact whose IDNP is ``user``; None when ``user`` is no such IDNP."""
    return contact_by_idnp(user) if idnp_problem(user) is None else None


def store_push_channel(contact: Contact, subscription: str) -> ContactChannel:
    """The contact's webpush channel at ``subscription`` (canonical JSON), added or made
    active again."""
    now = utcnow()
    kind = WEBPUSH.recipient_type
    unique = [ContactChannel.contact, ContactChannel.type, ContactChannel.address]
    with write_transaction():
        (
            ContactChannel.insert(contact=contact, type=kind, address=subscription)
            .on_conflict(
                conflict_target=unique,
                update={
                    ContactChannel.active: True,
                    ContactChannel.deactivated_reason: None,
                    ContactChannel.updated_at: now,
                },
            )
            .execute()
        )
    return ContactChannel.get(
        (ContactChannel.contact == contact)
        & (ContactChannel.type == kind)
        & (ContactChannel.address == subscription)
    )

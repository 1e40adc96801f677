"""``/v1/contacts``: the contact registry (permissions ``contacts:read`` / ``contacts:write``)."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError
from peewee import IntegrityError

from api.auth import current_sender, require
from api.contact_import import read_import
from api.contact_schemas import (
    ChannelPatchSchema,
    ContactChannelSchema,
    ContactListArgs,
    ContactPatchSchema,
    ContactSchema,
    ImportResultSchema,
    LanguageSchema,
    ReachabilitySchema,
    SubscriptionSchema,
)
from api.errors import Blueprint
from api.notification_schemas import NotificationSchema
from api.pagination import PageArgs, paginate
from api.preference_schemas import PreferencesSchema
from api.preferences import globally_off, preferences, replace_preferences
from channels import RECIPIENT_TYPES, configured_channels
from models.base import utcnow
from models.contact import (
    Contact,
    ContactChannel,
    Subscription,
    active_channels,
    contact_by_idnp,
    create_contact,
    upsert_contacts,
)
from models.db import write_transaction
from models.message import notifications_for_recipient
from models.preference import forget_preferences

blp = Blueprint("contacts", __name__, url_prefix="/v1/contacts", description="Contact registry")

READ, WRITE = "contacts:read", "contacts:write"
IMPORT_CHUNK = 1000


def _contact(idnp: str) -> Contact:
    contact = contact_by_idnp(idnp)
    if contact is None:
        abort(404, message="No contact with this IDNP.")
    return contact


def _channel(contact: Contact, channel_id: int) -> ContactChannel:
    channel = ContactChannel.get_or_none(
        (ContactChannel.id == channel_id) & (ContactChannel.contact == contact)
    )
    if channel is None:
        abort(404, message="No such channel on this contact.")
    return channel


def _create_once(model, conflict: str, **fields):
    """Create a row; a unique-key clash is a 409 with ``conflict`` as the message."""
    try:
        with write_transaction():
            return model.create(**fields)
    except IntegrityError:
        abort(409, message=conflict)


@blp.route("")
class Contacts(MethodView):
    @blp.arguments(ContactSchema)
    @blp.response(201, ContactSchema)
    @blp.alt_response(409, description="The IDNP is registered already")
    def post(self, data):
        """Register a person, with their channels."""
        require(WRITE)
        if not create_contact(data):
            abort(409, message="A contact with this IDNP exists.")
        return contact_by_idnp(data["idnp"])

    @blp.arguments(ContactListArgs, location="query")
    @blp.response(200, ContactSchema(many=True))
    def get(self, args):
        """Contacts, newest first; filter by channel type, language, or text in IDNP or name."""
        require(READ)
        query = Contact.select()
        if args.get("channel_type"):
            with_type = ContactChannel.select(ContactChannel.contact).where(
                (ContactChannel.type == args["channel_type"]) & ContactChannel.active
            )
            query = query.where(Contact.id.in_(with_type))
        if args.get("language"):
            query = query.where(Contact.preferred_language == args["language"])
        if args.get("text"):
            query = query.where(
                Contact.idnp.startswith(args["text"]) | Contact.name.contains(args["text"])
            )
        items, headers = paginate(query.order_by(Contact.id.desc()), args)
        return with_channels_and_subscriptions(items), 200, headers


def with_channels_and_subscriptions(contacts: list[Contact]) -> list[Contact]:
    """``contacts`` with their channels and subscriptions attached (what ``ContactSchema``
    reads): one query for each, whatever the number of contacts."""
    ids = [contact.id for contact in contacts]
    if not ids:
        return contacts
    channels: dict[int, list] = {contact_id: [] for contact_id in ids}
    subscriptions: dict[int, list] = {contact_id: [] for contact_id in ids}
    for channel in (
        ContactChannel.select().where(ContactChannel.contact.in_(ids)).order_by(ContactChannel.id)
    ):
        channels[channel.contact_id].append(channel)
    for subscription in Subscription.select().where(Subscription.contact.in_(ids)):
        subscriptions[subscription.contact_id].append(subscription)
    for contact in contacts:
        # An instance attribute shadows peewee's backref (a query per read).
        contact.__dict__["channels"] = channels[contact.id]
        contact.__dict__["subscriptions"] = subscriptions[contact.id]
    return contacts


@blp.route("/import")
class ContactImport(MethodView):
    @blp.response(200, ImportResultSchema)
    @blp.doc(
        requestBody={
            "content": {
                "application/json": {"schema": {"type": "array", "items": ContactSchema}},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    )
    def post(self):
        """Upsert up to 10,000 contacts (JSON array, or CSV with columns idnp, name,
        preferredLanguage, email, phone, viber, telegram, whatsapp). A row changes only the
        fields it gives (a JSON key left out, a CSV column left out or an empty cell keep the
        contact's value; JSON null clears it) and adds its channels. Rows with errors are listed
        by row number; the good rows are saved."""
        require(WRITE)
        rows = read_import(request)
        good, errors = [], []
        schema = ContactSchema()
        for number, row in enumerate(rows, start=1):
            try:
                good.append(schema.load(row))
            except ValidationError as error:
                errors.append({"row": number, "errors": error.messages})
        totals = {"created": 0, "updated": 0}
        for start in range(0, len(good), IMPORT_CHUNK):
            for key, value in upsert_contacts(good[start : start + IMPORT_CHUNK]).items():
                totals[key] += value
        return {**totals, "rejected": len(errors), "errors": errors}


@blp.route("/<idnp>")
class ContactByIdnp(MethodView):
    @blp.response(200, ContactSchema)
    def get(self, idnp: str):
        """A contact with its channels and subscriptions."""
        require(READ)
        return _contact(idnp)

    @blp.arguments(ContactPatchSchema)
    @blp.response(200, ContactSchema)
    def patch(self, data, idnp: str):
        """Change the name, preferred language or attributes."""
        require(WRITE)
        contact = _contact(idnp)
        for name, value in data.items():
            setattr(contact, name, value)
        contact.updated_at = utcnow()
        contact.save()
        return contact

    @blp.response(204)
    def delete(self, idnp: str):
        """Forget a person: their channels, subscriptions and preferences go too; sent messages
        stay."""
        require(WRITE)
        contact = _contact(idnp)
        with write_transaction():
            contact.delete_instance(recursive=False)
            forget_preferences([contact.idnp])


@blp.route("/<idnp>/language")
class ContactLanguage(MethodView):
    @blp.arguments(LanguageSchema)
    @blp.response(200, ContactSchema)
    def put(self, data, idnp: str):
        """Set the language the person's notifications are rendered in."""
        require(WRITE)
        contact = _contact(idnp)
        contact.preferred_language = data["preferred_language"]
        contact.updated_at = utcnow()
        contact.save()
        return contact


@blp.route("/<idnp>/channels")
class ContactChannels(MethodView):
    @blp.arguments(ContactChannelSchema)
    @blp.response(201, ContactChannelSchema)
    @blp.alt_response(409, description="The contact has this channel already")
    def post(self, data, idnp: str):
        """Add a channel."""
        require(WRITE)
        return _create_once(
            ContactChannel, "The contact has this channel already.", contact=_contact(idnp), **data
        )


@blp.route("/<idnp>/channels/<int:channel_id>")
class ContactChannelById(MethodView):
    @blp.arguments(ChannelPatchSchema)
    @blp.response(200, ContactChannelSchema)
    def patch(self, data, idnp: str, channel_id: int):
        """Activate or deactivate a channel, or change its priority."""
        require(WRITE)
        channel = _channel(_contact(idnp), channel_id)
        for name, value in data.items():
            setattr(channel, name, value)
        if data.get("active"):
            channel.deactivated_reason = None
        channel.updated_at = utcnow()
        channel.save()
        return channel

    @blp.response(204)
    def delete(self, idnp: str, channel_id: int):
        """Remove a channel."""
        require(WRITE)
        _channel(_contact(idnp), channel_id).delete_instance()


@blp.route("/<idnp>/reachability")
class ContactReachability(MethodView):
    @blp.response(200, ReachabilitySchema)
    def get(self, idnp: str):
        """Whether the person exists and can be reached outside the in-app cabinet: on an
        active channel this server is configured for and the person did not opt out of for
        every service, as fan-out would; with the person's preferences."""
        require(READ)
        contact = contact_by_idnp(idnp)
        document = preferences(contact.idnp) if contact else None
        usable = configured_channels() - (globally_off(document) if document else set())
        channels = [
            channel
            for channel in (active_channels(contact) if contact else [])
            if RECIPIENT_TYPES[channel.type] in usable
        ]
        return {
            "exists": contact is not None,
            "preferences": document,
            "has_active_channel": bool(channels),
            "active_channels": [
                {"id": c.id, "type": c.type, "priority": c.priority} for c in channels
            ],
        }


@blp.route("/<idnp>/preferences")
class ContactPreferences(MethodView):
    @blp.response(200, PreferencesSchema)
    def get(self, idnp: str):
        """The person's channel opt-outs, everywhere and per service (a missing key: on)."""
        require(READ)
        return preferences(_contact(idnp).idnp)

    @blp.arguments(PreferencesSchema)
    @blp.response(200, PreferencesSchema)
    def put(self, data, idnp: str):
        """Replace the person's whole preferences document; answers it as stored."""
        require(WRITE)
        return replace_preferences(_contact(idnp).idnp, data)


@blp.route("/<idnp>/subscriptions")
class ContactSubscriptions(MethodView):
    @blp.arguments(SubscriptionSchema)
    @blp.response(201, SubscriptionSchema)
    @blp.alt_response(409, description="Subscribed already")
    def post(self, data, idnp: str):
        """Subscribe the person to a service's broadcasts."""
        require(WRITE)
        contact = _contact(idnp)
        return _create_once(Subscription, "Subscribed already.", contact=contact, **data)


@blp.route("/<idnp>/subscriptions/<service_name>")
class ContactSubscription(MethodView):
    @blp.response(204)
    def delete(self, idnp: str, service_name: str):
        """Unsubscribe."""
        require(WRITE)
        deleted = (
            Subscription.delete()
            .where(
                (Subscription.contact == _contact(idnp))
                & (Subscription.service_name == service_name)
            )
            .execute()
        )
        if not deleted:
            abort(404, message="Not subscribed to this service.")


@blp.route("/<idnp>/notifications")
class ContactNotifications(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, NotificationSchema(many=True))
    def get(self, args, idnp: str):
        """Notifications sent to this person (this sender's; an admin sees all), newest first."""
        require(READ)
        query = notifications_for_recipient(current_sender(), idnp)
        items, headers = paginate(query, args)
        return items, 200, headers

"""Every listing answers a page in a constant number of SQL statements: a page of 50 items
costs what a page of 5 does (no query per row for its messages, template, channels, …).

Each listing operation of the OpenAPI document is seeded with 5 items, asked for a page of
up to 50, then seeded with 45 more and asked again; the statements the database ran during
each request (``tests.support.counted_statements``) must be as many. Each request is made once
before it is counted, so what is cached for good (template versions) is cached for both; the
caches that expire keep nothing here (SENDER_CACHE_SECONDS=0), so each request reads its key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from models.action import record_action
from models.base import utcnow
from models.contact import Contact
from models.inbox import BroadcastState
from models.notification import Notification
from models.template import Template, TemplateVersion
from settings import settings
from tests.factories import contact_body, email_notification, idnp, make_sender, stored_message
from tests.factories import visit_reminder as template_body
from tests.inbox_support import token_for
from tests.support import counted_statements

SMALL, LARGE = 5, 50
USER = "user-7"
PERSON = idnp(7)
HOOK = "https://permits.example.md/herald/webhooks"


@dataclass
class World:
    """What the seeds share: the client, a sender allowed to read contacts, one template and
    its first version, one notification that collects actions and readers, and counters."""

    client: object
    sender: object
    version: TemplateVersion
    notification: Notification
    contact: Contact
    made: dict = field(default_factory=dict)

    def serial(self, kind: str) -> int:
        self.made[kind] = self.made.get(kind, 0) + 1
        return self.made[kind]

    def post(self, path: str, body: dict) -> dict:
        response = self.client.post(path, json=body, headers=self.sender.headers)
        assert response.status_code in (200, 201, 202), response.get_json()
        return response.get_json()


@pytest.fixture
def world(client, db, queues, monkeypatch):
    # Nothing expires between requests: the per-process caches (keys, tokens) keep nothing.
    monkeypatch.setattr(settings, "SENDER_CACHE_SECONDS", 0)
    reader = make_sender("acme", permissions=["contacts:read", "contacts:write"])
    response = client.post("/v1/templates", json=template_body(), headers=reader.headers)
    assert response.status_code == 201, response.get_json()
    template = Template.get_by_id(response.get_json()["id"])
    version = TemplateVersion.get(TemplateVersion.template == template)
    created = client.post("/v1/contacts", json=contact_body(7), headers=reader.headers)
    assert created.status_code == 201, created.get_json()
    contact = Contact.get(Contact.idnp == PERSON)
    collector = stored_message(reader.sender, channel="inapp", destination=USER, state="read")
    return World(client, reader, version, collector.notification, contact)


def _notification(world: World, **labels) -> Notification:
    """A templated notification with an email, an SMS and an in-app message for PERSON."""
    serial = world.serial("notification")
    created_at = utcnow() - timedelta(minutes=serial)
    notification = Notification.create(
        sender=world.sender.sender,
        content={},
        template_version=world.version,
        attributes={"visitDate": "2026-12-01T09:00:00+02:00"},
        service_name="housing",
        event="VISIT",
        target_id="T-1",
        target_type="tenancy",
        reference=f"R-{serial}",
        created_at=created_at,
        **labels,
    )
    columns = {"notification": notification, "created_at": created_at, "recipient_key": PERSON}
    stored_message(world.sender.sender, state="failed", failure_reason="BOUNCED", **columns)
    stored_message(
        world.sender.sender, channel="sms", destination="+37369000007", state="sent", **columns
    )
    stored_message(
        world.sender.sender,
        channel="inapp",
        destination=PERSON,
        state="unread",
        contact=world.contact,
        **columns,
    )
    return notification


def seed_notifications(world: World, count: int) -> None:
    for _ in range(count):
        _notification(world)


def seed_inbox(world: World, count: int) -> None:
    """In-app messages for USER (templated, with a contact) and broadcasts."""
    for index in range(count):
        if index % 2:
            notification = _notification(world)
            stored_message(
                world.sender.sender,
                notification=notification,
                channel="inapp",
                destination=USER,
                recipient_key=USER,
                state="unread",
                contact=world.contact,
            )
        else:
            broadcast = _notification(world, is_broadcast=True, inbox_broadcast=True)
            BroadcastState.create(notification=broadcast, recipient_key=USER, state="read")
            BroadcastState.create(notification=broadcast, recipient_key="u-2", state="deleted")


def seed_actions(world: World, count: int) -> None:
    for _ in range(count):
        serial = world.serial("action")
        record_action(world.notification.id, "Approved", note=f"n{serial}", user=USER)


def seed_readers(world: World, count: int) -> None:
    for _ in range(count):
        serial = world.serial("reader")
        stored_message(
            world.sender.sender,
            notification=world.notification,
            channel="inapp",
            destination=f"u{serial}",
            recipient_key=f"u{serial}",
            state="read",
        )


def seed_templates(world: World, count: int) -> None:
    for _ in range(count):
        world.post("/v1/templates", template_body(code=f"t-{world.serial('template')}"))


def seed_versions(world: World, count: int) -> None:
    for _ in range(count):
        patched = world.client.patch(
            f"/v1/templates/{world.version.template_id}",
            json={"name": f"Visit {world.serial('version')}"},
            headers=world.sender.headers,
        )
        assert patched.status_code == 200, patched.get_json()


def seed_contacts(world: World, count: int) -> None:
    for _ in range(count):
        serial = 100 + world.serial("contact")
        world.post("/v1/contacts", contact_body(serial))
        world.post(f"/v1/contacts/{idnp(serial)}/subscriptions", {"serviceName": "housing"})


def seed_reminders(world: World, count: int) -> None:
    later = (utcnow() + timedelta(days=1)).isoformat()
    for _ in range(count):
        world.serial("reminder")
        world.post("/v1/reminders", email_notification("ion@example.md", at=[later]))


def seed_hooks(world: World, count: int) -> None:
    for _ in range(count):
        world.post("/v1/webhook-endpoints", {"url": f"{HOOK}/{world.serial('hook')}"})


def _items(response) -> int:
    if response.mimetype == "text/csv":
        return len(response.get_data(as_text=True).splitlines()) - 1
    return len(response.get_json())


@dataclass(frozen=True)
class Listing:
    """A listing operation: how to seed one unit of its items, the request (asking for more
    than is seeded), the items a unit gives, and whether a user (token) asks."""

    name: str
    seed: Callable[[World, int], None]
    method: str
    path: str
    per_unit: int = 1
    as_user: bool = False


PAGE = 200
MAMBU_SEARCH = f"/compat/mambu/api/notifications/messages/search?limit={PAGE}"
NOTIFYBC = "/compat/notifybc/api/notifications?filter=" + json.dumps({"limit": PAGE})
#: Every listing operation of the OpenAPI document (``<collector>`` and ``<template>`` stand
#: for the world's notification and template). /v1/admin/scheduler is not here: it lists the
#: scheduler's jobs from Redis, not rows.
LISTINGS = [
    Listing("notifications", seed_notifications, "GET", f"/v1/notifications?pageSize={PAGE}"),
    Listing(
        "notifications-notifybc-filter",
        seed_notifications,
        "GET",
        "/v1/notifications?state=failed&filter=" + json.dumps({"limit": PAGE}),
    ),
    Listing(
        "contact-notifications",
        seed_notifications,
        "GET",
        f"/v1/contacts/{PERSON}/notifications?pageSize={PAGE}",
    ),
    Listing("search", seed_notifications, "POST", f"/v1/messages/search?pageSize={PAGE}", 3),
    Listing("export", seed_notifications, "GET", "/v1/messages/export", 3),
    Listing(
        "actions", seed_actions, "GET", f"/v1/notifications/<collector>/actions?pageSize={PAGE}"
    ),
    Listing("readers", seed_readers, "GET", "/v1/notifications/<collector>/readers"),
    Listing("templates", seed_templates, "GET", f"/v1/templates?pageSize={PAGE}"),
    Listing("versions", seed_versions, "GET", f"/v1/templates/<template>/versions?pageSize={PAGE}"),
    Listing("contacts", seed_contacts, "GET", f"/v1/contacts?pageSize={PAGE}"),
    Listing("reminders", seed_reminders, "GET", f"/v1/reminders?pageSize={PAGE}"),
    Listing("webhook-endpoints", seed_hooks, "GET", f"/v1/webhook-endpoints?pageSize={PAGE}"),
    Listing("inbox", seed_inbox, "GET", f"/v1/inbox?pageSize={PAGE}", as_user=True),
    Listing("mambu-search", seed_notifications, "POST", MAMBU_SEARCH, 3),
    Listing(
        "hackney",
        seed_notifications,
        "GET",
        f"/compat/hackney/notifications?targetId=T-1&pageSize={PAGE}",
    ),
    Listing("notifybc", seed_inbox, "GET", NOTIFYBC),
    Listing("notifybc-user", seed_inbox, "GET", NOTIFYBC, as_user=True),
]


def _ask(world: World, listing: Listing, headers: dict):
    path = listing.path.replace("<collector>", str(world.notification.id))
    path = path.replace("<template>", str(world.version.template_id))
    body = {} if listing.method == "POST" else None
    response = world.client.open(path, method=listing.method, json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response


def _counted(world: World, database, listing: Listing, headers: dict) -> tuple[int, int]:
    """The statements the request runs, and the items it answers (after a warm-up request)."""
    _ask(world, listing, headers)
    with counted_statements(database) as statements:
        items = _items(_ask(world, listing, headers))
    return len(statements), items


@pytest.mark.parametrize("listing", LISTINGS, ids=[listing.name for listing in LISTINGS])
def test_a_page_costs_the_same_statements_for_5_items_as_for_50(world, database, listing):
    headers = world.sender.headers
    if listing.as_user:
        headers = token_for(world.client, world.sender, USER)
    baseline = _items(_ask(world, listing, headers))

    listing.seed(world, SMALL)
    small, small_items = _counted(world, database, listing, headers)
    listing.seed(world, LARGE - SMALL)
    large, large_items = _counted(world, database, listing, headers)

    assert small_items - baseline == SMALL * listing.per_unit
    assert large_items - baseline == LARGE * listing.per_unit
    assert large == small, f"{small} statements for {SMALL} items, {large} for {LARGE}"

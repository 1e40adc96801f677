"""Promise 3 as a property: whatever senders, grants and recipients, the raw text of every
surface a sender reads (its notification, the listing, each message, search, export, the
delivery callback) never holds an address from the contact registry unless it holds
``contacts:read`` (or is an admin); a holder sees them whole, and everyone sees its own."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from models.message import Message
from models.notification import Notification
from settings import settings as herald_settings
from tasks.callbacks import _message_with_sender, callback_payload
from tasks.fanout import fanout
from tests.factories import idnp, make_sender
from tests.fakes.pushservice import Subscriber

SERIALS = itertools.count(1)
REGISTRY_KINDS = ("email", "phone", "telegram", "viber", "whatsapp", "webpush")
DIRECT_KINDS = ("email", "phone", "telegram", "viber", "whatsapp")
GRANTS = [(), ("contacts:write",), ("contacts:read",), ("contacts:read", "contacts:write")]


@pytest.fixture
def configured(monkeypatch):
    """Every channel configured (nothing is delivered here: no worker runs)."""
    for name, value in {
        "SMS_PROVIDER": "twilio",
        "SMS_ACCOUNT_SID": "AC" + "5" * 32,
        "SMS_AUTH_TOKEN": "token",
        "SMS_FROM": "Herald",
        "TELEGRAM_BOT_TOKEN": "7000000001:AAHerald-test_token0123456789abcdefgh",
        "VIBER_AUTH_TOKEN": "viber-token",
        "WHATSAPP_TOKEN": "whatsapp-token",
        "WHATSAPP_PHONE_NUMBER_ID": "1234567890",
        "VAPID_PRIVATE_KEY": "configured",
    }.items():
        monkeypatch.setattr(herald_settings, name, value)


_browser = Subscriber()


def address(kind: str, own: bool):
    """A fresh address of ``kind``: the registry's, or one a sender gives itself."""
    serial = next(SERIALS)
    return {
        "email": f"{'own' if own else 'reg'}{serial}@example.md",
        "phone": f"+373{79 if own else 69}{serial:06d}",
        "whatsapp": f"+373{78 if own else 60}{serial:06d}",
        "telegram": str((700_000_000 if own else 500_000_000) + serial),
        "viber": f"{'own' if own else 'reg'}Viber{serial:06d}xx=",
        "webpush": _browser.subscription(f"https://push.example.md/reg/{serial}-capability"),
    }[kind]


def spellings(kind: str, value) -> list[str]:
    """How an address might be written out: as given, a phone without its ``+``, a push
    subscription's endpoint."""
    if kind == "webpush":
        return [value["endpoint"]]
    if kind in ("phone", "whatsapp"):
        return [value, value.lstrip("+")]
    return [value]


@dataclass
class Person:
    idnp: str
    channels: list[tuple[str, object]] = field(default_factory=list)

    def secrets(self) -> list[str]:
        return [text for kind, value in self.channels for text in spellings(kind, value)]


people_plans = st.lists(
    st.lists(st.sampled_from(REGISTRY_KINDS), unique=True, max_size=4), min_size=1, max_size=3
)
sender_plans = st.lists(
    st.fixed_dictionaries(
        {
            "grants": st.sampled_from(GRANTS),
            "admin": st.booleans(),
            "people": st.sets(st.integers(0, 2), max_size=3),
            "direct": st.lists(st.sampled_from(DIRECT_KINDS), unique=True, max_size=3),
            "policy": st.sampled_from(["all", "fallback"]),
        }
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people_plan=people_plans, senders_plan=sender_plans)
def test_no_surface_shows_a_registry_address_without_contacts_read(
    client, db, configured, people_plan, senders_plan
):
    people = register(client, people_plan)
    secrets = [text for person in people for text in person.secrets()]
    for plan in senders_plan:
        chosen = [people[i] for i in sorted(plan["people"]) if i < len(people)]
        direct = [(kind, address(kind, own=True)) for kind in plan["direct"]]
        if not chosen and not direct:
            continue
        who = make_sender(f"s{next(SERIALS)}", admin=plan["admin"], permissions=plan["grants"])
        holder = plan["admin"] or "contacts:read" in plan["grants"]
        note(f"sender: {plan}")
        notification_id = send(client, who, chosen, direct, plan["policy"])
        texts = surfaces(client, who, notification_id)
        own = {value for _, value in direct} | {person.idnp for person in chosen}
        for value in own:
            assert value in texts[0]
        if not holder:
            for text in texts:
                for secret in secrets:
                    assert secret not in text
        shown = {m["id"]: m["destination"] for m in json.loads(texts[0])["messages"]}
        stored = {str(m.id): m.destination for m in messages_of(notification_id)}
        if holder:
            assert shown == stored
        for destination in {value for value in stored.values() if value}:
            found = search(
                client,
                who,
                ("DESTINATION", "EQUALS", destination),
                ("NOTIFICATION_KEY", "EQUALS", notification_id),
            )
            assert bool(found) == (holder or destination in own)


def register(client, plan: list[list[str]]) -> list[Person]:
    keeper = make_sender(f"keeper{next(SERIALS)}", permissions=["contacts:write"])
    people = []
    for kinds in plan:
        person = Person(idnp(next(SERIALS)), [(kind, address(kind, own=False)) for kind in kinds])
        body = {
            "idnp": person.idnp,
            "channels": [
                {"type": kind, "address": value, "priority": rank}
                for rank, (kind, value) in enumerate(person.channels)
            ],
        }
        response = client.post("/v1/contacts", json=body, headers=keeper.headers)
        assert response.status_code == 201, response.get_json()
        people.append(person)
    return people


def send(client, who, people: list[Person], direct: list, policy: str) -> str:
    recipients = [{"type": "idnp", "value": person.idnp} for person in people]
    recipients += [{"type": kind, "value": value} for kind, value in direct]
    body = {
        "recipients": recipients,
        "message": {"subject": "Dosar", "body": "Aprobat."},
        "channelPolicy": policy,
    }
    response = client.post("/v1/notifications", json=body, headers=who.headers)
    assert response.status_code == 202, response.get_json()
    notification_id = response.get_json()["id"]
    while Notification.get_by_id(notification_id).fanout_state == "pending":
        fanout(notification_id)  # what the fan-out job does; no worker runs here
    return notification_id


def messages_of(notification_id: str) -> list[Message]:
    return list(Message.select().where(Message.notification == notification_id))


def surfaces(client, who, notification_id: str) -> list[str]:
    """The raw text of every surface showing ``who`` this notification; its GET first."""
    texts = [
        get(client, who, f"/v1/notifications/{notification_id}"),
        get(client, who, "/v1/notifications?pageSize=200"),
        json.dumps(search(client, who, ("NOTIFICATION_KEY", "EQUALS", notification_id))),
        get(client, who, f"/v1/messages/export?notificationId={notification_id}"),
    ]
    for message in messages_of(notification_id):
        texts.append(get(client, who, f"/v1/messages/{message.id}"))
        loaded = _message_with_sender(str(message.id))  # as the callback job reads it
        texts.append(json.dumps(callback_payload(loaded, "sent", None)))
    return texts


def get(client, who, url: str) -> str:
    response = client.get(url, headers=who.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def search(client, who, *constraints: tuple) -> list:
    body = {
        "filterConstraints": [
            dict(zip(("filterSelection", "filterElement", "value"), c, strict=True))
            for c in constraints
        ]
    }
    response = client.post("/v1/messages/search?pageSize=200", json=body, headers=who.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()

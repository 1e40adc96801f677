"""``/v1/inbox/me`` and ``PUT /v1/inbox/push-subscription`` with a user token: the person's
language for the inbox page, and this browser's push subscription stored as their webpush
channel (a person in the registry only; validated as a webpush address is)."""

from __future__ import annotations

import json

import pytest

from models.contact import ContactChannel
from settings import settings
from tests.factories import contact_body, idnp, make_sender
from tests.fakes.pushservice import Subscriber
from tests.inbox_support import token_for

ENDPOINT = "https://push.example.md/push/abc123"


@pytest.fixture
def registry(db):
    return make_sender("registry", permissions=["contacts:read", "contacts:write"])


@pytest.fixture
def person(client, registry) -> str:
    body = contact_body(4, preferredLanguage="ru")
    assert client.post("/v1/contacts", json=body, headers=registry.headers).status_code == 201
    return body["idnp"]


def webpush_channels(client, registry, person: str) -> list[dict]:
    contact = client.get(f"/v1/contacts/{person}", headers=registry.headers).get_json()
    return [channel for channel in contact["channels"] if channel["type"] == "webpush"]


def test_me_gives_a_persons_language(client, sender, person):
    me = client.get("/v1/inbox/me", headers=token_for(client, sender, person))
    assert me.status_code == 200
    assert me.get_json() == {"user": person, "contact": True, "language": "ru"}


def test_me_for_a_user_who_is_no_contact(client, sender):
    me = client.get("/v1/inbox/me", headers=token_for(client, sender, "ana"))
    assert me.get_json() == {"user": "ana", "contact": False, "language": None}


def test_a_subscription_becomes_the_persons_webpush_channel(client, sender, registry, person):
    headers = token_for(client, sender, person)
    subscription = Subscriber().subscription(ENDPOINT)

    stored = client.put("/v1/inbox/push-subscription", json=subscription, headers=headers)

    assert stored.status_code == 200, stored.get_json()
    assert stored.get_json()["type"] == "webpush" and stored.get_json()["active"] is True
    (channel,) = webpush_channels(client, registry, person)
    assert channel["id"] == stored.get_json()["id"]
    row = ContactChannel.get_by_id(channel["id"])
    assert json.loads(row.address) == {"endpoint": ENDPOINT, "keys": subscription["keys"]}


def test_the_same_subscription_again_is_the_same_channel_switched_on(
    client, sender, registry, person
):
    headers = token_for(client, sender, person)
    subscription = Subscriber().subscription(ENDPOINT)
    first = client.put("/v1/inbox/push-subscription", json=subscription, headers=headers)
    ContactChannel.update(active=False, deactivated_reason="410 Gone").execute()

    again = client.put("/v1/inbox/push-subscription", json=subscription, headers=headers)

    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    row = ContactChannel.get_by_id(first.get_json()["id"])
    assert row.active and row.deactivated_reason is None
    assert len(webpush_channels(client, registry, person)) == 1


@pytest.mark.parametrize("user", ["ana", idnp(77)])
def test_a_user_who_is_no_registry_person_is_409(client, sender, user):
    subscription = Subscriber().subscription(ENDPOINT)
    answer = client.put(
        "/v1/inbox/push-subscription", json=subscription, headers=token_for(client, sender, user)
    )
    assert answer.status_code == 409
    assert "contact registry" in answer.get_json()["message"]
    assert ContactChannel.select().count() == 0


def spoiled(**changes) -> dict:
    subscription = Subscriber().subscription(ENDPOINT)
    for name, value in changes.items():
        if name in ("p256dh", "auth"):
            subscription["keys"][name] = value
        else:
            subscription[name] = value
    return subscription


@pytest.mark.parametrize(
    "body, field",
    [
        (spoiled(endpoint="ftp://push.example.md/x"), "endpoint"),
        (spoiled(endpoint="http://push.example.md/x"), "endpoint"),
        (spoiled(endpoint="https://127.0.0.1/push/x"), "endpoint"),
        (spoiled(endpoint="https://user:pw@push.example.md/x"), "endpoint"),
        (spoiled(endpoint="https://push.example.md/" + "x" * 2000), "endpoint"),
        (spoiled(p256dh="AAAA"), "keys"),
        (spoiled(auth="c2hvcnQ"), "keys"),
        (spoiled(p256dh="x" * 201), "keys"),
        (spoiled(keys=None), "keys"),
        (spoiled(extra=1), "extra"),
        ({"endpoint": ENDPOINT}, "keys"),
    ],
)
def test_a_bad_subscription_is_400_naming_the_field(client, sender, person, body, field):
    answer = client.put(
        "/v1/inbox/push-subscription", json=body, headers=token_for(client, sender, person)
    )
    assert answer.status_code == 400, answer.get_json()
    assert field in answer.get_json()["errors"], answer.get_json()
    assert ContactChannel.select().where(ContactChannel.type == "webpush").count() == 0


def test_loopback_endpoints_are_taken_where_private_urls_are_allowed(
    client, sender, person, monkeypatch
):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    body = spoiled(endpoint="http://127.0.0.1:8123/push/x")
    answer = client.put(
        "/v1/inbox/push-subscription", json=body, headers=token_for(client, sender, person)
    )
    assert answer.status_code == 200, answer.get_json()


def test_an_api_key_cannot_store_a_subscription(client, registry, person):
    answer = client.put("/v1/inbox/push-subscription", json=spoiled(), headers=registry.headers)
    assert answer.status_code == 403

"""Promise 3: the addresses the contact registry gives a message reach its sender only with
``contacts:read``. Sender A (no grant) sends to a person that the registry's keeper (B, with
``contacts:read`` and ``contacts:write``) registered with an email, a phone and a Telegram chat;
after fan-out and delivery, no surface shows A those addresses, while A's own addresses, and
everything to B and to an admin, are shown in full."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from api.auth import forget_checked_keys
from models.idempotency import IdempotencyRecord
from models.message import Message
from models.notification import Notification
from models.sender import Sender
from settings import settings
from tasks.fanout import fanout
from tests.factories import SenderWithKey, idnp, make_sender
from tests.fakes.receiver import SignedReceiver
from tests.support import wait_until

EMAIL, PHONE, CHAT = "ion.popescu@example.md", "+37369123401", "555123456"
#: What must never reach a sender without contacts:read, however it is spelled.
REGISTRY_ADDRESSES = (EMAIL, PHONE, PHONE.lstrip("+"), CHAT)
MASKED = {"email": "i***@example.md", "sms": "+373******01", "telegram": "*******56"}
FULL = {"email": EMAIL, "sms": PHONE, "telegram": CHAT}
DIRECT = "a.direct@example.md"
PERSON = idnp(700)


@pytest.fixture
def keeper(db):
    """B: keeps the registry, and may read it."""
    return make_sender("registry", permissions=["contacts:read", "contacts:write"])


@pytest.fixture
def callbacks(monkeypatch):
    """Start a signed callback receiver for a sender; all stopped after the test."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)  # receivers are on 127.0.0.1
    started = []

    def listen(who: SenderWithKey) -> SignedReceiver:
        receiver = SignedReceiver(who.sender.callback_secret).start()
        started.append(receiver)
        url = f"{receiver.url}/callbacks"
        Sender.update(callback_url=url).where(Sender.id == who.sender.id).execute()
        return receiver

    yield listen
    for receiver in started:
        receiver.stop()


@pytest.fixture
def person(client, keeper):
    """The person B registered: an email, a phone and a Telegram chat."""
    body = {
        "idnp": PERSON,
        "name": "Ion Popescu",
        "preferredLanguage": "ro",
        "channels": [
            {"type": "email", "address": EMAIL, "priority": 10},
            {"type": "phone", "address": PHONE, "priority": 20},
            {"type": "telegram", "address": CHAT, "priority": 30},
        ],
    }
    response = client.post("/v1/contacts", json=body, headers=keeper.headers)
    assert response.status_code == 201, response.get_json()
    return PERSON


@dataclass
class Sent:
    """A notification to the person (and to one address of the sender's own), delivered."""

    posted: dict
    callbacks: SignedReceiver

    @property
    def id(self) -> str:
        return self.posted["id"]

    def message_ids(self) -> dict[str, str]:
        """Message ids by channel; the direct email under ``direct``."""
        rows = Message.select().where(Message.notification == self.id)
        return {("direct" if m.destination == DIRECT else m.channel): str(m.id) for m in rows}


@pytest.fixture
def send_to_person(client, person, callbacks, smtp, telegram, twilio, worker):
    """``send(who)``: ``who`` sends to the person and to DIRECT; returns once every message is
    delivered and its callback received."""

    def send(who: SenderWithKey) -> Sent:
        receiver = callbacks(who)
        body = {
            "recipients": [{"type": "idnp", "value": person}, {"type": "email", "value": DIRECT}],
            "message": {"subject": "Dosar aprobat", "body": "Dosarul dvs. a fost aprobat."},
            "reference": "PRM-7",
        }
        response = client.post("/v1/notifications", json=body, headers=who.headers)
        assert response.status_code == 202, response.get_json()
        sent = Sent(response.get_json(), receiver)
        wait_until(lambda: Notification.get_by_id(sent.id).fanout_state == "done")
        wait_until(
            lambda: all(
                m.state in ("sent", "unread")
                for m in Message.select().where(Message.notification == sent.id)
            ),
            timeout=20,
        )
        wait_until(lambda: len(receiver.verified) >= 4, timeout=20)  # two emails, SMS, Telegram
        return sent

    return send


def get(client, who, url) -> str:
    response = client.get(url, headers=who.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def search(client, who, *constraints, **extra) -> str:
    body = {
        "filterConstraints": [
            dict(zip(("filterSelection", "filterElement", "value"), c, strict=False))
            for c in constraints
        ],
        **extra,
    }
    response = client.post("/v1/messages/search", json=body, headers=who.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_data(as_text=True)


def assert_no_registry_address(text: str) -> None:
    for address in REGISTRY_ADDRESSES:
        assert address not in text


def destinations(messages: list[dict]) -> dict[str, str]:
    """Destination by channel (the direct email under ``direct``, the cabinet under inapp)."""
    shown = {}
    for item in messages:
        key = "direct" if item["destination"] == DIRECT else item["channel"]
        shown[key] = item["destination"]
    return shown


def as_query(value) -> str:
    return quote(json.dumps(value))


def grant(who: SenderWithKey, *permissions: str) -> None:
    Sender.update(permissions=list(permissions)).where(Sender.id == who.sender.id).execute()
    forget_checked_keys()  # as a web process does after AUTH_CACHE_SECONDS


# --- GET /v1/notifications/{id}, the listing, the 202 -----------------------------------------
def test_a_notification_shows_registry_addresses_masked_and_own_ones_whole(
    client, sender, keeper, admin, send_to_person
):
    sent = send_to_person(sender)

    text = get(client, sender, f"/v1/notifications/{sent.id}")

    assert_no_registry_address(text)
    assert destinations(json.loads(text)["messages"]) == {
        **MASKED,
        "inapp": PERSON,
        "direct": DIRECT,
    }
    as_admin = json.loads(get(client, admin, f"/v1/notifications/{sent.id}"))
    assert destinations(as_admin["messages"]) == {**FULL, "inapp": PERSON, "direct": DIRECT}
    own = send_to_person(keeper)
    as_keeper = json.loads(get(client, keeper, f"/v1/notifications/{own.id}"))
    assert destinations(as_keeper["messages"]) == {**FULL, "inapp": PERSON, "direct": DIRECT}


def test_a_granted_key_sees_the_addresses_of_its_earlier_sends(client, sender, send_to_person):
    sent = send_to_person(sender)

    grant(sender, "contacts:read")

    shown = json.loads(get(client, sender, f"/v1/notifications/{sent.id}"))
    assert destinations(shown["messages"]) == {**FULL, "inapp": PERSON, "direct": DIRECT}


def test_the_listing_and_its_filter_show_no_registry_address(client, sender, send_to_person):
    send_to_person(sender)
    where = as_query({"where": {"recipient": PERSON}})

    listed = get(client, sender, "/v1/notifications")
    filtered = get(client, sender, f"/v1/notifications?filter={where}")

    for text in (listed, filtered):
        assert_no_registry_address(text)
        [notification] = json.loads(text)
        assert destinations(notification["messages"])["email"] == MASKED["email"]


def test_the_accept_answer_and_its_replay_show_no_registry_address(client, sender, person, worker):
    body = {
        "recipients": [{"type": "idnp", "value": person}, {"type": "email", "value": DIRECT}],
        "message": {"subject": "Dosar", "body": "Aprobat."},
        "channels": ["email", "inapp"],
    }
    headers = {**sender.headers, "Idempotency-Key": "k-1"}
    first = client.post("/v1/notifications", json=body, headers=headers)
    wait_until(lambda: Notification.get_by_id(first.get_json()["id"]).fanout_state == "done")
    IdempotencyRecord.update(response=None).execute()  # as if the first answer was never saved
    again = client.post("/v1/notifications", json=body, headers=headers)

    assert first.status_code == again.status_code == 202
    assert destinations(first.get_json()["messages"]) == {"direct": DIRECT}
    assert_no_registry_address(again.get_data(as_text=True))
    assert destinations(again.get_json()["messages"])["email"] == MASKED["email"]


# --- GET /v1/messages/{id}, search, export ------------------------------------------------
def test_a_message_shows_no_registry_address_in_any_field(client, sender, send_to_person):
    sent = send_to_person(sender)
    ids = sent.message_ids()

    for channel in ("email", "sms", "telegram"):
        text = get(client, sender, f"/v1/messages/{ids[channel]}")
        assert_no_registry_address(text)
        assert json.loads(text)["destination"] == MASKED[channel]
    direct = json.loads(get(client, sender, f"/v1/messages/{ids['direct']}"))
    assert direct["destination"] == DIRECT
    grant(sender, "contacts:read")
    telegram = json.loads(get(client, sender, f"/v1/messages/{ids['telegram']}"))
    assert (telegram["destination"], telegram["details"]) == (CHAT, {"chatId": int(CHAT)})


def test_a_provider_error_naming_the_address_is_masked(client, sender, person, smtp, worker):
    smtp.rcpt_replies[EMAIL] = f"550 5.1.1 <{EMAIL}>: Recipient address rejected"
    body = {
        "recipients": [{"type": "idnp", "value": person}],
        "message": {"subject": "Dosar", "body": "Aprobat."},
        "channels": ["email"],
    }
    posted = client.post("/v1/notifications", json=body, headers=sender.headers).get_json()
    wait_until(lambda: Notification.get_by_id(posted["id"]).fanout_state == "done")
    failed = wait_until(
        lambda: Message.get_or_none(
            (Message.notification == posted["id"]) & (Message.state == "failed")
        )
    )
    assert EMAIL in failed.last_error  # what the server said is kept as it said it

    text = get(client, sender, f"/v1/messages/{failed.id}")

    assert_no_registry_address(text)
    shown = json.loads(text)
    assert MASKED["email"] in shown["lastError"]
    assert MASKED["email"] in shown["attemptHistory"][0]["error"]


def test_search_results_and_the_export_show_no_registry_address(
    client, sender, keeper, send_to_person
):
    send_to_person(sender)
    send_to_person(keeper)

    found = search(client, sender)
    exported = get(client, sender, "/v1/messages/export")

    for text in (found, exported):
        assert_no_registry_address(text)
    assert destinations(json.loads(found)) == {**MASKED, "inapp": PERSON, "direct": DIRECT}
    for masked in MASKED.values():
        assert masked in exported
    keeper_found = json.loads(search(client, keeper))
    assert destinations(keeper_found) == {**FULL, "inapp": PERSON, "direct": DIRECT}
    assert EMAIL in get(client, keeper, "/v1/messages/export")


# --- filtering and sorting on the destination ----------------------------------------------
@pytest.mark.parametrize(
    "constraint",
    [
        ("DESTINATION", "EQUALS", EMAIL),
        ("DESTINATION", "STARTS_WITH", "ion."),
        ("DESTINATION", "EQUALS", PHONE),
        ("DESTINATION", "STARTS_WITH", "5551"),
    ],
)
def test_a_destination_filter_finds_no_registry_address(
    client, sender, keeper, send_to_person, constraint
):
    send_to_person(sender)

    assert json.loads(search(client, sender, constraint)) == []
    export = f"/v1/messages/export?filterConstraints={as_query([_wire(constraint)])}"
    assert get(client, sender, export).count("\n") == 1  # the header alone
    where = as_query({"where": {"destination": {"like": f"{constraint[2]}%"}}})
    assert json.loads(get(client, sender, f"/v1/notifications?filter={where}")) == []
    mine = send_to_person(keeper)
    found = json.loads(search(client, keeper, constraint))
    assert {item["notificationId"] for item in found} == {mine.id}


def test_a_destination_filter_still_finds_the_senders_own_addresses(client, sender, send_to_person):
    sent = send_to_person(sender)

    found = json.loads(search(client, sender, ("DESTINATION", "STARTS_WITH", "a.")))
    unequal = json.loads(search(client, sender, ("DESTINATION", "NOT_EMPTY")))
    where = as_query({"where": {"destination": {"neq": "nobody@example.md"}}})
    listed = json.loads(get(client, sender, f"/v1/notifications?filter={where}"))

    assert [item["destination"] for item in found] == [DIRECT]
    assert {item["destination"] for item in unequal} == {DIRECT, PERSON}
    assert [n["id"] for n in listed] == [sent.id]


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_sorting_by_destination_does_not_order_registry_addresses(
    client, sender, send_to_person, order
):
    """Fan-out made the email, SMS and Telegram messages in that order (their priority); by
    address they would sort SMS, Telegram, email."""
    ids = send_to_person(sender).message_ids()
    registry = {ids[channel] for channel in MASKED}

    found = json.loads(search(client, sender, sortBy="DESTINATION", sortOrder=order))

    hidden = [item["id"] for item in found if item["id"] in registry]
    assert hidden == sorted(registry, reverse=order == "DESC")  # the tiebreak: time-ordered ids


def _wire(constraint: tuple) -> dict:
    return dict(zip(("filterSelection", "filterElement", "value"), constraint, strict=False))


# --- GET /v1/contacts/{idnp}/notifications ------------------------------------------------
def test_the_persons_history_needs_contacts_read_and_then_shows_addresses(
    client, sender, send_to_person
):
    sent = send_to_person(sender)
    url = f"/v1/contacts/{PERSON}/notifications"

    assert client.get(url, headers=sender.headers).status_code == 403
    grant(sender, "contacts:read")
    [notification] = json.loads(get(client, sender, url))
    assert notification["id"] == sent.id
    assert destinations(notification["messages"]) == {**FULL, "inapp": PERSON, "direct": DIRECT}


# --- delivery callbacks ---------------------------------------------------------------------
def test_callbacks_carry_no_registry_address_to_a_sender_without_the_grant(
    client, sender, keeper, send_to_person
):
    sent = send_to_person(sender)
    ids = {value: key for key, value in sent.message_ids().items()}

    bodies = [request.body.decode() for request in sent.callbacks.verified]
    for body in bodies:
        assert_no_registry_address(body)
    shown = {ids[b["messageId"]]: b["destination"] for b in map(json.loads, bodies)}
    assert shown == {**MASKED, "direct": DIRECT}
    own = send_to_person(keeper)
    ids = {value: key for key, value in own.message_ids().items()}
    shown = {ids[r.json()["messageId"]]: r.json()["destination"] for r in own.callbacks.verified}
    assert shown == {**FULL, "direct": DIRECT}


# --- broadcasts ----------------------------------------------------------------------------
def test_a_broadcast_shows_its_subscribers_addresses_masked(client, sender, keeper, person):
    """No worker runs: the fan-out job is run here, as the worker would."""
    subscribe = {"serviceName": "water"}
    url = f"/v1/contacts/{person}/subscriptions"
    assert client.post(url, json=subscribe, headers=keeper.headers).status_code == 201
    body = {
        "isBroadcast": True,
        "serviceName": "water",
        "channels": ["email"],
        "message": {"subject": "Apa", "body": "Apa se oprește mâine."},
    }
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    posted = response.get_json()
    fanout(posted["id"])

    text = get(client, sender, f"/v1/notifications/{posted['id']}")

    assert_no_registry_address(text)
    assert destinations(json.loads(text)["messages"]) == {"email": MASKED["email"]}


# --- after the contact is gone ------------------------------------------------------------
def test_addresses_stay_masked_after_the_contact_is_deleted(client, sender, keeper, send_to_person):
    sent = send_to_person(sender)
    assert client.delete(f"/v1/contacts/{PERSON}", headers=keeper.headers).status_code == 204
    assert not Message.select().where(Message.contact.is_null(False)).exists()

    text = get(client, sender, f"/v1/notifications/{sent.id}")

    assert_no_registry_address(text)
    assert json.loads(search(client, sender, ("DESTINATION", "EQUALS", EMAIL))) == []

"""MNotify's forms on /v1 itself (seed ``000_…``): its recipient fragments sent verbatim, and
one contract test per "extended capability" it documents (contact management, notification
history, template CRUD), asserting what an MNotify integrator relies on, including where it
meets Herald's promises: isolation between senders, the cabinet copy not counting as an active
channel, registry addresses masked without ``contacts:read``.

Herald keeps the IDNP check digit, so the seed's example IDNP ``2222222222222`` (which fails
it) is a 400 naming ``recipients.0.value``; the README's MNotify note says so."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from channels import RECIPIENT_TYPES
from models.contact import CONTACT_CHANNEL_TYPES, IDNP
from models.message import Message
from models.notification import Notification
from tasks.requests import RecipientSchema, TypeName
from tests.factories import SenderWithKey, idnp, make_sender, visit_reminder
from tests.support import wait_until

#: The seed's two "Communication format" fragments, character for character.
SEED_IDNP_FRAGMENT = """"recipients": [
 {
 "value": "2222222222222",
 "type": "Idnp"
 }
 ]"""
SEED_EMAIL_FRAGMENT = """"recipients": [
 {
 "value": "artur.reaboi@egov.md",
 "type": "email"
 }
 ]"""
MESSAGE = {"subject": "Programare confirmată", "body": "Vă așteptăm luni la ora 9:00."}
PERSON = idnp(17)
EMAIL = "artur.reaboi@egov.md"


def notification_with(fragment: str, **extra) -> dict:
    """A complete POST /v1/notifications body around a seed fragment (a JSON object member)."""
    body = json.loads("{" + fragment + "}")
    return {**body, "message": MESSAGE, **extra}


@pytest.fixture
def registrar(db) -> SenderWithKey:
    """A sender's system that keeps its contacts in Herald (and so may read them)."""
    return make_sender("registry", permissions=["contacts:read", "contacts:write"])


def post(client, who: SenderWithKey, body: dict) -> dict:
    response = client.post("/v1/notifications", json=body, headers=who.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def get(client, who: SenderWithKey, url: str):
    response = client.get(url, headers=who.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def register(client, who: SenderWithKey, serial_idnp: str = PERSON, **body) -> dict:
    contact = {"idnp": serial_idnp, "name": "Artur Reaboi", **body}
    response = client.post("/v1/contacts", json=contact, headers=who.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def delivered(notification_id: str) -> bool:
    if Notification.get_by_id(notification_id).fanout_state == "pending":
        return False
    rows = Message.select().where(Message.notification == notification_id)
    return bool(rows) and all(m.state in ("sent", "unread", "failed") for m in rows)


def channels_of(notification_id: str) -> set[tuple[str, str]]:
    rows = Message.select().where(Message.notification == notification_id)
    return {(m.channel, m.destination) for m in rows}


# --- the recipient form --------------------------------------------------------------------
def test_the_seeds_email_fragment_is_accepted_and_delivered(client, sender, smtp, worker):
    posted = post(client, sender, notification_with(SEED_EMAIL_FRAGMENT))

    assert [(m["channel"], m["destination"]) for m in posted["messages"]] == [("email", EMAIL)]
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == [EMAIL]


def test_the_seeds_idnp_fragment_is_refused_for_its_check_digit_only(client, sender):
    response = client.post(
        "/v1/notifications", json=notification_with(SEED_IDNP_FRAGMENT), headers=sender.headers
    )

    assert response.status_code == 400
    body = response.get_json()
    assert (body["code"], body["status"]) == (400, "Bad Request")
    assert body["errors"] == {"recipients": {"0": {"value": ["The IDNP check digit is wrong."]}}}
    assert Notification.select().count() == 0


def test_the_idnp_form_with_a_valid_idnp_fans_out_to_the_persons_channels(
    client, sender, registrar, smtp, worker
):
    register(client, registrar, channels=[{"type": "email", "address": EMAIL}])
    fragment = SEED_IDNP_FRAGMENT.replace("2222222222222", PERSON)

    posted = post(client, sender, notification_with(fragment))

    wait_until(lambda: delivered(posted["id"]), timeout=20)
    assert channels_of(posted["id"]) == {("email", EMAIL), ("inapp", PERSON)}
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == [EMAIL]


@pytest.mark.parametrize(
    ("type_", "value"),
    [("IDNP", PERSON), ("iDnP", PERSON), ("Email", EMAIL), ("EMAIL", EMAIL), ("User", "u-17")],
)
def test_any_case_of_a_type_is_taken_and_stored_as_herald_names_it(
    client, sender, smtp, type_, value
):
    posted = post(
        client, sender, {"recipients": [{"type": type_, "value": value}], "message": MESSAGE}
    )

    stored = Notification.get_by_id(posted["id"])
    kind = type_.lower()
    if kind == IDNP:
        assert stored.recipients == [{"idnp": PERSON, "attributes": None, "language": None}]
    else:
        assert [m["channel"] for m in posted["messages"]] == [RECIPIENT_TYPES[kind]]


def test_a_reminder_stores_and_shows_the_type_as_herald_names_it(client, sender):
    body = {
        "recipients": [{"type": "Idnp", "value": PERSON}],
        "message": MESSAGE,
        "at": ["2099-01-01T09:00:00+02:00"],
    }
    response = client.post("/v1/reminders", json=body, headers=sender.headers)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["request"]["recipients"] == [{"type": "idnp", "value": PERSON}]


@st.composite
def any_casing(draw, names):
    name = draw(st.sampled_from(sorted(names)))
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return name, "".join(c.upper() if up else c for c, up in zip(name, flips, strict=True))


@given(any_casing([*RECIPIENT_TYPES, IDNP]))
def test_every_recipient_type_loads_in_any_case(drawn):
    name, spelled = drawn
    field = RecipientSchema().fields["type"]

    assert field.deserialize(spelled) == name


@given(st.text(max_size=12))
def test_nothing_else_is_a_recipient_type(text):
    names = {*RECIPIENT_TYPES, IDNP}
    field = TypeName(names, description="test")
    if text.isascii() and text.lower() in names:
        assert field.deserialize(text) == text.lower()
    else:
        with pytest.raises(ValidationError, match="Must be one of"):
            field.deserialize(text)


@pytest.mark.parametrize("spelled", ["WEBHOO\u212a", "\u0130DNP", "idnp\n", " email", "e-mail"])
def test_lookalikes_are_not_types(spelled):
    """Not what the documented pattern admits: a Kelvin sign, a dotted I, a trailing newline."""
    with pytest.raises(ValidationError, match="Must be one of"):
        RecipientSchema().fields["type"].deserialize(spelled)


def test_the_openapi_document_describes_the_type_as_accepted(client):
    spec = client.get("/openapi.json").get_json()
    recipient = spec["components"]["schemas"]["Recipient"]["properties"]["type"]
    channel = spec["components"]["schemas"]["ContactChannel"]["properties"]["type"]

    assert "enum" not in recipient and "enum" not in channel
    assert "case does not matter" in recipient["description"]
    for spelled in ("Idnp", "IDNP", "email", "Email", "WebPush"):
        assert re.fullmatch(recipient["pattern"], spelled)
    assert not re.fullmatch(recipient["pattern"], "fax")
    for kind in CONTACT_CHANNEL_TYPES:
        assert re.fullmatch(channel["pattern"], kind.upper())
    assert not re.fullmatch(channel["pattern"], "idnp")


# --- contact management ----------------------------------------------------------------------
def test_contacts_are_added_with_channels_in_mnotifys_type_spelling_and_listed(
    client, registrar, sender
):
    channels = [
        {"type": "Email", "address": EMAIL, "priority": 10},
        {"type": "TELEGRAM", "address": "123456789", "priority": 20},
    ]
    added = register(client, registrar, channels=channels, preferredLanguage="ro")
    again = client.post(
        f"/v1/contacts/{PERSON}/channels",
        json={"type": "EMAIL", "address": EMAIL},
        headers=registrar.headers,
    )

    assert [(c["type"], c["address"]) for c in added["channels"]] == [
        ("email", EMAIL),
        ("telegram", "123456789"),
    ]
    assert again.status_code == 409  # the same channel, whatever the spelling of its type
    listed = get(client, registrar, "/v1/contacts?channelType=Email")
    assert [c["idnp"] for c in listed] == [PERSON]
    assert get(client, registrar, "/v1/contacts?channelType=viber") == []
    refused = client.post("/v1/contacts", json={"idnp": idnp(18)}, headers=sender.headers)
    assert refused.status_code == 403  # adding needs contacts:write, listing contacts:read
    assert client.get("/v1/contacts", headers=sender.headers).status_code == 403


def test_the_preferred_language_is_what_the_persons_notifications_render_in(
    client, registrar, sender, smtp, worker
):
    register(client, registrar, channels=[{"type": "email", "address": EMAIL}])
    assert (
        client.post("/v1/templates", json=visit_reminder(), headers=sender.headers).status_code
        == 201
    )

    changed = client.put(
        f"/v1/contacts/{PERSON}/language",
        json={"preferredLanguage": "ru"},
        headers=registrar.headers,
    )
    post(
        client,
        sender,
        {
            "recipients": [{"value": PERSON, "type": "Idnp"}],
            "template": "visit-reminder",
            "attributes": {"visitDate": "2026-12-01T09:00:00+02:00"},
            "channels": ["email"],
        },
    )

    assert changed.status_code == 200 and changed.get_json()["preferredLanguage"] == "ru"
    (mail,) = smtp.wait_for(1)
    assert mail.email["Subject"].startswith("Визит")


def test_reachability_counts_active_channels_but_not_the_personal_cabinet(
    client, registrar, sender, smtp, worker
):
    """A person with no channel still gets the cabinet copy of what is sent to them, yet is
    not reachable; an inactive channel, or one this server cannot send on, does not count."""
    register(client, registrar)
    url = f"/v1/contacts/{PERSON}/reachability"
    posted = post(
        client, sender, {"recipients": [{"type": "Idnp", "value": PERSON}], "message": MESSAGE}
    )
    wait_until(lambda: delivered(posted["id"]), timeout=20)
    assert ("inapp", PERSON) in channels_of(posted["id"])  # the cabinet copy

    assert get(client, registrar, url) == {
        "exists": True,
        "hasActiveChannel": False,
        "activeChannels": [],
        "preferences": {"channels": {}, "services": {}},
    }
    viber = client.post(
        f"/v1/contacts/{PERSON}/channels",
        json={"type": "Viber", "address": "01234567890123456789abcd"},
        headers=registrar.headers,
    )
    assert viber.status_code == 201, viber.get_json()
    assert get(client, registrar, url)["hasActiveChannel"] is False  # Viber is not configured
    email = client.post(
        f"/v1/contacts/{PERSON}/channels",
        json={"type": "Email", "address": EMAIL},
        headers=registrar.headers,
    ).get_json()
    reach = get(client, registrar, url)
    assert reach["hasActiveChannel"] is True
    assert [(c["id"], c["type"]) for c in reach["activeChannels"]] == [(email["id"], "email")]
    client.patch(
        f"/v1/contacts/{PERSON}/channels/{email['id']}",
        json={"active": False},
        headers=registrar.headers,
    )
    assert get(client, registrar, url)["hasActiveChannel"] is False
    assert get(client, registrar, f"/v1/contacts/{idnp(19)}/reachability") == {
        "exists": False,
        "hasActiveChannel": False,
        "activeChannels": [],
        "preferences": None,
    }
    assert client.get(url, headers=sender.headers).status_code == 403


# --- notification history ------------------------------------------------------------------
@pytest.fixture
def person_with_email(client, registrar) -> str:
    register(client, registrar, channels=[{"type": "email", "address": EMAIL}])
    return PERSON


def send_to_person(client, who: SenderWithKey, person: str, reference: str) -> dict:
    body = {
        "recipients": [
            {"type": "Idnp", "value": person},
            {"type": "email", "value": "own@example.md"},
        ],
        "message": MESSAGE,
        "reference": reference,
    }
    posted = post(client, who, body)
    wait_until(lambda: delivered(posted["id"]), timeout=20)
    return posted


def destinations(notification: dict) -> set[tuple[str, str]]:
    return {(m["channel"], m["destination"]) for m in notification["messages"]}


def test_the_senders_history_lists_its_own_notifications_with_registry_addresses_masked(
    client, sender, other_sender, admin, person_with_email, smtp, worker
):
    ours = send_to_person(client, sender, person_with_email, "ours")
    theirs = send_to_person(client, other_sender, person_with_email, "theirs")

    listed = get(client, sender, "/v1/notifications")
    everything = get(client, admin, "/v1/notifications")

    assert [n["id"] for n in listed] == [ours["id"]]
    assert destinations(listed[0]) == {
        ("email", "a***@egov.md"),  # the registry's address, masked: no contacts:read
        ("email", "own@example.md"),  # the sender's own address, whole
        ("inapp", PERSON),
    }
    assert EMAIL not in json.dumps(listed)
    assert (
        client.get(f"/v1/notifications/{theirs['id']}", headers=sender.headers).status_code == 404
    )
    assert {n["id"] for n in everything} == {ours["id"], theirs["id"]}
    assert all(("email", EMAIL) in destinations(n) for n in everything)


def test_the_history_of_a_person_by_idnp_is_the_senders_own(
    client, sender, other_sender, admin, person_with_email, smtp, worker
):
    ours = send_to_person(client, sender, person_with_email, "ours")
    theirs = send_to_person(client, other_sender, person_with_email, "theirs")
    send_to_person(client, sender, idnp(20), "someone else")
    reader = make_sender("reader", permissions=["contacts:read"])
    read_by_reader = send_to_person(client, reader, person_with_email, "reader's")
    by_idnp = f"/v1/contacts/{PERSON}/notifications"
    where = quote(json.dumps({"where": {"recipient": PERSON}}))

    assert client.get(by_idnp, headers=sender.headers).status_code == 403
    filtered = get(client, sender, f"/v1/notifications?filter={where}")
    assert [n["id"] for n in filtered] == [ours["id"]]
    assert EMAIL not in json.dumps(filtered)
    assert [n["id"] for n in get(client, reader, by_idnp)] == [read_by_reader["id"]]
    assert ("email", EMAIL) in destinations(get(client, reader, by_idnp)[0])
    seen_by_admin = get(client, admin, by_idnp)
    assert {n["id"] for n in seen_by_admin} == {ours["id"], theirs["id"], read_by_reader["id"]}


# --- template management ---------------------------------------------------------------------
def test_templates_are_created_read_updated_and_deleted_and_fill_in_the_recipient(
    client, sender, other_sender, registrar, smtp, worker
):
    register(client, registrar, channels=[{"type": "email", "address": EMAIL}])
    created = client.post("/v1/templates", json=visit_reminder(), headers=sender.headers)
    assert created.status_code == 201 and created.get_json()["version"] == 1
    assert get(client, sender, "/v1/templates/visit-reminder")["id"] == created.get_json()["id"]

    body = visit_reminder()
    del body["code"]
    body["contents"][0]["body"] = "{{ contact.name }}: vizită pe {{ visitDate | date }}."
    replaced = client.put("/v1/templates/visit-reminder", json=body, headers=sender.headers)
    patched = client.patch(
        "/v1/templates/visit-reminder", json={"name": "Vizită"}, headers=sender.headers
    )
    assert (replaced.status_code, replaced.get_json()["version"]) == (200, 2)
    assert (patched.status_code, patched.get_json()["version"]) == (200, 3)

    post(
        client,
        sender,
        {
            "recipients": [{"value": PERSON, "type": "Idnp"}],
            "template": "visit-reminder",
            "attributes": {"visitDate": "2026-12-01T09:00:00+02:00"},
            "channels": ["email"],
        },
    )
    (mail,) = smtp.wait_for(1)
    assert mail.email.get_body(("plain",)).get_content().startswith("Artur Reaboi: vizită pe")

    assert (
        client.get("/v1/templates/visit-reminder", headers=other_sender.headers).status_code == 404
    )
    assert client.delete("/v1/templates/visit-reminder", headers=sender.headers).status_code == 204
    assert client.get("/v1/templates/visit-reminder", headers=sender.headers).status_code == 404

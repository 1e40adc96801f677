"""Preferences through the API: a contact's (contacts:read / contacts:write) and an inbox
user's own (user token); the document's validation; deleting a contact forgets them."""

import pytest

from models.preference import MAX_SERVICES, Preference, opted_out
from tests.factories import contact_body, idnp, make_sender
from tests.inbox_support import token_for

DOCUMENT = {"channels": {"sms": False}, "services": {"permits": {"email": False, "inapp": True}}}
EMPTY = {"channels": {}, "services": {}}


@pytest.fixture
def registrar(db):
    return make_sender("registry", permissions=["contacts:read", "contacts:write"])


@pytest.fixture
def person(client, registrar):
    response = client.post("/v1/contacts", json=contact_body(), headers=registrar.headers)
    assert response.status_code == 201, response.get_json()
    return idnp(1)


def test_a_contact_s_preferences_are_replaced_whole_and_read_back(client, registrar, person):
    url = f"/v1/contacts/{person}/preferences"
    assert client.get(url, headers=registrar.headers).get_json() == EMPTY

    put = client.put(url, json=DOCUMENT, headers=registrar.headers)
    assert put.status_code == 200, put.get_json()
    assert put.get_json() == DOCUMENT
    assert client.get(url, headers=registrar.headers).get_json() == DOCUMENT
    assert opted_out([person], "permits") == {person: {"sms", "email"}}
    assert opted_out([person], "taxes") == {person: {"sms"}}

    replaced = client.put(url, json={"channels": {"viber": False}}, headers=registrar.headers)
    assert replaced.get_json() == {"channels": {"viber": False}, "services": {}}
    assert opted_out([person], "permits") == {person: {"viber"}}


def test_an_unknown_contact_is_404(client, registrar):
    url = f"/v1/contacts/{idnp(99)}/preferences"
    assert client.get(url, headers=registrar.headers).status_code == 404
    assert client.put(url, json=DOCUMENT, headers=registrar.headers).status_code == 404
    assert Preference.select().count() == 0


def test_reading_needs_contacts_read_and_writing_contacts_write(client, person):
    url = f"/v1/contacts/{person}/preferences"
    nobody = make_sender("plain")
    reader = make_sender("reader", permissions=["contacts:read"])
    writer = make_sender("writer", permissions=["contacts:write"])
    assert client.get(url, headers=nobody.headers).status_code == 403
    assert client.put(url, json=DOCUMENT, headers=nobody.headers).status_code == 403
    assert client.put(url, json=DOCUMENT, headers=reader.headers).status_code == 403
    assert client.get(url, headers=writer.headers).status_code == 403
    assert Preference.select().count() == 0
    assert client.put(url, json=DOCUMENT, headers=writer.headers).status_code == 200
    assert client.get(url, headers=reader.headers).get_json() == DOCUMENT


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"channels": {"fax": False}}, ("channels", "fax", "key")),
        ({"channels": {"SMS": False}}, ("channels", "SMS", "key")),
        ({"channels": {"sms": "false"}}, ("channels", "sms", "value")),
        ({"channels": {"sms": 0}}, ("channels", "sms", "value")),
        ({"channels": {"sms": None}}, ("channels", "sms", "value")),
        ({"services": {"permits": {"pigeon": False}}}, ("services", "permits", "value")),
        ({"services": {"x" * 101: {"sms": False}}}, ("services", "x" * 101, "key")),
        ({"services": {"": {"sms": False}}}, ("services", "", "key")),
        ({"services": {"permits": ["sms"]}}, ("services", "permits", "value")),
        ({"services": {f"s{n}": {} for n in range(MAX_SERVICES + 1)}}, ("services",)),
        ({"channels": {}, "topics": {}}, ("topics",)),
        ({"channels": ["sms"]}, ("channels",)),
    ],
)
def test_a_bad_document_is_a_400_naming_the_key(client, registrar, person, document, where):
    response = client.put(
        f"/v1/contacts/{person}/preferences", json=document, headers=registrar.headers
    )
    assert response.status_code == 400, response.get_json()
    errors = response.get_json()["errors"]
    for key in where:
        assert key in errors, errors
        errors = errors[key]
    assert Preference.select().count() == 0


def test_an_inbox_user_reads_and_writes_only_their_own(client, sender):
    ana, ion = token_for(client, sender, "ana"), token_for(client, sender, "ion")
    put = client.put("/v1/inbox/preferences", json=DOCUMENT, headers=ana)
    assert put.status_code == 200, put.get_json()
    assert put.get_json() == DOCUMENT
    assert client.get("/v1/inbox/preferences", headers=ana).get_json() == DOCUMENT
    assert client.get("/v1/inbox/preferences", headers=ion).get_json() == EMPTY
    assert opted_out(["ana", "ion"], "permits") == {"ana": {"sms", "email"}}
    bad = client.put("/v1/inbox/preferences", json={"channels": {"fax": False}}, headers=ion)
    assert bad.status_code == 400
    # an API key is not a user token
    assert client.get("/v1/inbox/preferences", headers=sender.headers).status_code == 403


def test_the_inbox_and_the_registry_name_a_person_alike(client, sender, registrar, person):
    mine = token_for(client, sender, person)
    client.put("/v1/inbox/preferences", json={"channels": {"email": False}}, headers=mine)
    read = client.get(f"/v1/contacts/{person}/preferences", headers=registrar.headers)
    assert read.get_json() == {"channels": {"email": False}, "services": {}}


def test_deleting_a_contact_forgets_their_preferences(client, registrar, person):
    url = f"/v1/contacts/{person}/preferences"
    client.put(url, json=DOCUMENT, headers=registrar.headers)
    other = contact_body(2)
    client.post("/v1/contacts", json=other, headers=registrar.headers)
    client.put(f"/v1/contacts/{idnp(2)}/preferences", json=DOCUMENT, headers=registrar.headers)

    assert client.delete(f"/v1/contacts/{person}", headers=registrar.headers).status_code == 204
    assert Preference.select().where(Preference.subject == person).count() == 0
    assert Preference.select().where(Preference.subject == idnp(2)).count() == 3
    # registered again, the person starts from the defaults
    client.post("/v1/contacts", json=contact_body(), headers=registrar.headers)
    assert client.get(url, headers=registrar.headers).get_json() == EMPTY


def test_reachability_shows_the_preferences_and_leaves_out_channels_opted_out_everywhere(
    client, registrar, person, telegram
):
    url = f"/v1/contacts/{person}/reachability"
    before = client.get(url, headers=registrar.headers).get_json()
    assert before["preferences"] == EMPTY
    assert [c["type"] for c in before["activeChannels"]] == ["email", "telegram"]

    document = {"channels": {"email": False}, "services": {"permits": {"telegram": False}}}
    client.put(f"/v1/contacts/{person}/preferences", json=document, headers=registrar.headers)
    after = client.get(url, headers=registrar.headers).get_json()
    assert after["preferences"] == document
    assert [c["type"] for c in after["activeChannels"]] == ["telegram"]  # per service: kept
    assert after["hasActiveChannel"] is True

    client.put(
        f"/v1/contacts/{person}/preferences",
        json={"channels": {"email": False, "telegram": False}},
        headers=registrar.headers,
    )
    gone = client.get(url, headers=registrar.headers).get_json()
    assert gone["activeChannels"] == [] and gone["hasActiveChannel"] is False
    missing = client.get(f"/v1/contacts/{idnp(77)}/reachability", headers=registrar.headers)
    assert missing.get_json()["preferences"] is None


def test_the_cli_grants_send_critical(herald):
    herald("senders", "create", "alerts")
    assert herald("senders", "grant", "alerts", "send_critical").returncode == 0
    assert "send_critical" in herald("senders", "list").stdout


def test_a_reminder_cannot_be_critical(client, admin):
    body = {
        "recipients": [{"type": "email", "value": "a@example.md"}],
        "message": {"subject": "S", "body": "B"},
        "at": ["2099-01-05T09:00:00+02:00"],
        "critical": True,
    }
    response = client.post("/v1/reminders", json=body, headers=admin.headers)
    assert response.status_code == 400
    assert "critical" in response.get_json()["errors"]

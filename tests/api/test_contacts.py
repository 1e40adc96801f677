"""/v1/contacts: the registry of people by IDNP, their channels, language and subscriptions."""

import json

import pytest

from models.contact import Contact, ContactChannel, idnp_problem
from settings import settings
from tests.factories import contact_body, idnp, make_sender


@pytest.fixture
def registrar(db):
    return make_sender("registry", permissions=["contacts:read", "contacts:write"])


def create(client, who, body=None):
    response = client.post("/v1/contacts", json=body or contact_body(), headers=who.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_idnp_check_digit():
    assert idnp_problem("2001234567891") is None  # the example in DESIGN.md
    assert idnp_problem(idnp(42)) is None
    wrong = idnp(42)[:-1] + str((int(idnp(42)[-1]) + 1) % 10)
    assert idnp_problem(wrong) == "The IDNP check digit is wrong."
    assert idnp_problem("123") == "An IDNP is 13 digits."
    assert idnp_problem("20012345678９0") == "An IDNP is 13 digits."  # a full-width digit


def test_register_and_read_a_contact(client, registrar):
    created = create(client, registrar)

    assert created["idnp"] == idnp(1)
    assert created["preferredLanguage"] == "ro"
    assert [(c["type"], c["address"], c["active"]) for c in created["channels"]] == [
        ("email", "p1@example.md", True),
        ("telegram", "100000001", True),
    ]
    fetched = client.get(f"/v1/contacts/{idnp(1)}", headers=registrar.headers).get_json()
    assert fetched == created


def test_duplicate_idnp_is_409(client, registrar):
    create(client, registrar)
    again = client.post("/v1/contacts", json=contact_body(), headers=registrar.headers)
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"idnp": "12345"}, "idnp"),
        ({"idnp": "200123456789a"}, "idnp"),
        ({"preferredLanguage": "xx-zz"}, "preferredLanguage"),
        ({"channels": [{"type": "email", "address": "not-an-email"}]}, "channels"),
        ({"channels": [{"type": "fax", "address": "1"}]}, "channels"),
        (
            {
                "channels": [
                    {"type": "email", "address": "a@b.md"},
                    {"type": "email", "address": "a@b.md"},
                ]
            },
            "channels",
        ),
    ],
)
def test_bad_contacts_are_400_naming_the_field(client, registrar, change, field):
    response = client.post("/v1/contacts", json=contact_body(**change), headers=registrar.headers)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert Contact.select().count() == 0


def test_permissions(client, registrar, sender, admin):
    create(client, registrar)
    assert client.get(f"/v1/contacts/{idnp(1)}", headers=sender.headers).status_code == 403
    assert (
        client.post("/v1/contacts", json=contact_body(2), headers=sender.headers).status_code == 403
    )
    reader = make_sender("reader", permissions=["contacts:read"])
    assert client.get(f"/v1/contacts/{idnp(1)}", headers=reader.headers).status_code == 200
    assert (
        client.patch(
            f"/v1/contacts/{idnp(1)}", json={"name": "x"}, headers=reader.headers
        ).status_code
        == 403
    )
    assert client.get(f"/v1/contacts/{idnp(1)}", headers=admin.headers).status_code == 200


def test_channels_language_and_reachability(client, registrar, telegram, monkeypatch):
    """Reachability counts configured channels: Telegram (a fake) and SMS (never called here)."""
    for name, value in (("SMS_ACCOUNT_SID", "AC1"), ("SMS_AUTH_TOKEN", "t"), ("SMS_FROM", "H")):
        monkeypatch.setattr(settings, name, value)
    monkeypatch.setattr(settings, "SMS_API_URL", "http://127.0.0.1:9")
    create(client, registrar)
    base = f"/v1/contacts/{idnp(1)}"
    added = client.post(
        f"{base}/channels",
        json={"type": "phone", "address": "069123456"},
        headers=registrar.headers,
    )
    duplicate = client.post(
        f"{base}/channels",
        json={"type": "phone", "address": "+37369123456"},
        headers=registrar.headers,
    )

    assert added.status_code == 201 and added.get_json()["address"] == "+37369123456"
    assert duplicate.status_code == 409

    email_id = ContactChannel.get(ContactChannel.type == "email").id
    off = client.patch(
        f"{base}/channels/{email_id}", json={"active": False}, headers=registrar.headers
    )
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert (
        client.put(
            f"{base}/language", json={"preferredLanguage": "ru"}, headers=registrar.headers
        ).get_json()["preferredLanguage"]
        == "ru"
    )

    reach = client.get(f"{base}/reachability", headers=registrar.headers).get_json()
    assert reach["exists"] is True and reach["hasActiveChannel"] is True
    assert [c["type"] for c in reach["activeChannels"]] == ["telegram", "phone"]

    for channel in ContactChannel.select():
        client.delete(f"{base}/channels/{channel.id}", headers=registrar.headers)
    reach = client.get(f"{base}/reachability", headers=registrar.headers).get_json()
    assert reach == {
        "exists": True,
        "hasActiveChannel": False,
        "activeChannels": [],
        "preferences": {"channels": {}, "services": {}},
    }
    nobody = client.get(
        f"/v1/contacts/{idnp(99)}/reachability", headers=registrar.headers
    ).get_json()
    assert nobody == {
        "exists": False,
        "hasActiveChannel": False,
        "activeChannels": [],
        "preferences": None,
    }


def test_patch_delete_and_unknown_fields(client, registrar):
    create(client, registrar)
    base = f"/v1/contacts/{idnp(1)}"
    patched = client.patch(
        base, json={"name": "Ion Popescu", "attributes": {"flat": 7}}, headers=registrar.headers
    )
    assert patched.get_json()["name"] == "Ion Popescu" and patched.get_json()["attributes"] == {
        "flat": 7
    }
    assert client.patch(base, json={"idnp": idnp(5)}, headers=registrar.headers).status_code == 400
    assert client.delete(base, headers=registrar.headers).status_code == 204
    assert client.get(base, headers=registrar.headers).status_code == 404
    assert ContactChannel.select().count() == 0


def test_subscriptions(client, registrar):
    create(client, registrar)
    base = f"/v1/contacts/{idnp(1)}"
    assert (
        client.post(
            f"{base}/subscriptions", json={"serviceName": "water"}, headers=registrar.headers
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"{base}/subscriptions", json={"serviceName": "water"}, headers=registrar.headers
        ).status_code
        == 409
    )
    client.post(f"{base}/subscriptions", json={"serviceName": "heating"}, headers=registrar.headers)
    assert client.get(base, headers=registrar.headers).get_json()["subscriptions"] == [
        "heating",
        "water",
    ]
    assert (
        client.delete(f"{base}/subscriptions/water", headers=registrar.headers).status_code == 204
    )
    assert (
        client.delete(f"{base}/subscriptions/water", headers=registrar.headers).status_code == 404
    )


def test_list_filters_and_paginates(client, registrar):
    for serial in range(1, 6):
        channels = [{"type": "email", "address": f"p{serial}@example.md"}] if serial % 2 else []
        create(
            client,
            registrar,
            contact_body(
                serial, channels=channels, preferredLanguage="ru" if serial == 4 else "ro"
            ),
        )

    def idnps(query):
        response = client.get(f"/v1/contacts?{query}", headers=registrar.headers)
        assert response.status_code == 200, response.get_json()
        return [c["idnp"] for c in response.get_json()]

    assert idnps("") == [idnp(s) for s in (5, 4, 3, 2, 1)]
    assert idnps("channelType=email") == [idnp(s) for s in (5, 3, 1)]
    assert idnps("language=ru") == [idnp(4)]
    assert idnps(f"text={idnp(2)[:13]}") == [idnp(2)]
    assert idnps("text=Persoana 3") == [idnp(3)]
    response = client.get("/v1/contacts?pageSize=2&page=3", headers=registrar.headers)
    assert [c["idnp"] for c in response.get_json()] == [idnp(1)]
    assert json.loads(response.headers["X-Pagination"]) == {
        "total": 5,
        "totalPages": 3,
        "page": 3,
        "pageSize": 2,
    }


def test_import_json_upserts_and_lists_bad_rows(client, registrar):
    create(client, registrar, contact_body(1, name="Old name"))
    rows = [
        contact_body(1, name="New name", channels=[{"type": "phone", "address": "+37369000001"}]),
        contact_body(2),
        {"idnp": "123", "name": "bad"},
        contact_body(3, channels=[{"type": "email", "address": "nope"}]),
        "not an object",
    ]
    response = client.post("/v1/contacts/import", json=rows, headers=registrar.headers)

    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert (result["created"], result["updated"], result["rejected"]) == (1, 1, 3)
    assert [e["row"] for e in result["errors"]] == [3, 4, 5]
    assert "idnp" in result["errors"][0]["errors"]
    updated = Contact.get(Contact.idnp == idnp(1))
    assert updated.name == "New name"
    assert {c.type for c in updated.channels} == {"email", "telegram", "phone"}


def test_import_csv(client, registrar):
    csv_body = (
        "idnp,name,preferredLanguage,email,phone,telegram\n"
        f"{idnp(1)},Ion,ro,ion@example.md,069123456,\n"
        f"{idnp(2)},Ivan,ru,,,123456789\n"
        "12,Bad,ro,,,\n"
    )
    response = client.post(
        "/v1/contacts/import",
        data=csv_body,
        headers=registrar.headers | {"Content-Type": "text/csv"},
    )
    result = response.get_json()
    assert response.status_code == 200, result
    assert (result["created"], result["rejected"]) == (2, 1)
    assert result["errors"][0]["row"] == 3
    ion = Contact.get(Contact.idnp == idnp(1))
    assert {(c.type, c.address) for c in ion.channels} == {
        ("email", "ion@example.md"),
        ("phone", "+37369123456"),
    }


def test_import_limits(client, registrar, monkeypatch):
    from settings import settings

    monkeypatch.setattr(settings, "MAX_IMPORT_ROWS", 2)
    too_many = client.post(
        "/v1/contacts/import", json=[contact_body(s) for s in range(3)], headers=registrar.headers
    )
    bad_header = client.post(
        "/v1/contacts/import",
        data="who,name\n1,2\n",
        headers=registrar.headers | {"Content-Type": "text/csv"},
    )
    assert too_many.status_code == 400
    assert bad_header.status_code == 400 and "csv" in bad_header.get_json()["errors"]
    assert Contact.select().count() == 0


def test_a_thousand_contact_import_takes_few_queries(client, registrar, db):
    """Bulk upserts: the number of SQL statements does not grow with the number of contacts."""
    statements = []
    original = db.execute_sql

    def counting(sql, *args, **kwargs):
        statements.append(sql)
        return original(sql, *args, **kwargs)

    db.execute_sql = counting
    try:
        response = client.post(
            "/v1/contacts/import",
            json=[contact_body(s) for s in range(1000)],
            headers=registrar.headers,
        )
    finally:
        del db.execute_sql
    assert response.status_code == 200 and response.get_json()["created"] == 1000
    assert len(statements) < 20

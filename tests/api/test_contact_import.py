"""POST /v1/contacts/import upserts: a row changes only the fields it carries (DESIGN Promise 4).

JSON: a key the row leaves out keeps the stored value, ``null`` clears it. CSV: a column the
header leaves out, or an empty cell, keeps the stored value.
"""

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from models.contact import Contact, ContactChannel
from tests.factories import contact_body, idnp, make_sender

NIGHT = {"start": "22:00", "end": "08:00", "timezone": "Europe/Chisinau"}
NOON = {"start": "12:00", "end": "14:00", "timezone": "UTC"}
#: The contact's own fields, as the API names them.
FIELDS = ("name", "preferredLanguage", "attributes", "quietHours")
NEW_CONTACT = {"name": None, "preferredLanguage": None, "attributes": {}, "quietHours": None}


@pytest.fixture
def registrar(db):
    return make_sender("registry", permissions=["contacts:read", "contacts:write"])


def register(client, who, serial=1, **overrides) -> dict:
    body = contact_body(serial, quietHours=NIGHT, **overrides)
    response = client.post("/v1/contacts", json=body, headers=who.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def fields_of(client, who, serial) -> dict:
    response = client.get(f"/v1/contacts/{idnp(serial)}", headers=who.headers)
    assert response.status_code == 200, response.get_json()
    return {name: response.get_json()[name] for name in FIELDS}


def import_json(client, who, rows) -> dict:
    response = client.post("/v1/contacts/import", json=rows, headers=who.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def import_csv(client, who, text) -> dict:
    headers = who.headers | {"Content-Type": "text/csv"}
    response = client.post("/v1/contacts/import", data=text, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_json_row_without_fields_keeps_them(client, registrar):
    register(client, registrar)
    before = fields_of(client, registrar, 1)

    phone = {"type": "phone", "address": "+37369000001"}
    result = import_json(client, registrar, [{"idnp": idnp(1), "channels": [phone]}])

    assert (result["created"], result["updated"], result["rejected"]) == (0, 1, 0)
    assert fields_of(client, registrar, 1) == before
    contact = Contact.get(Contact.idnp == idnp(1))
    assert {c.type for c in contact.channels} == {"email", "telegram", "phone"}


def test_a_json_row_changes_the_fields_it_carries_and_null_clears(client, registrar):
    register(client, registrar)

    import_json(client, registrar, [{"idnp": idnp(1), "name": "Ion Rusu", "quietHours": NOON}])
    after_first = fields_of(client, registrar, 1)
    import_json(client, registrar, [{"idnp": idnp(1), "preferredLanguage": None}])

    assert after_first == {
        "name": "Ion Rusu",
        "preferredLanguage": "ro",
        "attributes": {"district": "Centru"},
        "quietHours": NOON,
    }
    assert fields_of(client, registrar, 1) == after_first | {"preferredLanguage": None}


def test_a_csv_without_a_column_keeps_that_field(client, registrar):
    register(client, registrar)
    before = fields_of(client, registrar, 1)

    result = import_csv(client, registrar, f"idnp,phone\n{idnp(1)},069000001\n")

    assert (result["updated"], result["rejected"]) == (1, 0)
    assert fields_of(client, registrar, 1) == before
    assert ContactChannel.select().where(ContactChannel.type == "phone").count() == 1


def test_an_empty_csv_cell_keeps_that_field(client, registrar):
    register(client, registrar, 1)
    register(client, registrar, 2)

    import_csv(
        client,
        registrar,
        "idnp,name,preferredLanguage\n"
        f"{idnp(1)},,ru\n"  # name kept, language changed
        f"{idnp(2)},Ivan Rusu,  \n",  # a blank cell is empty too
    )

    assert fields_of(client, registrar, 1)["name"] == "Persoana 1"
    assert fields_of(client, registrar, 1)["preferredLanguage"] == "ru"
    assert fields_of(client, registrar, 2)["name"] == "Ivan Rusu"
    assert fields_of(client, registrar, 2)["preferredLanguage"] == "ro"


def test_a_new_contact_from_a_partial_row_gets_the_defaults(client, registrar):
    result = import_csv(client, registrar, f"idnp,email\n{idnp(3)},p3@example.md\n")

    assert result["created"] == 1
    assert fields_of(client, registrar, 3) == NEW_CONTACT


def test_rows_for_one_idnp_are_applied_in_order(client, registrar):
    """In one statement, PostgreSQL refuses to update one row twice: rows are merged first."""
    register(client, registrar)
    rows = [
        {"idnp": idnp(1), "name": "First", "channels": [{"type": "phone", "address": "069000001"}]},
        {"idnp": idnp(1), "name": "Second", "attributes": {"flat": 7}},
        {"idnp": idnp(1), "channels": [{"type": "phone", "address": "069000002"}]},
    ]

    result = import_json(client, registrar, rows)

    assert (result["created"], result["updated"], result["rejected"]) == (0, 1, 0)
    assert fields_of(client, registrar, 1) == {
        "name": "Second",
        "preferredLanguage": "ro",
        "attributes": {"flat": 7},
        "quietHours": NIGHT,
    }
    phones = ContactChannel.select().where(ContactChannel.type == "phone").count()
    assert phones == 2


# --- the property: whatever the rows, a field a row does not carry is unchanged -------------
FIELD_VALUES = {
    "name": st.none() | st.text(st.characters(categories=["L", "Zs"]), min_size=1, max_size=12),
    "preferredLanguage": st.sampled_from([None, "ro", "ru", "en"]),
    "attributes": st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2),
    "quietHours": st.sampled_from([None, NIGHT, NOON]),
}
PARTIAL_CONTACT = st.fixed_dictionaries({}, optional=FIELD_VALUES)
SERIALS = st.integers(min_value=1, max_value=6)


@hypothesis_settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    existing=st.dictionaries(SERIALS, st.fixed_dictionaries(FIELD_VALUES), max_size=4),
    rows=st.lists(st.tuples(SERIALS, PARTIAL_CONTACT), min_size=1, max_size=8),
)
def test_upserts_change_only_what_rows_carry(client, registrar, existing, rows):
    Contact.delete().execute()
    expected = {}
    for serial, fields in existing.items():
        body = {"idnp": idnp(serial), **fields}
        assert client.post("/v1/contacts", json=body, headers=registrar.headers).status_code == 201
        expected[serial] = fields
    for serial, fields in rows:
        expected[serial] = expected.get(serial, NEW_CONTACT) | fields

    import_json(client, registrar, [{"idnp": idnp(serial), **fields} for serial, fields in rows])

    for serial, fields in expected.items():
        assert fields_of(client, registrar, serial) == fields, serial

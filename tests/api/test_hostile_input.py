"""Hostile input anywhere is a 4xx in the error contract naming the field, never a 500 (DESIGN
Promise 5), on both databases. Every JSON operation and every parameter the OpenAPI document
lists is spoiled one field at a time, so a new endpoint is covered as soon as it exists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from api.errors import (
    LONE_SURROGATE,
    LONE_SURROGATE_IN_KEY,
    MAX_JSON_DEPTH,
    NOT_FINITE,
    NUL,
    NUL_IN_KEY,
    TOO_DEEP,
    TOO_MANY_DIGITS,
)
from models.base import OUT_OF_CALENDAR
from models.sender import PERMISSIONS
from models.user_token import mint_user_token
from settings import settings
from tests import hostile_inputs as hostile
from tests.factories import (
    contact_body,
    email_notification,
    idnp,
    make_sender,
    stored_message,
    visit_reminder,
)
from tests.fakes.viber import content_signature
from tests.fakes.whatsapp import hub_signature
from tests.hostile_inputs import (
    Path,
    errors_at,
    json_operations,
    leaves,
    nested,
    operations,
    parameters,
    replaced,
    schema_at,
    spoiled_text,
)


@pytest.fixture(autouse=True)
def _email_configured(monkeypatch):
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")


@pytest.fixture
def grants(db):
    return make_sender("hostile", permissions=PERMISSIONS)


@pytest.fixture
def spec(client) -> dict:
    return client.get("/openapi.json").get_json()


@pytest.fixture
def world(client, grants) -> dict[str, str]:
    """A resource for every path parameter, made through the API: the values to fill them."""
    headers = grants.headers
    template = client.post("/v1/templates", json=visit_reminder(), headers=headers)
    contact = client.post("/v1/contacts", json=contact_body(1), headers=headers)
    client.post(
        f"/v1/contacts/{idnp(1)}/subscriptions", json={"serviceName": "permits"}, headers=headers
    )
    sent = client.post("/v1/notifications", json=email_notification(), headers=headers)
    reminder = client.post(
        "/v1/reminders", json=hostile.EXAMPLES[("POST", "/v1/reminders")][0], headers=headers
    )
    endpoint = client.post(
        "/v1/webhook-endpoints", json={"url": "https://hooks.example.md/h"}, headers=headers
    )
    for response in (template, contact, sent, reminder, endpoint):
        assert response.status_code in (201, 202), response.get_json()
    for failed in (hostile.FAILED_MESSAGE, hostile.FAILED_MAMBU_MESSAGE):
        stored_message(grants.sender, id=UUID(failed), state="failed")
    return {
        "id_or_code": template.get_json()["code"],
        "number": "1",
        "idnp": idnp(1),
        "channel_id": str(contact.get_json()["channels"][0]["id"]),
        "service_name": "permits",
        "notification_id": sent.get_json()["id"],
        "message_id": sent.get_json()["messages"][0]["id"],
        "reminder_id": reminder.get_json()["id"],
        "item_id": sent.get_json()["messages"][0]["id"],
        "service": "housing",
        "endpoint_id": endpoint.get_json()["id"],
    }


def headers_for(path: str, grants) -> dict[str, str]:
    """The sender's key, or for the inbox a user token minted for it."""
    if path.startswith("/v1/inbox") and not path.startswith("/v1/inbox/tokens"):
        token, _ = mint_user_token(hostile.USER, grants.sender.id, 3600)
        return {"Authorization": f"Bearer {token}"}
    return grants.headers


#: Receipts endpoints authenticate the provider by its signature over the raw body, read
#: nothing before it and refuse what is unsigned (403): the corpus signs each body as the
#: provider would, with the secrets the ``signing_providers`` fixture sets, so what is tested
#: is how the body itself is taken.
SIGNERS = {
    "/v1/providers/whatsapp/webhook": lambda body: {
        "X-Hub-Signature-256": hub_signature(WHATSAPP_SECRET, body)
    },
    "/v1/providers/viber/events": lambda body: {
        "X-Viber-Content-Signature": content_signature(VIBER_TOKEN, body)
    },
}
WHATSAPP_SECRET, VIBER_TOKEN = "hostile-whatsapp-secret", "hostile-viber-token"


@pytest.fixture(autouse=True)
def signing_providers(monkeypatch):
    monkeypatch.setattr(settings, "WHATSAPP_APP_SECRET", WHATSAPP_SECRET)
    monkeypatch.setattr(settings, "VIBER_AUTH_TOKEN", VIBER_TOKEN)


def call(client, grants, method: str, path: str, url: str, **kwargs):
    if method in ("POST", "PUT", "PATCH") and "data" not in kwargs:
        kwargs.setdefault("json", {})
    headers = headers_for(path, grants)
    if path in SIGNERS:
        if "json" in kwargs:
            kwargs["data"] = json.dumps(kwargs.pop("json")).encode()
            kwargs["content_type"] = "application/json"
        body = kwargs.get("data", b"")
        body = body.encode() if isinstance(body, str) else body
        headers = {**headers, **SIGNERS[path](body)}
    return client.open(url, method=method, headers=headers, **kwargs)


def in_contract(response) -> dict | None:
    """The error body of a 4xx, checked against the contract; None for a success. A 5xx fails."""
    status = response.status_code
    assert status < 500, response.get_data(as_text=True)[:500]
    if status < 400:
        return None
    data = response.get_json()
    assert data["code"] == status, data
    assert isinstance(data["status"], str) and data["status"], data
    assert isinstance(data["message"], str) and data["message"], data
    return data


def refused(response, path: str, where: Path) -> Any:
    """The messages naming ``where``: in a 4xx, or, for an import, in the rejected row."""
    data = in_contract(response)
    if data is None and path == "/v1/contacts/import":
        rows = {row["row"]: row["errors"] for row in response.get_json()["errors"]}
        return errors_at(rows.get(int(where[0]) + 1, {}), where[1:])
    return data and errors_at(data["errors"], where)


def cases(spec: dict, world: dict) -> Iterator[tuple[str, str, str, dict, Any]]:
    """(method, path, url, body schema, example) for every JSON operation's examples."""
    for method, path, schema in json_operations(spec):
        for example in hostile.EXAMPLES.get((method, path), []):
            yield method, path, path.format(**world), schema, example


def send_raw(client, grants, method, path, url, text: str):
    return call(
        client, grants, method, path, url, data=text.encode(), content_type="application/json"
    )


# --- the corpus is complete and valid -------------------------------------------------------
def test_every_json_operation_has_a_valid_example(client, grants, spec, world):
    missing = [f"{m} {p}" for m, p, _ in json_operations(spec) if (m, p) not in hostile.EXAMPLES]
    assert not missing, f"add examples to tests/hostile_inputs.py EXAMPLES for {missing}"
    for method, path, url, _, example in cases(spec, world):
        response = call(client, grants, method, path, url, json=example)
        assert response.status_code < 400 or response.status_code in (404, 409), (
            method,
            path,
            response.get_json(),
        )


# --- JSON bodies ----------------------------------------------------------------------------
def test_json_nested_past_the_parser_is_400(client, grants, spec, world):
    text = "[" * hostile.PARSER_DEPTH + "]" * hostile.PARSER_DEPTH
    for method, path, _ in json_operations(spec):
        url = path.format(**world)
        data = in_contract(send_raw(client, grants, method, path, url, text))
        assert data["code"] == 400 and data["errors"] == {"json": [TOO_DEEP]}, (method, path)


def test_json_nested_past_the_limit_is_400_naming_the_member(client, grants, spec, world):
    too_deep = {"member": json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)}
    deepest = {"member": json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1))}
    for method, path, _ in json_operations(spec):
        url = path.format(**world)
        data = in_contract(call(client, grants, method, path, url, json=too_deep))
        assert data["errors"] == {"member": [TOO_DEEP]}, (method, path)
        response = call(client, grants, method, path, url, json=deepest)
        assert TOO_DEEP not in response.get_data(as_text=True), (method, path)


UNSTORABLE = [
    (hostile.NUL, NUL, NUL_IN_KEY),
    (hostile.LONE_SURROGATE, LONE_SURROGATE, LONE_SURROGATE_IN_KEY),
]


@pytest.mark.parametrize("bad, message, in_key", UNSTORABLE)
def test_unstorable_text_in_any_string_or_name_is_400_naming_it(
    client, grants, spec, world, bad, message, in_key
):
    for method, path, url, _, example in cases(spec, world):
        for where, value in leaves(example):
            if isinstance(value, str):
                body, expected = replaced(example, where, f"a{bad}b"), nested(where, [message])
            elif isinstance(value, dict):
                body = replaced(example, where, value | {f"k{bad}": 1})
                expected = nested((*where, f"k\\u{ord(bad):04x}"), [in_key])
            else:
                continue
            data = in_contract(send_raw(client, grants, method, path, url, json.dumps(body)))
            assert data["code"] == 400 and data["errors"] == expected, (method, path, where)


def test_calendar_edges_in_any_date_time_field_are_400_naming_it(client, grants, spec, world):
    tried = 0
    for method, path, url, schema, example in cases(spec, world):
        for where, _ in leaves(example):
            if schema_at(spec, schema, where).get("format") != "date-time":
                continue
            for edge in hostile.CALENDAR_EDGES:
                body = replaced(example, where, edge)
                data = in_contract(call(client, grants, method, path, url, json=body))
                assert errors_at(data["errors"], where) == [OUT_OF_CALENDAR], (path, where, edge)
                tried += 1
    assert tried >= 5 * len(hostile.CALENDAR_EDGES)


def test_huge_and_non_finite_numbers_in_any_integer_field_are_400_naming_it(
    client, grants, spec, world
):
    tried = 0
    for method, path, url, schema, example in cases(spec, world):
        for where, _ in leaves(example):
            field = schema_at(spec, schema, where)
            if field.get("type") != "integer":
                continue
            raws = [str(n) for n in hostile.HUGE_INTEGERS] + [hostile.TOO_MANY_DIGITS]
            for raw in [*raws, *hostile.NON_FINITE]:
                response = send_raw(
                    client, grants, method, path, url, spoiled_text(example, where, raw)
                )
                assert refused(response, path, where), (path, where, raw[:20])
                data = response.get_json()
                if raw == hostile.TOO_MANY_DIGITS:
                    assert data["errors"] == nested(where, [TOO_MANY_DIGITS])
                elif raw in hostile.NON_FINITE:
                    assert data["errors"] == nested(where, [NOT_FINITE])
                tried += 1
    assert tried > 0


def test_over_long_strings_are_refused_where_limited_and_never_a_500(client, grants, spec, world):
    for method, path, url, schema, example in cases(spec, world):
        for where, value in leaves(example):
            if not isinstance(value, str):
                continue
            body = replaced(example, where, hostile.LONG_TEXT)
            response = call(client, grants, method, path, url, json=body)
            limit = schema_at(spec, schema, where).get("maxLength")
            if limit is not None and limit < len(hostile.LONG_TEXT):
                assert refused(response, path, where), (method, path, where)
            else:
                in_contract(response)


# --- query strings and path segments --------------------------------------------------------
def test_nul_in_any_query_parameter_is_400_naming_it(client, grants, spec, world):
    for method, path, operation in operations(spec):
        url = path.format(**world)
        for parameter in parameters(operation, "query"):
            name = parameter["name"]
            response = call(client, grants, method, path, url, query_string={name: "a\x00b"})
            data = in_contract(response)
            assert data["errors"] == {name: [NUL]}, (method, path, name)
        data = in_contract(call(client, grants, method, path, url, query_string={"a\x00": "1"}))
        assert data["errors"] == {"a\\u0000": [NUL_IN_KEY]}, (method, path)


def test_huge_long_and_edge_query_values_are_never_a_500(client, grants, spec, world):
    edges = [*hostile.CALENDAR_EDGES, *hostile.EDGE_DATES]
    for method, path, operation in operations(spec):
        url = path.format(**world)
        valid = hostile.QUERY_EXAMPLES.get(path, {})
        for parameter in parameters(operation, "query"):
            name = parameter["name"]
            values = [hostile.LONG_ID, hostile.LONG_TEXT[:9000], str(2**63), "-1", *edges]
            for value in values:
                query = valid | {name: value}
                data = in_contract(call(client, grants, method, path, url, query_string=query))
                if name in ("createdFrom", "createdTo") and value in edges:
                    assert data["errors"] == {name: [OUT_OF_CALENDAR]}, (path, name, value)


def test_the_query_examples_are_valid(client, grants):
    for path, query in hostile.QUERY_EXAMPLES.items():
        response = call(client, grants, "GET", path, path, query_string=query)
        assert response.status_code == 200, (path, response.get_json())


@pytest.mark.parametrize("segment", ["a\x00b", "a%00b", str(2**63), hostile.LONG_ID, "é" * 3000])
def test_hostile_path_segments_are_4xx(client, grants, spec, world, segment):
    tried = 0
    for method, path, operation in operations(spec):
        for parameter in parameters(operation, "path"):
            tried += 1
            name = parameter["name"]
            url = path.format(**(world | {name: segment}))
            data = in_contract(call(client, grants, method, path, url))
            assert data is not None or "\x00" not in segment, (method, path, name)
            if data and data["code"] == 400 and "\x00" in segment:
                assert data["errors"] == {name: [NUL]}, (method, path, name)
    assert tried > 30


# --- one edge each ---------------------------------------------------------------------------
def import_csv(client, grants, text: str):
    headers = grants.headers | {"Content-Type": "text/csv"}
    return client.post("/v1/contacts/import", data=text.encode(), headers=headers)


@pytest.mark.parametrize(
    "text, line",
    [
        (f"idnp,name\n{idnp(1)},Ion\n{idnp(2)},{'x' * 131_073}\n", 3),
        (f"idnp,name\r{idnp(1)},Ion\r", 1),
        (f"idnp,name\n{idnp(1)},Ion\n{idnp(2)},I\x00n\n", 3),
    ],
    ids=["field over csv's limit", "bare CR line ends", "NUL"],
)
def test_unreadable_csv_is_400_naming_the_line(client, grants, text, line):
    data = in_contract(import_csv(client, grants, text))
    assert data["code"] == 400 and list(data["errors"]) == ["csv"]
    assert data["errors"]["csv"][0].startswith(f"Line {line}: "), data


@pytest.mark.parametrize("index", range(len(hostile.EDGE_CONSTRAINTS)))
def test_search_dates_at_the_calendar_edge_are_400_naming_the_value(client, grants, index):
    body = {"filterConstraints": [hostile.EDGE_CONSTRAINTS[index]]}
    data = in_contract(client.post("/v1/messages/search", json=body, headers=grants.headers))
    assert data["code"] == 400 and list(data["errors"]["filterConstraints"]["0"]) == ["value"]


@pytest.mark.parametrize(
    "where",
    [
        {"createdAt": {"gt": "9999-12-31T23:59:59-14:00"}},
        {"createdAt": {"between": ["0001-01-01", "2030-01-01"]}},
        {"event": "a\u0000b"},
        {"and": [{"event": {"eq": "x\u0000"}}]},
    ],
)
def test_a_notifybc_filter_with_edge_values_is_400_naming_it(client, grants, where):
    query = {"filter": json.dumps({"where": where})}
    response = client.get("/v1/notifications", query_string=query, headers=grants.headers)
    data = in_contract(response)
    assert data["code"] == 400 and list(data["errors"]) == ["filter"], data


@pytest.mark.parametrize("name", ["filter", "filterConstraints"])
def test_json_in_a_query_parameter_is_held_to_the_body_rules(client, grants, name):
    path = "/v1/notifications" if name == "filter" else "/v1/messages/export"
    deep = "[" * 4000 + "]" * 4000
    response = client.get(path, query_string={name: deep}, headers=grants.headers)
    assert in_contract(response)["errors"] == {name: [TOO_DEEP]}


@pytest.mark.parametrize("separator", hostile.LINE_SEPARATORS + (hostile.NUL,))
def test_a_subject_with_a_line_separator_is_400_naming_it(client, grants, separator):
    body = email_notification()
    body["message"]["subject"] = f"Programare{separator}Bcc: x@example.md"
    response = client.post("/v1/notifications", json=body, headers=grants.headers)
    assert list(in_contract(response)["errors"]["message"]) == ["subject"]
    template = visit_reminder()
    template["contents"][0]["subject"] = f"Vizită{separator}{{{{ visitDate }}}}"
    response = client.post("/v1/templates", json=template, headers=grants.headers)
    assert in_contract(response)["errors"]["contents"]["0"].keys() == {"subject"}


def test_an_idempotency_key_with_nul_is_400_naming_the_header(client, grants):
    headers = grants.headers | {"Idempotency-Key": "order\x0042"}
    response = client.post("/v1/notifications", json=email_notification(), headers=headers)
    assert list(in_contract(response)["errors"]) == ["Idempotency-Key"]


def test_offsets_reaching_before_the_calendar_are_400_naming_before(client, grants):
    body = hostile.EXAMPLES[("POST", "/v1/reminders")][2] | {
        "eventAt": "0002-01-01T00:00:00Z",
        "before": ["99999d"],
    }
    response = client.post("/v1/reminders", json=body, headers=grants.headers)
    assert in_contract(response)["errors"] == {
        "before": ["Every occurrence must be in the future."]
    }


@pytest.mark.parametrize("zone", ["America", "Europe/", "x" * 300])
def test_a_time_zone_that_names_no_zone_is_400(client, grants, zone):
    body = hostile.EXAMPLES[("POST", "/v1/reminders")][1] | {"timezone": zone}
    response = client.post("/v1/reminders", json=body, headers=grants.headers)
    assert "timezone" in in_contract(response)["errors"]
    quiet = {"start": "22:00", "end": "07:00", "timezone": zone}
    response = client.post(
        "/v1/contacts", json=contact_body(3, quietHours=quiet), headers=grants.headers
    )
    assert "timezone" in in_contract(response)["errors"]["quietHours"]

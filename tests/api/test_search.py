"""POST /v1/messages/search, GET /v1/messages/{id} past retention, GET /v1/messages/export."""

import csv
import io
import json
from datetime import timedelta

import pytest

from models.base import utcnow
from tests.factories import make_sender, stored_message


def search(client, who, *constraints, query="", **extra):
    body = {
        "filterConstraints": [
            dict(zip(("filterSelection", "filterElement", "value", "secondValue"), c, strict=False))
            for c in constraints
        ],
        **extra,
    }
    return client.post(f"/v1/messages/search{query}", json=body, headers=who.headers)


def test_search_answers_result_items_with_labels_and_content(client, sender):
    message = stored_message(
        sender.sender,
        state="failed",
        failure_reason="REJECTED_BY_PROVIDER",
        channel="webhook",
        destination="https://hooks.example.md/in",
        event="LOAN_CREATED",
        service_name="loans",
        reference="r-9",
        subject="Credit",
        body="Your loan was created.",
        attempts=2,
    )
    stored_message(sender.sender, event="LOAN_REPAID")

    response = search(
        client,
        sender,
        ("TYPE", "EQUALS", "web_hook"),
        ("STATE", "EQUALS", "FAILED"),
        ("CREATION_DATE", "THIS_WEEK"),
    )

    assert response.status_code == 200
    assert json.loads(response.headers["X-Pagination"])["total"] == 1
    [item] = response.get_json()
    assert item == {
        "id": str(message.id),
        "notificationId": str(message.notification_id),
        "channel": "webhook",
        "state": "failed",
        "failureReason": "REJECTED_BY_PROVIDER",
        "event": "LOAN_CREATED",
        "serviceName": "loans",
        "reference": "r-9",
        "attempts": 2,
        "createdAt": item["createdAt"],
        "sentAt": None,
        "deliveredAt": None,
        "readAt": None,
        "retained": True,
        "destination": "https://hooks.example.md/in",
        "subject": "Credit",
        "body": "Your loan was created.",
    }


def test_search_pages_and_sorts(client, sender):
    for attempts in (3, 1, 2):
        stored_message(sender.sender, attempts=attempts)
    first = search(client, sender, query="?page=1&pageSize=2", sortBy="attempts", sortOrder="asc")
    second = search(client, sender, query="?page=2&pageSize=2", sortBy="ATTEMPTS", sortOrder="ASC")
    assert [m["attempts"] for m in first.get_json() + second.get_json()] == [1, 2, 3]
    assert json.loads(first.headers["X-Pagination"])["totalPages"] == 2


def test_past_retention_the_status_remains_without_destination_or_content(client, sender):
    old = stored_message(
        sender.sender,
        created_at=utcnow() - timedelta(days=9),
        updated_at=utcnow() - timedelta(days=8),
        subject="Old",
        body="Old body",
        state="delivered",
    )

    detail = client.get(f"/v1/messages/{old.id}", headers=sender.headers).get_json()
    [item] = search(client, sender, ("ENCODED_KEY", "EQUALS", str(old.id))).get_json()

    for answer in (detail, item):
        assert answer["state"] == "delivered"
        assert answer["retained"] is False
        assert answer["destination"] is None
        assert answer["subject"] is None
        assert answer["body"] is None
    fresh = stored_message(sender.sender, subject="New", body="New body")
    detail = client.get(f"/v1/messages/{fresh.id}", headers=sender.headers).get_json()
    assert (detail["retained"], detail["destination"], detail["body"]) == (
        True,
        "ion@example.md",
        "New body",
    )


def test_senders_search_only_their_own(client, sender, other_sender, admin):
    own = stored_message(sender.sender)
    theirs = stored_message(other_sender.sender)
    ids = {str(own.id), str(theirs.id)}
    assert {m["id"] for m in search(client, sender).get_json()} == {str(own.id)}
    assert {m["id"] for m in search(client, other_sender).get_json()} == {str(theirs.id)}
    assert {m["id"] for m in search(client, admin).get_json()} == ids
    by_sender = search(client, admin, ("SENDER_KEY", "EQUALS", str(other_sender.sender.id)))
    assert [m["id"] for m in by_sender.get_json()] == [str(theirs.id)]


def test_a_sender_filtering_on_sender_key_is_forbidden(client, sender):
    response = search(client, sender, ("SENDER_KEY", "EQUALS", "1"))
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("constraint", "field"),
    [
        (("COLOUR", "EQUALS", "red"), "filterSelection"),
        (("STATE", "RESEMBLES", "failed"), "filterElement"),
        (("STATE", "STARTS_WITH", "fa"), "filterElement"),
        (("CREATION_DATE", "EQUALS", "2026-01-01"), "filterElement"),
        (("EVENT", "MORE_THAN", "A"), "filterElement"),
        (("CREATION_DATE", "BETWEEN", "2026-01-01"), "secondValue"),
        (("CREATION_DATE", "TODAY", "2026-01-01"), "value"),
        (("EVENT", "EQUALS"), "value"),
        (("CREATION_DATE", "ON", "18/11/2026"), "value"),
        (("CREATION_DATE", "AFTER", "2026-02-30"), "value"),
        (("CREATION_DATE", "LAST_DAYS", 0), "value"),
        (("CREATION_DATE", "LAST_DAYS", "week"), "value"),
        (("STATE", "EQUALS", "lost"), "value"),
        (("ENCODED_KEY", "EQUALS", "not-a-uuid"), "value"),
        (("ATTEMPTS", "MORE_THAN", "many"), "value"),
    ],
)
def test_bad_constraints_are_400_naming_the_index(client, sender, constraint, field):
    response = search(client, sender, ("STATE", "EQUALS", "sent"), constraint)
    assert response.status_code == 400
    errors = response.get_json()["errors"]["filterConstraints"]
    assert list(errors) == ["1"]
    assert list(errors["1"]) == [field]


def test_in_without_values_and_values_where_none_belong(client, sender):
    body = {
        "filterConstraints": [
            {"filterSelection": "STATE", "filterElement": "IN"},
            {"filterSelection": "STATE", "filterElement": "EQUALS", "value": "x", "values": ["x"]},
        ]
    }
    response = client.post("/v1/messages/search", json=body, headers=sender.headers)
    assert response.status_code == 400
    errors = response.get_json()["errors"]["filterConstraints"]
    assert errors == {
        "0": {"values": ["IN needs values."]},
        "1": {"values": ["EQUALS takes no values."]},
    }


def test_more_than_twenty_constraints_is_400(client, sender):
    response = search(client, sender, *[("STATE", "EQUALS", "sent")] * 21)
    assert response.status_code == 400
    assert "filterConstraints" in response.get_json()["errors"]


def test_unknown_body_fields_and_sort_are_400(client, sender):
    assert search(client, sender, colour="red").status_code == 400
    assert search(client, sender, sortBy="COLOUR").status_code == 400


# --- export --------------------------------------------------------------------------------
def export(client, who, query=""):
    response = client.get(f"/v1/messages/export{query}", headers=who.headers)
    return response, list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_export_streams_csv_of_matching_messages_oldest_first(client, sender, other_sender):
    failed = [stored_message(sender.sender, state="failed", event="E1") for _ in range(3)]
    stored_message(sender.sender, state="sent", event="E1")
    stored_message(other_sender.sender, state="failed", event="E1")
    stored_message(sender.sender, state="failed", destination="=HYPERLINK(1)", event="E2")

    response, rows = export(client, sender, "?state=failed&event=E1")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert [row["id"] for row in rows] == [str(m.id) for m in failed]
    assert rows[0]["destination"] == "ion@example.md"
    _, escaped = export(client, sender, "?event=E2")
    assert escaped[0]["destination"] == "'=HYPERLINK(1)"


def test_export_in_batches_and_with_filter_constraints(client, sender, monkeypatch):
    from models import search

    batches = []
    iterate = search.iterate_messages

    def small_batches(who, node, batch=1000):
        for message in iterate(who, node, batch=2):
            batches.append(message.id)
            yield message

    monkeypatch.setattr("api.search.iterate_messages", small_batches)
    made = [stored_message(sender.sender, attempts=n) for n in range(5)]
    constraints = json.dumps(
        [{"filterSelection": "ATTEMPTS", "filterElement": "MORE_THAN", "value": 0}]
    )
    _, rows = export(client, sender, f"?filterConstraints={constraints}")
    assert [row["id"] for row in rows] == [str(m.id) for m in made[1:]]


def test_export_rows_are_what_the_search_result_schema_dumps(app, sender):
    """The export makes its rows without marshmallow (``api.search.export_rows``); each is
    MessageResultSchema's dump of the message, key for key and value for value, whether the
    message is retained or not, its destination masked or not, its dates set or not."""
    from flask import g

    from api.search import CSV_COLUMNS, export_rows
    from api.search_schemas import MessageResultSchema
    from models.search import All, iterate_messages
    from settings import settings
    from tests.factories import idnp

    now = utcnow()
    expired = now - timedelta(days=settings.MESSAGE_RETENTION_DAYS + 1)
    stored_message(sender.sender, state="failed", failure_reason="BOUNCED", event="E1", attempts=3)
    stored_message(
        sender.sender,
        recipient_key=idnp(3),
        state="delivered",
        sent_at=now,
        delivered_at=now,
        read_at=now,
        subject="Programare",
        body="Luni",
        service_name="housing",
        reference="R-1",
    )
    stored_message(sender.sender, state="sent", created_at=expired, subject="Old", body="Old")
    stored_message(sender.sender, channel="sms", destination="+37369000001", state="queued")
    with app.test_request_context():
        g.sender = sender.sender
        messages = list(iterate_messages(sender.sender, All(())))
        rows = list(export_rows(messages))
        assert rows == MessageResultSchema(many=True).dump(messages)
    assert [list(row) for row in rows] == [CSV_COLUMNS] * 4
    assert [row["retained"] for row in rows] == [True, True, False, True]
    assert rows[1]["destination"] == "i***@example.md"


def test_export_bad_filters_are_400(client, sender):
    for query in (
        "?state=lost",
        "?createdFrom=yesterday",
        "?filterConstraints=[{",
        '?filterConstraints=[{"filterSelection":"X","filterElement":"EQUALS","value":1}]',
        '?filterConstraints={"filterSelection":"STATE"}',
    ):
        assert export(client, sender, query)[0].status_code == 400, query


def test_export_of_another_senders_history_needs_admin(client, sender, admin):
    other = make_sender("initech")
    theirs = stored_message(other.sender)
    assert export(client, sender)[1] == []
    assert [row["id"] for row in export(client, admin)[1]] == [str(theirs.id)]


def test_counts_past_the_limit_are_capped(client, sender, monkeypatch):
    from settings import settings

    monkeypatch.setattr(settings, "SEARCH_COUNT_LIMIT", 2)
    for _ in range(3):
        stored_message(sender.sender)
    response = search(client, sender, query="?pageSize=1&page=3")
    header = json.loads(response.headers["X-Pagination"])
    assert header == {"total": 2, "totalPages": 2, "page": 3, "pageSize": 1, "totalCapped": True}
    assert len(response.get_json()) == 1
    monkeypatch.setattr(settings, "SEARCH_COUNT_LIMIT", 3)
    header = json.loads(search(client, sender).headers["X-Pagination"])
    assert header["total"] == 3
    assert "totalCapped" not in header

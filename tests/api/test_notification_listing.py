"""GET /v1/notifications: Hackney query parameters and the NotifyBC filter, one query builder."""

import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from tests.factories import stored_message


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def listed(sender, other_sender):
    """Notifications of ``sender`` by name, and one of another sender's."""
    made = {
        "email_failed": stored_message(
            sender.sender,
            state="failed",
            service_name="housing",
            event="REPAIR_BOOKED",
            target_id="T-1",
            target_type="tenancy",
            created_at=at("2026-03-01T10:00"),
        ),
        "sms_sent": stored_message(
            sender.sender,
            channel="sms",
            destination="+37369000001",
            service_name="housing",
            event="RENT_DUE",
            target_id="T-2",
            target_type="tenancy",
            created_at=at("2026-03-02T10:00"),
        ),
        "screen_unread": stored_message(
            sender.sender,
            channel="inapp",
            destination="user-1",
            state="unread",
            service_name="permits",
            event="PERMIT_READY",
            created_at=at("2026-03-03T10:00"),
        ),
    }
    stored_message(other_sender.sender, service_name="housing", event="RENT_DUE")
    return {name: str(message.notification_id) for name, message in made.items()}


def listing(client, who, query=""):
    response = client.get(f"/v1/notifications{query}", headers=who.headers)
    return response, response.get_json()


def names(listed, items) -> list[str]:
    by_id = {value: key for key, value in listed.items()}
    return [by_id[item["id"]] for item in items]


def test_all_newest_first_and_only_ones_own(client, sender, listed):
    response, items = listing(client, sender)
    assert response.status_code == 200
    assert names(listed, items) == ["screen_unread", "sms_sent", "email_failed"]
    assert json.loads(response.headers["X-Pagination"])["total"] == 3
    assert items[0]["messages"][0]["state"] == "unread"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?serviceName=housing", ["sms_sent", "email_failed"]),
        ("?event=RENT_DUE", ["sms_sent"]),
        ("?targetId=T-1&targetType=tenancy", ["email_failed"]),
        ("?notificationType=Text", ["sms_sent"]),
        ("?notificationType=Screen", ["screen_unread"]),
        ("?notificationType=Email&state=FAILED", ["email_failed"]),
        ("?notificationType=email&state=sent", []),
        ("?createdFrom=2026-03-02&createdTo=2026-03-02", ["sms_sent"]),
        ("?createdFrom=2026-03-01T10:00:01Z", ["screen_unread", "sms_sent"]),
        ("?createdTo=2026-03-01T12:00:00%2B02:00", ["email_failed"]),
        ("?pageSize=1&page=2", ["sms_sent"]),
    ],
)
def test_hackney_query_filters(client, sender, listed, query, expected):
    response, items = listing(client, sender, query)
    assert response.status_code == 200, items
    assert names(listed, items) == expected


def notifybc(client, who, spec):
    return listing(client, who, "?filter=" + quote(json.dumps(spec)))


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"serviceName": "housing"}, ["sms_sent", "email_failed"]),
        ({"event": {"neq": "RENT_DUE"}}, ["screen_unread", "email_failed"]),
        ({"event": {"inq": ["RENT_DUE", "PERMIT_READY"]}}, ["screen_unread", "sms_sent"]),
        ({"event": {"nin": ["RENT_DUE", "PERMIT_READY"]}}, ["email_failed"]),
        ({"event": {"like": "%_due"}}, ["sms_sent"]),
        ({"createdAt": {"gt": "2026-03-02T10:00:00Z"}}, ["screen_unread"]),
        ({"createdAt": {"gte": "2026-03-02T10:00:00Z"}}, ["screen_unread", "sms_sent"]),
        ({"createdAt": {"lt": "2026-03-02T10:00:00Z"}}, ["email_failed"]),
        ({"createdAt": {"lte": "2026-03-02T10:00:00Z"}}, ["sms_sent", "email_failed"]),
        (
            {"createdAt": {"between": ["2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"]}},
            ["sms_sent"],
        ),
        ({"targetId": None}, ["screen_unread"]),
        ({"channel": "Text"}, ["sms_sent"]),
        (
            {
                "or": [
                    {"state": "failed"},
                    {"and": [{"channel": "inapp"}, {"event": "PERMIT_READY"}]},
                ]
            },
            ["screen_unread", "email_failed"],
        ),
    ],
)
def test_notifybc_where(client, sender, listed, where, expected):
    response, items = notifybc(client, sender, {"where": where})
    assert response.status_code == 200, items
    assert names(listed, items) == expected


def test_notifybc_fields_order_skip_limit(client, sender, listed):
    spec = {"fields": {"id": True, "event": True}, "order": "createdAt ASC", "skip": 1, "limit": 1}
    response, items = notifybc(client, sender, spec)
    assert response.status_code == 200
    assert items == [{"id": listed["sms_sent"], "event": "RENT_DUE"}]
    assert json.loads(response.headers["X-Pagination"]) == {"total": 3, "skip": 1, "limit": 1}
    _, items = notifybc(client, sender, {"fields": ["event"], "order": ["event DESC"]})
    assert items == [{"event": "REPAIR_BOOKED"}, {"event": "RENT_DUE"}, {"event": "PERMIT_READY"}]


def test_query_parameters_and_filter_combine(client, sender, listed):
    response, items = listing(
        client, sender, "?serviceName=housing&filter=" + quote('{"where": {"state": "failed"}}')
    )
    assert names(listed, items) == ["email_failed"]


@pytest.mark.parametrize(
    "spec",
    [
        "not json",
        '["where"]',
        '{"colour": 1}',
        '{"where": {"colour": "red"}}',
        '{"where": {"event": {"resembles": "x"}}}',
        '{"where": {"event": {"gt": "x"}}}',
        '{"where": {"state": {"like": "fail%"}}}',
        '{"where": {"state": "lost"}}',
        '{"where": {"event": {"inq": "RENT_DUE"}}}',
        '{"where": {"createdAt": {"between": ["2026-01-01"]}}}',
        '{"where": {"createdAt": {"gt": "soon"}}}',
        '{"where": {"or": []}}',
        '{"where": {"or": {"event": "x"}}}',
        '{"where": {"event": {"inq": ["' + '","'.join(["x"] * 101) + '"]}}}',
        '{"limit": 0}',
        '{"limit": 201}',
        '{"skip": -1}',
        '{"fields": ["colour"]}',
        '{"order": "colour DESC"}',
        '{"order": "createdAt SIDEWAYS"}',
    ],
)
def test_bad_notifybc_filters_are_400(client, sender, spec):
    response, data = listing(client, sender, "?filter=" + quote(spec))
    assert response.status_code == 400, spec
    assert list(data["errors"]) == ["filter"]


def test_too_many_conditions_and_too_deep(client, sender):
    many = {"and": [{"event": str(n)} for n in range(21)]}
    deep = {"event": "x"}
    for _ in range(6):
        deep = {"or": [deep]}
    for where in (many, deep):
        assert notifybc(client, sender, {"where": where})[0].status_code == 400


def test_bad_query_parameters_are_400_naming_them(client, sender):
    response, data = listing(client, sender, "?notificationType=Pigeon&createdFrom=soon")
    assert response.status_code == 400
    assert set(data["errors"]) == {"notificationType", "createdFrom"}


def test_a_sender_may_not_filter_by_sender(client, sender, admin, other_sender, listed):
    where = quote(json.dumps({"where": {"senderId": other_sender.sender.id}}))
    assert listing(client, sender, f"?filter={where}")[0].status_code == 403
    response, items = listing(client, admin, f"?filter={where}")
    assert response.status_code == 200
    assert len(items) == 1


def test_past_retention_a_notifications_messages_lose_their_destination(client, sender):
    old = stored_message(sender.sender, created_at=at("2020-01-01T00:00"), state="sent")
    response, items = listing(client, sender)
    assert items[0]["messages"][0]["destination"] is None
    one = client.get(f"/v1/notifications/{old.notification_id}", headers=sender.headers)
    assert one.get_json()["messages"][0] == {
        "id": str(old.id),
        "channel": "email",
        "destination": None,
        "language": None,
        "state": "sent",
        "failureReason": None,
        "optOutBypassed": False,
    }

"""Messages per sender per UTC day (recipients × channels, fan-out included), counted in the
suite's real Redis: direct recipients at accept (a request that does not fit is a 429 and
stores nothing), IDNP recipients and broadcasts at fan-out by a real worker (capped: the people
past the limit get ``failed`` messages with THROTTLED, searchable), senders counted apart."""

from __future__ import annotations

import csv
import io

import pytest

from dev.embedded_redis import free_port
from models.contact import ContactChannel, Subscription
from models.message import Message
from models.notification import Notification
from settings import settings
from tasks.limits import forget_client
from tests.factories import email_notification
from tests.support import wait_until
from tests.tasks.test_fanout import fanned_out, person


@pytest.fixture(autouse=True)
def _fresh_limiter():
    forget_client()
    yield
    forget_client()


@pytest.fixture
def daily(monkeypatch):
    return lambda n: monkeypatch.setattr(settings, "DAILY_MESSAGE_LIMIT", n)


def post(client, sender, body, **headers):
    return client.post("/v1/notifications", json=body, headers={**sender.headers, **headers})


def test_direct_recipients_are_counted_at_accept(client, sender, other_sender, daily):
    daily(3)
    two = email_notification("a@example.md", "b@example.md")

    assert post(client, sender, two).status_code == 202
    refused = post(client, sender, two, **{"Idempotency-Key": "over"})
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["code"] == 429
    assert (
        "Daily message limit exceeded" in body["message"]
        and "1 of the sender's 3" in body["message"]
    )
    assert body["errors"] == {"recipients": ["Over the daily message limit (3)."]}
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400
    assert Notification.select().count() == 1 and Message.select().count() == 2

    # the refused request took nothing: the one message left is still there
    assert post(client, sender, email_notification("c@example.md")).status_code == 202
    assert post(client, sender, email_notification("d@example.md")).status_code == 429
    # another sender's day is its own
    assert post(client, other_sender, two).status_code == 202


def test_a_replayed_request_is_not_counted_twice(client, sender, daily):
    daily(1)
    first = post(client, sender, email_notification(), **{"Idempotency-Key": "k"})
    again = post(client, sender, email_notification(), **{"Idempotency-Key": "k"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json()["id"] == first.get_json()["id"]


def test_a_senders_own_daily_limit_overrides_the_setting(client, sender, daily):
    daily(0)
    sender.sender.daily_message_limit = 1
    sender.sender.save()
    assert post(client, sender, email_notification()).status_code == 202
    assert post(client, sender, email_notification()).status_code == 429


def test_fan_out_caps_the_people_past_the_limit(client, sender, smtp, worker, daily):
    """Three people by IDNP on email only, one message each; two fit in the day."""
    daily(2)
    people = [person(n, ("email", f"p{n}@example.md")) for n in (1, 2, 3)]
    posted = post(
        client,
        sender,
        {
            "recipients": [{"type": "idnp", "value": p} for p in people],
            "channels": ["email"],
            "message": {"subject": "Anunț", "body": "Apa se oprește mâine."},
        },
    )
    assert posted.status_code == 202
    notification_id = posted.get_json()["id"]

    wait_until(fanned_out(notification_id))
    smtp.wait_for(2)
    rows = {
        m.recipient_key: m for m in Message.select().where(Message.notification == notification_id)
    }
    assert rows[people[2]].state == "failed" and rows[people[2]].failure_reason == "THROTTLED"
    assert {rows[p].failure_reason for p in people[:2]} == {None}
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == ["p1@example.md", "p2@example.md"]

    export = client.get("/v1/messages/export?failureReason=THROTTLED", headers=sender.headers)
    assert export.status_code == 200
    throttled = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(throttled) == 1
    # the day is used up: a direct message is refused at accept now
    assert post(client, sender, email_notification()).status_code == 429


def test_a_broadcast_is_capped_too(client, sender, smtp, worker, daily):
    daily(1)
    for n in range(3):
        key = person(10 + n, ("email", f"s{n}@example.md"))
        contact = ContactChannel.get(ContactChannel.address == f"s{n}@example.md").contact
        Subscription.create(contact=contact, service_name="water")
        assert key
    posted = post(
        client,
        sender,
        {
            "isBroadcast": True,
            "serviceName": "water",
            "message": {"subject": "Anunț", "body": "Apa se oprește mâine."},
        },
    )
    assert posted.status_code == 202
    notification_id = posted.get_json()["id"]

    wait_until(fanned_out(notification_id))
    smtp.wait_for(1)
    reasons = sorted(
        str(m.failure_reason)
        for m in Message.select().where(Message.notification == notification_id)
    )
    assert reasons == ["None", "THROTTLED", "THROTTLED"]


def test_redis_unreachable_lets_messages_through(client, sender, daily, monkeypatch, caplog):
    daily(1)
    monkeypatch.setattr(settings, "REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    two = email_notification("a@example.md", "b@example.md")
    assert post(client, sender, two).status_code == 202
    assert any("rate limits not enforced" in r.getMessage() for r in caplog.records)

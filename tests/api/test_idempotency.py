"""Idempotency-Key: same key and body → the first response; different body → 422; a key is
remembered for IDEMPOTENCY_TTL_SECONDS, and never past its notification's retention."""

from datetime import timedelta

import pytest

from models.base import utcnow
from models.idempotency import IdempotencyRecord
from models.message import Message
from models.notification import Notification
from scheduler.jobs import forget_expired, purge
from settings import settings
from tests.factories import email_notification

DAY = timedelta(days=1)


def post(client, sender, body, key):
    return client.post(
        "/v1/notifications", json=body, headers=sender.headers | {"Idempotency-Key": key}
    )


def test_same_key_and_body_returns_the_first_response_and_stores_once(client, sender):
    first = post(client, sender, email_notification(), "order-42")
    # The same JSON with keys in another order is the same request.
    reordered = dict(reversed(list(email_notification().items())))
    second = post(client, sender, reordered, "order-42")

    assert first.status_code == second.status_code == 202
    assert second.get_json() == first.get_json()
    assert Notification.select().count() == 1
    assert Message.select().count() == 1


def test_same_key_with_a_different_body_is_422(client, sender):
    post(client, sender, email_notification("ion@example.md"), "order-42")
    response = post(client, sender, email_notification("maria@example.md"), "order-42")

    assert response.status_code == 422
    assert response.get_json()["code"] == 422
    assert "Idempotency-Key" in response.get_json()["message"]
    assert Notification.select().count() == 1


def test_keys_are_per_sender(client, sender, other_sender):
    first = post(client, sender, email_notification(), "same-key")
    second = post(client, other_sender, email_notification(), "same-key")

    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] != second.get_json()["id"]


def test_without_a_key_each_request_creates_a_notification(client, sender):
    for _ in range(2):
        client.post("/v1/notifications", json=email_notification(), headers=sender.headers)
    assert Notification.select().count() == 2


def test_a_rejected_request_does_not_use_up_the_key(client, sender):
    bad = post(client, sender, email_notification("not-an-email"), "retry-me")
    good = post(client, sender, email_notification(), "retry-me")

    assert bad.status_code == 400
    assert good.status_code == 202


def test_overlong_key_is_400_naming_the_header(client, sender):
    response = post(client, sender, email_notification(), "k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["errors"]
    assert Notification.select().count() == 0


def test_replay_after_a_crash_before_the_response_was_saved(client, sender):
    from models.idempotency import IdempotencyRecord

    first = post(client, sender, email_notification(), "crashy")
    IdempotencyRecord.update(response=None, status_code=None).execute()

    again = post(client, sender, email_notification(), "crashy")

    assert again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert Notification.select().count() == 1


def made_earlier(key: str, delta: timedelta) -> None:
    """Move the record of ``key`` ``delta`` into the past, as if the key had been used then."""
    record = IdempotencyRecord.get(IdempotencyRecord.key == key)
    IdempotencyRecord.update(created_at=record.created_at - delta).where(
        IdempotencyRecord.id == record.id
    ).execute()


@pytest.mark.parametrize("recipient", ["ion@example.md", "maria@example.md"])
def test_a_key_used_longer_ago_than_its_ttl_is_forgotten(client, sender, recipient):
    first = post(client, sender, email_notification(), "order-42")
    made_earlier("order-42", DAY - timedelta(seconds=1))
    assert post(client, sender, email_notification(), "order-42").get_json() == first.get_json()

    made_earlier("order-42", timedelta(seconds=2))  # now a day and a second ago
    again = post(client, sender, email_notification(recipient), "order-42")

    assert again.status_code == 202, again.get_json()
    assert again.get_json()["id"] != first.get_json()["id"]
    assert Notification.select().count() == 2
    [record] = IdempotencyRecord.select()
    assert str(record.notification_id) == again.get_json()["id"]
    replayed = post(client, sender, email_notification(recipient), "order-42")
    assert replayed.get_json() == again.get_json()


def test_the_ttl_is_a_setting(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "IDEMPOTENCY_TTL_SECONDS", 3600)
    first = post(client, sender, email_notification(), "hourly")
    made_earlier("hourly", timedelta(minutes=61))
    assert (
        post(client, sender, email_notification(), "hourly").get_json()["id"]
        != (first.get_json()["id"])
    )


def test_expired_records_are_deleted_in_batches(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "PURGE_BATCH_SIZE", 2)
    for key in ("a", "b", "c", "d", "e"):
        post(client, sender, email_notification(), key)
    for key in ("a", "b", "c"):
        made_earlier(key, DAY + timedelta(seconds=1))

    assert forget_expired(utcnow()) == {"idempotency_keys": 3, "reminder_requests": 0}
    assert {record.key for record in IdempotencyRecord.select()} == {"d", "e"}
    assert forget_expired(utcnow() + DAY + timedelta(seconds=1))["idempotency_keys"] == 2
    assert Notification.select().count() == 5


def test_the_purge_deletes_the_record_of_a_purged_notification(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "IDEMPOTENCY_TTL_SECONDS", 30 * 86400)
    monkeypatch.setattr(settings, "MESSAGE_RETENTION_DAYS", 7)
    first = post(client, sender, email_notification(), "order-42")
    Message.update(state="sent").execute()  # final, without a worker

    assert purge(utcnow() + 8 * DAY)["notifications"] == 1

    assert IdempotencyRecord.select().count() == 0
    again = post(client, sender, email_notification(), "order-42")
    assert again.status_code == 202
    assert again.get_json()["id"] != first.get_json()["id"]

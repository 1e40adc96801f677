"""Idempotency-Key: same key and body → the first response; different body → 422."""

from models.message import Message
from models.notification import Notification
from tests.factories import email_notification


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
    from models.notification import IdempotencyRecord

    first = post(client, sender, email_notification(), "crashy")
    IdempotencyRecord.update(response=None, status_code=None).execute()

    again = post(client, sender, email_notification(), "crashy")

    assert again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert Notification.select().count() == 1

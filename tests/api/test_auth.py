"""API keys: 401 without a valid one; each sender sees only its own notifications."""

import pytest

from models.sender import ApiKey, Sender
from tests.factories import email_notification


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer hk_not-a-real-key", "hk_no-scheme"],
)
def test_missing_or_invalid_key_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.post("/v1/notifications", json=email_notification(), headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_keys_are_stored_hashed(sender):
    (stored,) = ApiKey.select().where(ApiKey.sender == sender.sender.id)
    assert sender.key not in (stored.key_hash, stored.prefix)
    assert len(stored.key_hash) == 64
    assert sender.key.startswith(stored.prefix)


def test_a_sender_cannot_see_another_senders_notification(client, sender, other_sender):
    posted = client.post("/v1/notifications", json=email_notification(), headers=sender.headers)
    notification_id = posted.get_json()["id"]
    message_id = posted.get_json()["messages"][0]["id"]

    assert (
        client.get(f"/v1/notifications/{notification_id}", headers=other_sender.headers).status_code
        == 404
    )
    assert client.get(f"/v1/messages/{message_id}", headers=other_sender.headers).status_code == 404
    assert (
        client.get(f"/v1/notifications/{notification_id}", headers=sender.headers).status_code
        == 200
    )


def test_an_admin_sees_every_senders_notifications(client, sender, admin):
    posted = client.post("/v1/notifications", json=email_notification(), headers=sender.headers)
    notification_id = posted.get_json()["id"]
    message_id = posted.get_json()["messages"][0]["id"]

    assert (
        client.get(f"/v1/notifications/{notification_id}", headers=admin.headers).status_code == 200
    )
    assert client.get(f"/v1/messages/{message_id}", headers=admin.headers).status_code == 200


def test_healthz_and_docs_need_no_key(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_a_replaced_key_stops_working_within_the_auth_cache_time(client, sender, monkeypatch):
    import models.cache
    from models.sender import rotate_key
    from settings import settings

    # The cache's clock is moved by hand: waiting real seconds would make the test depend on
    # how quickly a loaded machine answers two requests.
    clock = [1000.0]
    monkeypatch.setattr(models.cache, "monotonic", lambda: clock[0])
    monkeypatch.setattr(settings, "SENDER_CACHE_SECONDS", 5)
    assert client.get("/v1/notifications", headers=sender.headers).status_code == 200
    new_key = rotate_key(Sender.get_by_id(sender.sender.id))  # as `herald` does in its own process
    clock[0] += 4.9
    # This web process checked the old key a moment ago and still trusts it…
    assert client.get("/v1/notifications", headers=sender.headers).status_code == 200
    clock[0] += 0.2
    # …until the cache time has passed; the new key works at once.
    assert client.get("/v1/notifications", headers=sender.headers).status_code == 401
    fresh = {"Authorization": f"Bearer {new_key}"}
    assert client.get("/v1/notifications", headers=fresh).status_code == 200

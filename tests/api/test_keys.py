"""API keys through the API: several per sender, each refused once revoked (within
SENDER_CACHE_SECONDS) or expired, and their use recorded without a write per request."""

from datetime import timedelta

from models.base import utcnow
from models.db import database
from models.sender import ApiKey, Sender, add_key, revoke_key
from settings import settings
from tests.support import wait_until


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def status(client, key: str) -> int:
    return client.get("/v1/notifications", headers=bearer(key)).status_code


def test_every_key_of_a_sender_opens_the_same_senders_data(client, sender):
    owner = Sender.get_by_id(sender.sender.id)
    keys = [sender.key] + [add_key(owner)[1] for _ in range(2)]
    posted = client.post(
        "/v1/notifications",
        json={
            "recipients": [{"type": "email", "value": "ion@example.md"}],
            "message": {"subject": "S", "body": "B"},
        },
        headers=bearer(keys[2]),
    )
    assert posted.status_code == 202
    for key in keys:
        listed = client.get("/v1/notifications", headers=bearer(key)).get_json()
        assert [item["id"] for item in listed] == [posted.get_json()["id"]]


def test_a_revoked_key_is_refused_within_the_cache_time_and_others_keep_working(
    client, sender, monkeypatch
):
    monkeypatch.setattr(settings, "SENDER_CACHE_SECONDS", 0.5)
    row, spare = add_key(Sender.get_by_id(sender.sender.id))
    assert status(client, sender.key) == status(client, spare) == 200  # both cached now
    first = ApiKey.get(ApiKey.key_hash != row.key_hash)
    revoke_key(first.id)  # as `herald keys revoke` does in its own process
    wait_until(lambda: status(client, sender.key) == 401, timeout=30)
    assert status(client, spare) == 200


def test_a_revoked_key_is_refused_at_once_by_a_process_that_had_not_cached_it(client, sender):
    revoke_key(ApiKey.get(ApiKey.sender == sender.sender.id).id)
    response = client.get("/v1/notifications", headers=sender.headers)
    assert response.status_code == 401
    assert response.get_json()["message"] == "The API key is not valid."


def test_an_expired_key_is_refused_even_while_it_is_cached(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "SENDER_CACHE_SECONDS", 3600)
    owner = Sender.get_by_id(sender.sender.id)
    _, expired = add_key(owner, expires_at=utcnow() - timedelta(seconds=1))
    assert status(client, expired) == 401
    _, brief = add_key(owner, expires_at=utcnow() + timedelta(seconds=1))
    assert status(client, brief) == 200
    wait_until(lambda: status(client, brief) == 401, timeout=30)
    assert status(client, sender.key) == 200


class UpdateCounter:
    """Counts the UPDATE statements on api_key that reach the database."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        db = database.obj
        original = db.execute_sql

        def counted(sql, params=None, *args, **kwargs):
            if sql.lstrip().upper().startswith("UPDATE") and '"api_key"' in sql:
                self.count += 1
            return original(sql, params, *args, **kwargs)

        monkeypatch.setattr(db, "execute_sql", counted)


def test_last_use_is_recorded_once_per_interval_not_per_request(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "API_KEY_LAST_USED_SECONDS", 3600)
    updates = UpdateCounter(monkeypatch)
    stored = ApiKey.get(ApiKey.sender == sender.sender.id)
    assert stored.last_used_at is None
    before = utcnow()
    for _ in range(20):
        assert status(client, sender.key) == 200
    assert updates.count == 1
    used = ApiKey.get_by_id(stored.id).last_used_at
    assert before - timedelta(seconds=1) <= used <= utcnow()


def test_last_use_moves_after_the_interval(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "API_KEY_LAST_USED_SECONDS", 1)
    assert status(client, sender.key) == 200
    stored = ApiKey.get(ApiKey.sender == sender.sender.id)
    first = stored.last_used_at
    assert first is not None

    def moved():
        assert status(client, sender.key) == 200
        return ApiKey.get_by_id(stored.id).last_used_at > first

    wait_until(moved, timeout=30, interval=0.1)
    assert ApiKey.get_by_id(stored.id).last_used_at >= first + timedelta(seconds=1)


def test_another_process_that_wrote_the_use_recently_is_not_written_over(sender, monkeypatch):
    from models.sender import forget_uses, note_use

    monkeypatch.setattr(settings, "API_KEY_LAST_USED_SECONDS", 3600)
    stored = ApiKey.get(ApiKey.sender == sender.sender.id)
    assert note_use(stored.id)
    first = ApiKey.get_by_id(stored.id).last_used_at
    forget_uses()  # as another web process, which has not written it yet
    note_use(stored.id)
    assert ApiKey.get_by_id(stored.id).last_used_at == first

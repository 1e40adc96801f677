"""User tokens revoked by user and by time (refused within SENDER_CACHE_SECONDS), and the
user-token secret kept wrapped, not in clear, in the database."""

from datetime import timedelta

import pytest

from models import server_secret
from models.base import utcnow
from models.server_secret import SecretUnreadable, ServerSecret, seal_all
from models.user_token import (
    SECRET_NAME,
    InvalidToken,
    mint_user_token,
    revoke_user_tokens,
    verify_user_token,
)
from settings import settings
from tests.inbox_support import token_for
from tests.support import wait_until

SECRET_KEY = "k" * 40


def inbox_status(client, headers) -> int:
    return client.get("/v1/inbox", headers=headers).status_code


def test_revoking_a_users_tokens_refuses_those_minted_before_not_after(
    client, sender, other_sender, monkeypatch
):
    monkeypatch.setattr(settings, "SENDER_CACHE_SECONDS", 0.5)
    ion, ana = token_for(client, sender, "ion"), token_for(client, sender, "ana")
    ion_elsewhere = token_for(client, other_sender, "ion")
    assert inbox_status(client, ion) == 200  # the "no revocation" answer is cached now

    revoke_user_tokens(user="ion", sender=sender.sender)  # as `herald tokens revoke` does
    wait_until(lambda: inbox_status(client, ion) == 401, timeout=30)
    body = client.get("/v1/inbox", headers=ion).get_json()
    assert body["message"] == "The user token is not valid (revoked)."
    assert inbox_status(client, ana) == 200
    assert inbox_status(client, ion_elsewhere) == 200  # another sender's token for ion
    assert inbox_status(client, token_for(client, sender, "ion")) == 200  # minted after


def test_revoking_without_a_sender_refuses_every_senders_and_admins_tokens(client, sender, admin):
    tokens = [token_for(client, sender, "ion"), token_for(client, admin, "ion")]
    revoke_user_tokens(user="ion")
    assert [inbox_status(client, token) for token in tokens] == [401, 401]


def test_revoking_before_a_time_refuses_every_users_older_tokens(db, sender):
    now = utcnow()
    old, _ = mint_user_token("ion", sender.sender.id, 3600, now=now - timedelta(minutes=10))
    other_old, _ = mint_user_token("ana", None, 3600, now=now - timedelta(minutes=10))
    recent, _ = mint_user_token("ion", sender.sender.id, 3600, now=now - timedelta(minutes=1))
    revoke_user_tokens(before=now - timedelta(minutes=5))
    for token in (old, other_old):
        with pytest.raises(InvalidToken, match="revoked"):
            verify_user_token(token)
    assert verify_user_token(recent).user == "ion"


def test_a_token_minted_within_the_same_second_is_ordered_by_milliseconds(db):
    now = utcnow().replace(microsecond=500_000)
    before, _ = mint_user_token("ion", None, 3600, now=now - timedelta(milliseconds=300))
    after, _ = mint_user_token("ion", None, 3600, now=now + timedelta(milliseconds=300))
    revoke_user_tokens(user="ion", before=now)
    with pytest.raises(InvalidToken, match="revoked"):
        verify_user_token(before)
    assert verify_user_token(after).user == "ion"


@pytest.fixture
def fresh_secrets(db, monkeypatch):
    """The database's secrets as a process that has not read them yet sees them."""
    monkeypatch.setattr(settings, "USER_TOKEN_SECRET", "")
    monkeypatch.setattr(server_secret, "_known", {})
    return lambda: monkeypatch.setattr(server_secret, "_known", {})


def test_with_a_secret_key_the_token_secret_is_not_in_clear_in_the_database(
    client, sender, fresh_secrets, monkeypatch
):
    monkeypatch.setattr(settings, "SECRET_KEY", SECRET_KEY)
    token = token_for(client, sender, "ion")
    secret = server_secret._known[SECRET_NAME]
    stored = ServerSecret.get_by_id(SECRET_NAME).value
    assert stored.startswith("fernet:")
    assert secret not in stored and SECRET_KEY not in stored
    fresh_secrets()
    assert inbox_status(client, token) == 200  # another process unwraps the same secret

    fresh_secrets()
    monkeypatch.setattr(settings, "SECRET_KEY", "z" * 40)  # not the key it was wrapped under
    with pytest.raises(SecretUnreadable):
        server_secret.server_secret(SECRET_NAME)


def test_a_secret_stored_in_clear_is_wrapped_and_its_tokens_keep_working(
    client, sender, fresh_secrets, monkeypatch
):
    monkeypatch.setattr(settings, "SECRET_KEY", "")
    token = token_for(client, sender, "ion")
    clear = ServerSecret.get_by_id(SECRET_NAME).value
    assert not clear.startswith("fernet:")  # without SECRET_KEY the row is the only copy

    monkeypatch.setattr(settings, "SECRET_KEY", SECRET_KEY)
    assert seal_all() == [SECRET_NAME]  # as `herald db upgrade` does
    assert clear not in ServerSecret.get_by_id(SECRET_NAME).value
    fresh_secrets()
    assert inbox_status(client, token) == 200


def test_rotating_the_secret_key_rewraps_the_same_secret(
    client, sender, fresh_secrets, monkeypatch
):
    monkeypatch.setattr(settings, "SECRET_KEY", SECRET_KEY)
    token = token_for(client, sender, "ion")
    wrapped = ServerSecret.get_by_id(SECRET_NAME).value

    monkeypatch.setattr(settings, "SECRET_KEY", "n" * 40)
    monkeypatch.setattr(settings, "SECRET_KEY_PREVIOUS", SECRET_KEY)
    fresh_secrets()
    assert inbox_status(client, token) == 200
    assert ServerSecret.get_by_id(SECRET_NAME).value != wrapped  # wrapped again, under the new
    monkeypatch.setattr(settings, "SECRET_KEY_PREVIOUS", "")
    fresh_secrets()
    assert inbox_status(client, token) == 200


def test_the_bounce_token_secret_is_wrapped_too(fresh_secrets, monkeypatch):
    import uuid

    from channels.return_path import SECRET_NAME as BOUNCE
    from channels.return_path import message_id_of
    from channels.return_path import token_for as bounce

    monkeypatch.setattr(settings, "SECRET_KEY", SECRET_KEY)
    monkeypatch.setattr(settings, "BOUNCE_SECRET", "")
    message_id = uuid.uuid4()
    token = bounce(message_id)
    assert ServerSecret.get_by_id(BOUNCE).value.startswith("fernet:")
    fresh_secrets()
    assert message_id_of(token) == message_id

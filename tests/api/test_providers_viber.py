"""Viber events: a message sent by a real worker to the Viber-shaped REST API on 127.0.0.1,
then Viber's callbacks for it (delivered, seen, failed, unsubscribed), shaped and signed as
Viber does, posted to the app; and ``herald viber set-webhook`` against that API, which checks
the webhook on a live Herald as Viber does."""

import json
import threading
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from channels import REGISTRY
from channels.viber import EVENTS_PATH, event_signature_valid
from models.contact import ContactChannel
from models.message import Message
from models.states import FailureReason
from settings import settings
from tests.api.providers_support import (
    callback_for,
    channel_active,
    footprint,
    history,
    listen_for_callbacks,
    person,
    purge_past_retention,
    send_to_person,
)
from tests.fakes.viber import ViberFake, content_signature, event

TOKEN = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f"
USER = "01234567890A="


@pytest.fixture
def viber(monkeypatch):
    """A Viber REST API on 127.0.0.1 that Herald is configured to use, with the bot's token."""
    fake = ViberFake(TOKEN).start()
    monkeypatch.setattr(settings, "VIBER_API_URL", fake.url)
    monkeypatch.setattr(settings, "VIBER_AUTH_TOKEN", TOKEN)
    yield fake
    REGISTRY["viber"].close()
    fake.stop()


def sent_viber(client, sender, viber, serial=1, user=USER) -> tuple[str, int]:
    """A message sent to a registered person's Viber; its id and Viber's message_token."""
    message_id = send_to_person(client, sender, person(serial, "viber", user), "viber")
    return message_id, viber.message_tokens[-1]


def post_event(client, body: bytes, *, token=TOKEN, signature=None):
    headers = {"Content-Type": "application/json"}
    if signature is not False:
        headers["X-Viber-Content-Signature"] = signature or content_signature(token, body)
    return client.post(EVENTS_PATH, data=body, headers=headers)


def ms(seconds_ago: float = 0) -> int:
    return int((time.time() - seconds_ago) * 1000)


# --- receipts ------------------------------------------------------------------------------
def test_delivered_then_seen_moves_the_message_and_calls_the_sender_back(
    client, sender, viber, worker, monkeypatch
):
    callbacks = listen_for_callbacks(sender, monkeypatch)
    try:
        message_id, token = sent_viber(client, sender, viber)
        delivered_at, seen_at = ms(60), ms(30)
        for kind, at in (("delivered", delivered_at), ("seen", seen_at)):
            body = event(kind, at, message_token=token, user_id=USER)
            response = post_event(client, body)
            assert response.status_code == 200, response.get_json()
            assert response.get_json() == {"matched": 1, "unmatched": 0}

        row = Message.get_by_id(message_id)
        assert row.state == "delivered"
        assert row.delivered_at == datetime.fromtimestamp(delivered_at / 1000, UTC)
        assert row.read_at == datetime.fromtimestamp(seen_at / 1000, UTC)
        shown = history(client, sender, message_id)
        assert (
            callback_for(callbacks, message_id, "delivered")["deliveredAt"] == shown["deliveredAt"]
        )
        assert (
            callback_for(callbacks, message_id, "delivered", read=True)["readAt"] == shown["readAt"]
        )
    finally:
        callbacks.stop()


def test_failed_fails_the_message_and_keeps_the_user(client, sender, viber, worker, monkeypatch):
    callbacks = listen_for_callbacks(sender, monkeypatch)
    try:
        message_id, token = sent_viber(client, sender, viber)
        body = event("failed", message_token=token, user_id=USER, desc="failure description")
        assert post_event(client, body).status_code == 200

        row = Message.get_by_id(message_id)
        assert (row.state, row.failure_reason) == ("failed", FailureReason.REJECTED_BY_PROVIDER)
        assert "failure description" in row.last_error
        assert channel_active("viber", USER)  # only `unsubscribed` says the user is gone
        assert (
            callback_for(callbacks, message_id, "failed")["failureReason"] == "REJECTED_BY_PROVIDER"
        )
    finally:
        callbacks.stop()


def test_unsubscribed_switches_the_user_off_in_every_contact(client, sender, viber, worker):
    person(1, "viber", USER)
    person(2, "viber", USER)  # the same Viber user registered by two people
    person(3, "viber", "someone-else=")
    body = event("unsubscribed", user_id=USER)
    response = post_event(client, body)
    assert response.status_code == 200
    states = {(c.contact.idnp[-2:], c.address): c.active for c in ContactChannel.select()}
    assert sorted(states.values()) == [False, False, True]
    assert channel_active("viber", "someone-else=")
    reason = ContactChannel.get(ContactChannel.address == USER).deactivated_reason
    assert "unsubscribed" in reason


def test_late_and_repeated_events_change_nothing(client, sender, viber, worker):
    message_id, token = sent_viber(client, sender, viber)
    seen = event("seen", message_token=token, user_id=USER)
    post_event(client, seen)
    after = footprint(message_id)
    for body in (event("delivered", message_token=token, user_id=USER), seen, seen):
        assert post_event(client, body).status_code == 200
    assert footprint(message_id) == after


def test_the_webhook_check_and_other_events_are_answered(client, viber):
    for body in (
        event("webhook", message_token=4912661846655238145),
        event("subscribed", user={"id": USER, "name": "Ion", "api_version": 1}),
        event("conversation_started", type="open", user={"id": USER}, subscribed=False),
    ):
        response = post_event(client, body)
        assert response.status_code == 200
        assert response.get_json() == {"matched": 0, "unmatched": 0}


def test_forged_unsigned_and_miskeyed_events_are_refused(client, sender, viber, worker):
    message_id, token = sent_viber(client, sender, viber)
    before = footprint(message_id)
    body = event("failed", message_token=token, user_id=USER, desc="forged")
    other = event("delivered", message_token=token, user_id=USER)
    unsubscribe = event("unsubscribed", user_id=USER)
    refused = [
        post_event(client, body, signature=False),
        post_event(client, body, signature="0" * 64),
        post_event(client, body, token="another bot's token"),
        post_event(client, body, signature=content_signature(TOKEN, other)),  # replayed
        post_event(
            client, body.replace(b"forged", b"forgeD"), signature=content_signature(TOKEN, body)
        ),
        post_event(client, unsubscribe, token="another bot's token"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert footprint(message_id) == before


def test_unknown_and_purged_messages_are_answered_without_change(client, sender, viber, worker):
    message_id, token = sent_viber(client, sender, viber)
    stranger = post_event(client, event("delivered", message_token=token + 1000, user_id=USER))
    assert stranger.get_json() == {"matched": 0, "unmatched": 1}
    purge_past_retention()
    purged = footprint(message_id)
    response = post_event(client, event("delivered", message_token=token, user_id=USER))
    assert response.get_json() == {"matched": 0, "unmatched": 1}
    assert footprint(message_id) == purged


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", "_schema"),
        (json.dumps({"timestamp": 1}).encode(), "event"),
        (event("delivered", user_id=USER), "message_token"),
        (event("unsubscribed"), "user_id"),
        (event("delivered", message_token="12"), "message_token"),
        (event("delivered", message_token=-1), "message_token"),
        (event("delivered", message_token=2**64), "message_token"),
        (event("seen", message_token=1, timestamp_ms=10**20), "timestamp"),
        (event("unsubscribed", user_id="u" * 101), "user_id"),
    ],
)
def test_signed_but_bad_events_are_400_naming_the_field(client, viber, body, field):
    response = post_event(client, body)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=200), flip=st.integers(min_value=0))
def test_any_change_to_the_body_invalidates_the_signature(body, flip):
    signature = content_signature(TOKEN, body)
    assert event_signature_valid(TOKEN, body, signature)
    if body:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ (1 + flip % 255)]) + body[index + 1 :]
        assert not event_signature_valid(TOKEN, changed, signature)
    assert not event_signature_valid(TOKEN, body + b"\n", signature)
    assert not event_signature_valid(TOKEN[:-1], body, signature)


# --- herald viber set-webhook --------------------------------------------------------------
@pytest.fixture
def live_herald(app):
    """The app served on 127.0.0.1, where the fake Viber checks the webhook."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_set_webhook_registers_herald_s_events_url(herald, viber, live_herald, monkeypatch):
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", live_herald + "/")
    result = herald("viber", "set-webhook")

    assert result.returncode == 0, result.stderr
    url = f"{live_herald}/v1/providers/viber/events"
    assert result.stdout == f"Viber webhook: {url} (delivered, seen, failed, unsubscribed)\n"
    (request,) = [r for r in viber.requests if r.path == "/set_webhook"]
    assert request.headers["X-Viber-Auth-Token"] == TOKEN
    assert request.json() == {
        "url": url,
        "event_types": ["delivered", "seen", "failed", "unsubscribed"],
        "send_name": False,
    }
    assert TOKEN not in request.body.decode()


def test_set_webhook_reports_a_webhook_viber_could_not_check(herald, viber, monkeypatch):
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", viber.url)  # answers 404 to the check
    result = herald("viber", "set-webhook")
    assert result.returncode == 1
    assert result.stderr.startswith("herald: Viber did not set the webhook to ")
    assert "invalidUrl" in result.stderr


def test_set_webhook_reports_a_refused_token(herald, viber, live_herald, monkeypatch):
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", live_herald)
    monkeypatch.setattr(settings, "VIBER_AUTH_TOKEN", "a token Viber does not know")
    result = herald("viber", "set-webhook")
    assert result.returncode == 1
    assert "Viber status 2" in result.stderr
    assert "a token Viber does not know" not in result.stderr


def test_set_webhook_refuses_without_public_base_url_or_viber(herald, monkeypatch):
    monkeypatch.setattr(settings, "VIBER_AUTH_TOKEN", TOKEN)
    result = herald("viber", "set-webhook")
    assert (result.returncode, result.stdout) == (2, "")
    assert "PUBLIC_BASE_URL is not set" in result.stderr

    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", "https://herald.example.md")
    monkeypatch.setattr(settings, "VIBER_AUTH_TOKEN", "")
    result = herald("viber", "set-webhook")
    assert result.returncode == 2
    assert "VIBER_AUTH_TOKEN is not set" in result.stderr

"""WhatsApp Cloud API status webhooks: a message sent by a real worker to the Cloud-API-shaped
server on 127.0.0.1, then Meta's status webhooks for it, shaped and signed as Meta does,
posted to the app; and the verification handshake Meta makes when the webhook is set."""

import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from api.provider_schemas import MAX_STATUSES
from channels import REGISTRY
from channels.whatsapp import webhook_signature_valid
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
from tests.fakes.whatsapp import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    FakeWhatsApp,
    hub_signature,
    message_status,
    status_webhook,
    undeliverable,
)

PATH = "/v1/providers/whatsapp/webhook"
PHONE = "+37369123456"
RECIPIENT = PHONE.lstrip("+")


@pytest.fixture
def whatsapp(monkeypatch):
    """A Cloud API on 127.0.0.1 for sends; the Meta app's secret and verify token set."""
    fake = FakeWhatsApp().start()
    monkeypatch.setattr(settings, "WHATSAPP_API_URL", fake.api_url)
    monkeypatch.setattr(settings, "WHATSAPP_TOKEN", TOKEN)
    monkeypatch.setattr(settings, "WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID)
    monkeypatch.setattr(settings, "WHATSAPP_APP_SECRET", APP_SECRET)
    monkeypatch.setattr(settings, "WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN)
    yield fake
    REGISTRY["whatsapp"].close()
    fake.stop()


def sent_whatsapp(client, sender, whatsapp, serial=1) -> tuple[str, str]:
    """A message sent to a registered person's WhatsApp; its id and the wamid Meta answered."""
    message_id = send_to_person(client, sender, person(serial, "whatsapp", PHONE), "whatsapp")
    return message_id, whatsapp.wamids[-1]


def post_webhook(client, body: bytes, *, secret=APP_SECRET, signature=None):
    headers = {"Content-Type": "application/json"}
    if signature is not False:
        headers["X-Hub-Signature-256"] = signature or hub_signature(secret, body)
    return client.post(PATH, data=body, headers=headers)


def now() -> int:
    return int(time.time())


# --- the verification handshake ------------------------------------------------------------
def test_the_verification_request_is_answered_with_the_challenge(client, whatsapp):
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    response = client.get(PATH, query_string=query)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
    ],
)
def test_a_wrong_verification_request_is_403(client, whatsapp, query):
    response = client.get(PATH, query_string=query)
    assert response.status_code == 403
    assert response.get_data(as_text=True) != "1"


def test_without_a_verify_token_no_verification_succeeds(client, monkeypatch):
    monkeypatch.setattr(settings, "WHATSAPP_VERIFY_TOKEN", "")
    query = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
    assert client.get(PATH, query_string=query).status_code == 403


# --- status webhooks -----------------------------------------------------------------------
def test_delivered_then_read_moves_the_message_and_calls_the_sender_back(
    client, sender, whatsapp, worker, monkeypatch
):
    callbacks = listen_for_callbacks(sender, monkeypatch)
    try:
        message_id, wamid = sent_whatsapp(client, sender, whatsapp)
        delivered_at, read_at = now() - 60, now() - 30
        for status, at in (("sent", now() - 90), ("delivered", delivered_at), ("read", read_at)):
            body = status_webhook(message_status(wamid, status, RECIPIENT, at))
            response = post_webhook(client, body)
            assert response.status_code == 200, response.get_json()
            assert response.get_json() == {"matched": 1, "unmatched": 0}

        row = Message.get_by_id(message_id)
        assert row.state == "delivered"
        assert row.delivered_at == datetime.fromtimestamp(delivered_at, UTC)
        assert row.read_at == datetime.fromtimestamp(read_at, UTC)
        shown = history(client, sender, message_id)
        assert shown["readAt"] is not None
        # delivered, then read: each owes a callback (the second carries readAt)
        read = callback_for(callbacks, message_id, "delivered", read=True)
        assert read["deliveredAt"] == shown["deliveredAt"]
        assert read["readAt"] == shown["readAt"]
    finally:
        callbacks.stop()


def test_read_alone_also_delivers(client, sender, whatsapp, worker):
    message_id, wamid = sent_whatsapp(client, sender, whatsapp)
    post_webhook(client, status_webhook(message_status(wamid, "read", RECIPIENT, now())))
    row = Message.get_by_id(message_id)
    assert row.state == "delivered"
    assert row.delivered_at == row.read_at


def test_undeliverable_fails_the_message_and_switches_the_number_off(
    client, sender, whatsapp, worker, monkeypatch
):
    callbacks = listen_for_callbacks(sender, monkeypatch)
    try:
        message_id, wamid = sent_whatsapp(client, sender, whatsapp)
        failed = message_status(wamid, "failed", RECIPIENT, now(), errors=[undeliverable()])
        assert post_webhook(client, status_webhook(failed)).status_code == 200

        row = Message.get_by_id(message_id)
        assert (row.state, row.failure_reason) == ("failed", FailureReason.DEAD_ADDRESS)
        assert "131026" in row.last_error
        assert not channel_active("whatsapp", PHONE)
        assert callback_for(callbacks, message_id, "failed")["failureReason"] == "DEAD_ADDRESS"
    finally:
        callbacks.stop()


def test_other_errors_are_rejected_by_the_provider(client, sender, whatsapp, worker):
    message_id, wamid = sent_whatsapp(client, sender, whatsapp)
    error = {
        "code": 131049,
        "title": "This message was not delivered to maintain healthy ecosystem engagement.",
    }
    failed = message_status(wamid, "failed", RECIPIENT, now(), errors=[error])
    post_webhook(client, status_webhook(failed))
    assert Message.get_by_id(message_id).failure_reason == FailureReason.REJECTED_BY_PROVIDER


def test_late_and_repeated_statuses_change_nothing(client, sender, whatsapp, worker):
    message_id, wamid = sent_whatsapp(client, sender, whatsapp)
    delivered = status_webhook(message_status(wamid, "delivered", RECIPIENT, now()))
    post_webhook(client, delivered)
    after = footprint(message_id)

    late_sent = status_webhook(message_status(wamid, "sent", RECIPIENT, now() - 5))
    for body in (delivered, late_sent, delivered):
        assert post_webhook(client, body).status_code == 200
    assert footprint(message_id) == after


def test_one_webhook_may_carry_statuses_of_many_messages(client, sender, whatsapp, worker):
    first, first_wamid = sent_whatsapp(client, sender, whatsapp, serial=1)
    body = status_webhook(
        message_status(first_wamid, "delivered", RECIPIENT, now()),
        message_status("wamid.unknown", "delivered", RECIPIENT, now()),
        message_status(first_wamid, "warning", RECIPIENT, now()),  # not about delivery
    )
    response = post_webhook(client, body)
    assert response.get_json() == {"matched": 1, "unmatched": 1}
    assert Message.get_by_id(first).state == "delivered"


def test_forged_unsigned_and_miskeyed_webhooks_are_refused(client, sender, whatsapp, worker):
    message_id, wamid = sent_whatsapp(client, sender, whatsapp)
    before = footprint(message_id)
    body = status_webhook(
        message_status(wamid, "failed", RECIPIENT, now(), errors=[undeliverable()])
    )
    other = status_webhook(message_status(wamid, "delivered", RECIPIENT, now()))
    refused = [
        post_webhook(client, body, signature=False),
        post_webhook(client, body, signature="sha256=" + "0" * 64),
        post_webhook(client, body, secret="another app's secret"),
        post_webhook(client, body, signature=hub_signature(APP_SECRET, other)),  # replayed
        post_webhook(client, body, signature=hub_signature(APP_SECRET, body)[7:]),  # no prefix
        post_webhook(client, body + b" ", signature=hub_signature(APP_SECRET, body)),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert footprint(message_id) == before


def test_without_an_app_secret_webhooks_are_refused(client, whatsapp, monkeypatch):
    monkeypatch.setattr(settings, "WHATSAPP_APP_SECRET", "")
    body = status_webhook(message_status("wamid.x", "delivered", RECIPIENT, now()))
    assert post_webhook(client, body, secret="").status_code == 403


def test_a_purged_message_is_not_found(client, sender, whatsapp, worker):
    message_id, wamid = sent_whatsapp(client, sender, whatsapp)
    purge_past_retention()
    purged = footprint(message_id)
    response = post_webhook(
        client, status_webhook(message_status(wamid, "delivered", RECIPIENT, now()))
    )
    assert response.get_json() == {"matched": 0, "unmatched": 1}
    assert footprint(message_id) == purged


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "json"),
        (json.dumps({"object": "whatsapp_business_account"}).encode(), "entry"),
        (status_webhook({"id": "wamid.x", "status": "sent", "timestamp": "soon"}), "entry"),
        (status_webhook({"status": "sent"}), "entry"),
        (status_webhook({"id": "w" * 300, "status": "sent"}), "entry"),
        (
            status_webhook(
                *[
                    message_status(f"wamid.{i}", "sent", RECIPIENT, 1)
                    for i in range(MAX_STATUSES + 1)
                ]
            ),
            "entry",
        ),
    ],
)
def test_signed_but_bad_webhooks_are_400_naming_the_field(client, whatsapp, body, field):
    response = post_webhook(client, body)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=200), flip=st.integers(min_value=0))
def test_any_change_to_the_body_invalidates_the_signature(body, flip):
    signature = hub_signature(APP_SECRET, body)
    assert webhook_signature_valid(APP_SECRET, body, signature)
    if body:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ (1 + flip % 255)]) + body[index + 1 :]
        assert not webhook_signature_valid(APP_SECRET, changed, signature)
    assert not webhook_signature_valid(APP_SECRET, body + b"\n", signature)
    assert not webhook_signature_valid(APP_SECRET + "x", body, signature)

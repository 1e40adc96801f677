"""Twilio status callbacks: an SMS sent by a real worker to the Twilio-shaped gateway on
127.0.0.1 names its StatusCallback on PUBLIC_BASE_URL; the gateway's callbacks, shaped and
signed as Twilio does, are posted to the app and move the message on — and nothing else does."""

import base64
import hashlib
import hmac

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from channels.sms import STATUS_CALLBACK_PATH, twilio_signature, twilio_signature_valid
from models.message import Message
from models.states import FailureReason
from settings import settings
from tests.api.providers_support import (
    PUBLIC_BASE_URL,
    callback_for,
    channel_active,
    footprint,
    history,
    listen_for_callbacks,
    person,
    purge_past_retention,
    send_to_person,
)
from tests.fakes.twilio import AUTH_TOKEN, status_callback
from tests.fakes.twilio import twilio_signature as twilio_computes

PHONE = "+37369123456"
STATUS_URL = PUBLIC_BASE_URL + STATUS_CALLBACK_PATH


@pytest.fixture
def receipts(monkeypatch, twilio):
    """Herald reachable by Twilio at PUBLIC_BASE_URL; the gateway on 127.0.0.1."""
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    return twilio


def sent_sms(client, sender, twilio, serial=1, phone=PHONE) -> tuple[str, dict]:
    """A message sent to a registered person's phone; its id and the gateway's resource."""
    message_id = send_to_person(client, sender, person(serial, "phone", phone), "sms")
    resource = next(r for r in twilio.resources if r["to"] == phone)
    return message_id, resource


def post_callback(client, form, *, url=STATUS_URL, token=AUTH_TOKEN, signature=None, path=None):
    """POST ``form`` to the status endpoint as Twilio would, signed for ``url`` with ``token``
    (or with the ``signature`` given; ``False``: none at all)."""
    headers = {}
    if signature is not False:
        headers["X-Twilio-Signature"] = signature or twilio_computes(token, url, form)
    return client.post(path or STATUS_CALLBACK_PATH, data=form, headers=headers)


# --- the send names the callback -----------------------------------------------------------
def test_each_send_names_the_status_callback_on_the_public_base_url(
    client, sender, receipts, worker
):
    sent_sms(client, sender, receipts)
    (request,) = receipts.requests
    assert (
        request.form()["StatusCallback"] == "https://herald.example.md/v1/providers/twilio/status"
    )


def test_without_a_public_base_url_no_callback_is_asked_for(client, sender, twilio, worker):
    sent_sms(client, sender, twilio)
    (request,) = twilio.requests
    assert set(request.form()) == {"To", "From", "Body"}


# --- receipts ------------------------------------------------------------------------------
def test_delivered_moves_the_message_and_calls_the_sender_back(
    client, sender, receipts, worker, monkeypatch
):
    callbacks = listen_for_callbacks(sender, monkeypatch)
    try:
        message_id, resource = sent_sms(client, sender, receipts)
        for status in ("queued", "sent", "delivered"):  # as Twilio reports them, in turn
            response = post_callback(client, status_callback(resource, status))
            assert response.status_code == 200, response.get_json()
            assert response.get_json() == {"matched": 1, "unmatched": 0}

        shown = history(client, sender, message_id)
        assert shown["state"] == "delivered"
        assert shown["deliveredAt"] is not None
        called = callback_for(callbacks, message_id, "delivered")
        assert called["deliveredAt"] == shown["deliveredAt"]
        assert called["readAt"] is None
    finally:
        callbacks.stop()


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (30003, FailureReason.DEAD_ADDRESS),  # unreachable handset
        (30005, FailureReason.DEAD_ADDRESS),  # unknown handset
        (30006, FailureReason.DEAD_ADDRESS),  # landline or unreachable carrier
        (30007, FailureReason.REJECTED_BY_PROVIDER),  # carrier filtering
    ],
)
def test_undelivered_fails_the_message_and_switches_a_dead_number_off(
    client, sender, receipts, worker, monkeypatch, code, reason
):
    """Only a dead handset's number is switched off: carrier filtering says nothing against
    the number itself."""
    callbacks = listen_for_callbacks(sender, monkeypatch)
    try:
        message_id, resource = sent_sms(client, sender, receipts)
        response = post_callback(client, status_callback(resource, "undelivered", code))
        assert response.status_code == 200

        row = Message.get_by_id(message_id)
        assert (row.state, row.failure_reason) == ("failed", reason)
        assert str(code) in row.last_error
        assert channel_active("phone", PHONE) == (reason != FailureReason.DEAD_ADDRESS)
        called = callback_for(callbacks, message_id, "failed")
        assert called["failureReason"] == reason
    finally:
        callbacks.stop()


def test_failed_after_delivered_fails_it_but_a_late_sent_changes_nothing(
    client, sender, receipts, worker
):
    message_id, resource = sent_sms(client, sender, receipts)
    post_callback(client, status_callback(resource, "delivered"))
    delivered = footprint(message_id)

    for repeat in ("delivered", "sent", "queued", "delivered"):
        assert post_callback(client, status_callback(resource, repeat)).status_code == 200
    assert footprint(message_id) == delivered

    post_callback(client, status_callback(resource, "failed", 30008))
    assert Message.get_by_id(message_id).state == "failed"


def test_forged_unsigned_miskeyed_and_replayed_callbacks_are_refused(
    client, sender, receipts, worker
):
    message_id, resource = sent_sms(client, sender, receipts)
    before = footprint(message_id)
    form = status_callback(resource, "undelivered", 30003)
    elsewhere = "https://other-herald.example.md" + STATUS_CALLBACK_PATH
    tampered = {**form, "ErrorCode": "30005"}

    refused = [
        post_callback(client, form, signature=False),
        post_callback(client, form, signature="not-a-signature"),
        post_callback(client, form, token="another account's token"),
        post_callback(client, form, url=elsewhere),  # signed for another URL, replayed here
        post_callback(client, form, url=STATUS_URL + "?replay=1"),
        post_callback(client, form, url=STATUS_URL, path=STATUS_CALLBACK_PATH + "?x=1"),
        post_callback(client, tampered, signature=twilio_computes(AUTH_TOKEN, STATUS_URL, form)),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert refused[0].get_json()["message"].startswith("X-Twilio-Signature")
    assert footprint(message_id) == before


def test_the_url_is_the_public_one_not_the_host_header(client, sender, receipts, worker):
    message_id, resource = sent_sms(client, sender, receipts)
    form = status_callback(resource, "delivered")
    as_host = post_callback(client, form, url="http://localhost" + STATUS_CALLBACK_PATH)
    assert as_host.status_code == 403
    query = STATUS_URL + "?attempt=2"
    with_query = post_callback(client, form, url=query, path=STATUS_CALLBACK_PATH + "?attempt=2")
    assert with_query.status_code == 200
    assert Message.get_by_id(message_id).state == "delivered"


def test_without_public_base_url_or_token_callbacks_are_refused(
    client, sender, twilio, monkeypatch
):
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    assert post_callback(client, form).status_code == 403  # PUBLIC_BASE_URL empty
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    monkeypatch.setattr(settings, "SMS_AUTH_TOKEN", "")
    assert post_callback(client, form, token="").status_code == 403


def test_unknown_and_purged_messages_are_answered_without_change(client, sender, receipts, worker):
    message_id, resource = sent_sms(client, sender, receipts)
    stranger = {**status_callback(resource, "delivered"), "MessageSid": "SM" + "f" * 32}
    response = post_callback(client, stranger)
    assert response.status_code == 200
    assert response.get_json() == {"matched": 0, "unmatched": 1}
    assert Message.get_by_id(message_id).state == "sent"

    purge_past_retention()
    purged = footprint(message_id)
    response = post_callback(client, status_callback(resource, "undelivered", 30003))
    assert response.get_json() == {"matched": 0, "unmatched": 1}
    assert footprint(message_id) == purged


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"MessageStatus": "delivered"}, "MessageSid"),
        ({"MessageSid": "SM1", "MessageStatus": "lost"}, "MessageStatus"),
        ({"MessageSid": "SM 1", "MessageStatus": "sent"}, "MessageSid"),
        ({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "x"}, "ErrorCode"),
    ],
)
def test_signed_but_bad_callbacks_are_400_naming_the_field(client, receipts, form, field):
    response = post_callback(client, form)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]


def test_a_json_or_oversized_body_is_refused(client, receipts):
    assert client.post(STATUS_CALLBACK_PATH, json={"MessageSid": "SM1"}).status_code == 415
    huge = {"MessageSid": "SM1", "MessageStatus": "sent", "Body": "x" * 300_000}
    assert post_callback(client, huge).status_code == 413


# --- the signature itself ------------------------------------------------------------------
def test_the_signature_matches_twilio_s_documented_example():
    """The example of Twilio's "Webhooks security" page (auth token 12345)."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert twilio_signature("12345", url, list(params.items())) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    digest = hmac.new(
        b"12345", (url + "".join(k + v for k, v in sorted(params.items()))).encode(), hashlib.sha1
    )
    assert base64.b64encode(digest.digest()).decode() == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_an_https_url_is_also_checked_without_and_with_its_default_port():
    params = [("MessageSid", "SM1"), ("MessageStatus", "sent")]
    signed = twilio_signature(AUTH_TOKEN, "https://herald.example.md:443/v1/x", params)
    assert twilio_signature_valid(AUTH_TOKEN, "https://herald.example.md/v1/x", params, signed)
    assert not twilio_signature_valid(
        AUTH_TOKEN, "https://herald.example.md:8443/v1/x", params, signed
    )


FORMS = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),  # as werkzeug decodes
    min_size=1,
    max_size=8,
)


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(form=FORMS, data=st.data())
def test_any_change_to_a_parameter_or_the_url_invalidates_the_signature(form, data):
    signature = twilio_computes(AUTH_TOKEN, STATUS_URL, form)
    params = list(form.items())
    assert twilio_signature_valid(AUTH_TOKEN, STATUS_URL, params, signature)

    name = data.draw(st.sampled_from(sorted(form)))
    changed = data.draw(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=40).filter(
            lambda value: value != form[name]
        )
    )
    tampered = [(key, changed if key == name else value) for key, value in params]
    assert not twilio_signature_valid(AUTH_TOKEN, STATUS_URL, tampered, signature)
    dropped = [(key, value) for key, value in params if key != name]
    assert not twilio_signature_valid(AUTH_TOKEN, STATUS_URL, dropped, signature)
    added = [*params, ("Zz" + name, "")]
    assert not twilio_signature_valid(AUTH_TOKEN, STATUS_URL, added, signature)
    assert not twilio_signature_valid(AUTH_TOKEN, STATUS_URL + "?x", params, signature)
    assert not twilio_signature_valid(AUTH_TOKEN + "x", STATUS_URL, params, signature)

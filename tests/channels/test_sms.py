"""SMS: segment counting, phone numbers, and the Twilio adapter against a Twilio-shaped HTTP
server, alone and through the API with a real worker."""

import base64
import os
import subprocess
import sys

import pytest

from channels import REGISTRY
from channels.base import DeadAddress, InvalidDestination, PermanentError, Rendered, TransientError
from channels.phone import parse_phone
from channels.sms import GSM7, UCS2, Segments, count_segments
from dev.embedded_redis import free_port
from models.message import Message
from models.states import FailureReason, MessageState
from settings import EXIT_INVALID, settings
from tests.factories import message
from tests.fakes.http import Response
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, twilio_error
from tests.support import settled, wait_until

SENDER_ID = "Herald"


@pytest.fixture
def twilio(twilio, monkeypatch):
    """The shared Twilio-shaped gateway, with SMS retries after tens of milliseconds."""
    monkeypatch.setattr(settings.SMS, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.SMS, "MAX_BACKOFF_MS", 200)
    return twilio


def sms_notification(*numbers: str, body: str = "Vă așteptăm luni la ora 9:00.", **message):
    return {
        "recipients": [{"type": "phone", "value": number} for number in numbers],
        "message": {"body": body, **message},
    }


def post(client, sender, body):
    return client.post("/v1/notifications", json=body, headers=sender.headers)


# --- segments ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Segments(1, GSM7)),
        ("Programare confirmata pentru luni, ora 9:00.", Segments(1, GSM7)),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà", Segments(1, GSM7)),
        ("a" * 160, Segments(1, GSM7)),
        ("a" * 161, Segments(2, GSM7)),
        ("a" * 306, Segments(2, GSM7)),
        ("a" * 307, Segments(3, GSM7)),
        # extension characters take two septets each
        ("Plata: 20€ [ref {7}] ~ ^ | \\", Segments(1, GSM7)),
        ("€" * 80, Segments(1, GSM7)),
        ("€" * 81, Segments(2, GSM7)),
        ("a" * 159 + "€", Segments(2, GSM7)),
        # 306 septets, but an escape sequence is never split: 152 + 76×2 + 1×2
        ("a" * 152 + "€" * 77, Segments(3, GSM7)),
        # Romanian diacritics are not in the GSM alphabet
        ("Vă așteptăm în sala ţ", Segments(1, UCS2)),
        ("ăâîșț", Segments(1, UCS2)),
        ("ș" * 70, Segments(1, UCS2)),
        ("ș" * 71, Segments(2, UCS2)),
        ("ș" * 134, Segments(2, UCS2)),
        ("ș" * 135, Segments(3, UCS2)),
        ("a" * 160 + "ă", Segments(3, UCS2)),
        # an emoji is two UTF-16 code units, and a pair is never split
        ("😀" * 35, Segments(1, UCS2)),
        ("😀" * 36, Segments(2, UCS2)),
        ("a" * 69 + "😀", Segments(2, UCS2)),
        ("😀" * 67, Segments(3, UCS2)),
    ],
)
def test_segments_are_counted_as_gateways_count_them(text, expected):
    assert count_segments(text) == expected


# --- phone numbers -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+37369123456", "+37369123456"),
        ("+373 69 123 456", "+37369123456"),
        ("069123456", "+37369123456"),
        ("(022) 12-34-56", "+37322123456"),
        ("+40 721 234 567", "+40721234567"),
        ("  +44 7911 123456 ", "+447911123456"),
    ],
)
def test_numbers_are_normalised_to_e164(written, e164):
    assert parse_phone(written) == e164


def test_numbers_without_a_country_code_are_read_in_the_default_region(monkeypatch):
    monkeypatch.setattr(settings, "SMS_DEFAULT_REGION", "RO")
    assert parse_phone("0721 234 567") == "+40721234567"


@pytest.mark.parametrize(
    "junk",
    [
        "hello",
        "+373 69 ABC 456",
        "123",
        "+373 1",
        "++37369123456",
        "+999 123456789",
        "0" * 40,
        "",
        37369123456,
    ],
)
def test_non_numbers_are_refused(junk):
    with pytest.raises(InvalidDestination):
        parse_phone(junk)


# --- the adapter against the Twilio-shaped server ------------------------------------------
def send(text="Salut", action_url=None, to="+37369123456"):
    return REGISTRY["sms"].send(Rendered(subject="Unused", body=text, action_url=action_url), to)


def test_a_message_is_posted_as_twilio_expects(twilio):
    twilio.num_segments = None  # the gateway did not say: Herald's own count is kept
    receipt = send("Programare confirmată " * 5, action_url="https://e.md/p/1")

    (request,) = twilio.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.form() == {
        "To": "+37369123456",
        "From": SENDER_ID,
        "Body": "Programare confirmată " * 5 + "\nhttps://e.md/p/1",
    }
    assert receipt.provider_id.startswith("SM") and len(receipt.provider_id) == 34
    assert receipt.details == {"segments": 2, "encoding": UCS2}


def test_the_gateways_segment_count_is_preferred(twilio):
    twilio.num_segments = "3"
    assert send("Salut").details == {"segments": 3, "encoding": GSM7}


@pytest.mark.parametrize(
    ("answer", "error", "reason"),
    [
        (
            twilio_error(400, 21211, "Invalid 'To' Phone Number"),
            PermanentError,
            FailureReason.INVALID_DESTINATION,
        ),
        (
            twilio_error(400, 21614, "'To' number is not a valid mobile number"),
            PermanentError,
            FailureReason.INVALID_DESTINATION,
        ),
        (
            twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
            DeadAddress,
            FailureReason.DEAD_ADDRESS,
        ),
        (
            twilio_error(
                400, 21408, "Permission to send an SMS has not been enabled for the region"
            ),
            PermanentError,
            FailureReason.REJECTED_BY_PROVIDER,
        ),
        (
            twilio_error(403, 20008, "Resource not accessible with Test Account Credentials"),
            PermanentError,
            FailureReason.REJECTED_BY_PROVIDER,
        ),
        (twilio_error(429, 20429, "Too Many Requests"), TransientError, None),
        (twilio_error(500, 20500, "Internal Server Error"), TransientError, None),
        (
            Response(503, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"}),
            TransientError,
            None,
        ),
    ],
)
def test_twilio_answers_are_classified(twilio, answer, error, reason):
    twilio.failures = [answer]
    with pytest.raises(error) as raised:
        send()
    if reason:
        assert raised.value.reason == reason
    if isinstance(answer.body, dict):
        assert str(answer.body["code"]) in str(raised.value)
        assert answer.body["message"] in str(raised.value)
    assert type(raised.value) is error


def test_retry_after_is_passed_on(twilio):
    twilio.failures = [twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "7"})]
    with pytest.raises(TransientError) as raised:
        send()
    assert raised.value.retry_after == 7


def test_refused_credentials_are_retried_and_not_revealed(twilio, monkeypatch):
    monkeypatch.setattr(settings, "SMS_AUTH_TOKEN", "wrong-token")
    with pytest.raises(TransientError) as raised:
        send()
    assert "401" in str(raised.value) and "20003" in str(raised.value)
    assert "wrong-token" not in str(raised.value)
    assert ACCOUNT_SID not in str(raised.value)


def test_missing_configuration_is_retried_without_calling_the_gateway(twilio, monkeypatch):
    monkeypatch.setattr(settings, "SMS_FROM", "")
    with pytest.raises(TransientError, match="SMS_FROM"):
        send()
    assert twilio.requests == []


def test_an_unreachable_gateway_is_transient(twilio, monkeypatch):
    monkeypatch.setattr(settings, "SMS_API_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match="cannot reach 127.0.0.1"):
        send()


def test_an_unknown_provider_is_a_clear_error(twilio, monkeypatch):
    monkeypatch.setattr(settings, "SMS_PROVIDER", "carrier-pigeon")
    with pytest.raises(TransientError, match="SMS_PROVIDER='carrier-pigeon' is not one of: twilio"):
        send()
    assert twilio.requests == []


def test_an_unknown_provider_stops_herald_at_start_up():
    environment = {
        **os.environ,
        "SMS_PROVIDER": "carrier-pigeon",
        "DATABASE_URL": "sqlite:///:memory:",
    }
    started = subprocess.run(
        [sys.executable, "-c", "import channels"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.join(os.path.dirname(__file__), "..", ".."),
    )
    assert started.returncode == EXIT_INVALID
    assert "SMS_PROVIDER='carrier-pigeon' is not one of: twilio" in started.stderr


# --- through the API and a worker ----------------------------------------------------------
def test_an_sms_travels_from_the_api_to_the_gateway(client, sender, twilio, worker):
    posted = post(client, sender, sms_notification("069 123 456", subject="Not sent by SMS"))
    assert posted.status_code == 202
    (summary,) = posted.get_json()["messages"]
    assert (summary["channel"], summary["destination"]) == ("sms", "+37369123456")

    wait_until(settled(summary["id"], MessageState.SENT))

    (request,) = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form() == {
        "To": "+37369123456",
        "From": SENDER_ID,
        "Body": "Vă așteptăm luni la ora 9:00.",
    }
    status = client.get(f"/v1/messages/{summary['id']}", headers=sender.headers).get_json()
    assert status["state"] == "sent"
    assert status["details"] == {"segments": 1, "encoding": "UCS-2"}
    assert status["attemptHistory"][0]["providerId"].startswith("SM")


def test_a_rate_limited_sms_waits_as_told_then_is_sent(client, sender, twilio, worker):
    twilio.failures = [twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "1"})]
    message_id = post(client, sender, sms_notification("+37369123456")).get_json()["messages"][0][
        "id"
    ]

    wait_until(settled(message_id, MessageState.SENT))

    status = client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()
    assert [a["outcome"] for a in status["attemptHistory"]] == ["transient", "sent"]
    assert "20429" in status["attemptHistory"][0]["error"]
    first, second = twilio.arrivals
    assert second - first >= 1.0  # Retry-After, not the 50 ms backoff


@pytest.mark.parametrize(
    ("answer", "reason", "outcome"),
    [
        (twilio_error(400, 21211, "Invalid 'To' Phone Number"), "INVALID_DESTINATION", "permanent"),
        (
            twilio_error(400, 21408, "Permission to send an SMS has not been enabled"),
            "REJECTED_BY_PROVIDER",
            "permanent",
        ),
        (
            twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
            "DEAD_ADDRESS",
            "dead_address",
        ),
    ],
)
def test_a_refused_sms_fails_at_once_with_its_reason(
    client, sender, twilio, worker, answer, reason, outcome
):
    twilio.failures = [answer]
    message_id = post(client, sender, sms_notification("+37369123456")).get_json()["messages"][0][
        "id"
    ]

    wait_until(settled(message_id, MessageState.FAILED))

    failed = message(message_id)
    assert failed.failure_reason == reason
    assert failed.attempts == 1
    assert str(answer.body["code"]) in failed.last_error
    status = client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()
    assert [a["outcome"] for a in status["attemptHistory"]] == [outcome]
    assert len(twilio.requests) == 1


def test_bad_numbers_are_refused_at_accept_time_by_index(client, sender, twilio):
    body = sms_notification(
        "+37369123456", "not a number", "+373 69 ABC 456", "123", "+37369123457"
    )

    response = post(client, sender, body)

    assert response.status_code == 400
    errors = response.get_json()["errors"]["recipients"]
    assert sorted(errors) == ["1", "2", "3"]
    assert all("Not a valid phone number" in errors[index]["value"][0] for index in errors)
    assert Message.select().count() == 0


@pytest.mark.parametrize(
    ("body", "segments"),
    [("a" * 919, "7 GSM-7"), ("ă" * 403, "7 UCS-2"), ("😀" * 199, "7 UCS-2")],
)
def test_an_sms_over_the_segment_limit_is_refused(client, sender, twilio, body, segments):
    response = post(client, sender, sms_notification("+37369123456", body=body))

    assert response.status_code == 400
    (error,) = response.get_json()["errors"]["message"]["body"]
    assert f"it would take {segments} segments" in error
    assert "at most 6" in error


def test_the_action_link_counts_towards_the_sms_length(client, sender, twilio, monkeypatch):
    monkeypatch.setattr(settings, "SMS_MAX_SEGMENTS", 1)
    fits = sms_notification("+37369123456", body="a" * 160)
    assert post(client, sender, fits).status_code == 202
    over = sms_notification("+37369123456", body="a" * 140, actionUrl="https://e.md/p/1234567890")
    response = post(client, sender, over)
    assert response.status_code == 400
    assert "2 GSM-7 segments" in response.get_json()["errors"]["message"]["body"][0]


def test_the_segment_limit_applies_only_when_sms_is_used(client, sender):
    body = {
        "recipients": [{"type": "email", "value": "ion@example.md"}],
        "message": {"subject": "Lung", "body": "a" * 2000},
    }
    assert post(client, sender, body).status_code == 202

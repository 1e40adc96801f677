"""WhatsApp: the Cloud API adapter against a Graph-shaped HTTP server, alone and through the API
with a real worker; text and template messages."""

import pytest

from channels import REGISTRY
from channels.base import PermanentError, Rendered, TransientError
from models.message import Message
from models.states import FailureReason, MessageState
from settings import settings
from tests.factories import message
from tests.fakes.http import Response
from tests.fakes.whatsapp import API_VERSION, PHONE_NUMBER_ID, TOKEN, FakeWhatsApp, graph_error
from tests.support import settled, wait_until

TEMPLATE = {
    "name": "appointment_reminder",
    "language": "ro",
    "components": [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Ion Popescu"},
                {"type": "date_time", "date_time": {"fallback_value": "luni, 9:00"}},
            ],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "p/1"}],
        },
    ],
}


@pytest.fixture
def whatsapp(monkeypatch):
    """A Cloud-API-shaped server, with the WhatsApp settings pointing at it."""
    fake = FakeWhatsApp().start()
    monkeypatch.setattr(settings, "WHATSAPP_API_URL", fake.api_url)
    monkeypatch.setattr(settings, "WHATSAPP_TOKEN", TOKEN)
    monkeypatch.setattr(settings, "WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID)
    monkeypatch.setattr(settings.WHATSAPP, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.WHATSAPP, "MAX_BACKOFF_MS", 200)
    yield fake
    REGISTRY["whatsapp"].close()
    fake.stop()


def whatsapp_notification(*numbers: str, body: str = "Vă așteptăm luni la ora 9:00.", **message):
    return {
        "recipients": [{"type": "whatsapp", "value": number} for number in numbers],
        "message": {"body": body, **message},
    }


def post(client, sender, body):
    return client.post("/v1/notifications", json=body, headers=sender.headers)


def send(body="Salut", action_url=None, template=None, to="+37369123456"):
    content = {"body": body, "whatsapp_template": template} if template else {"body": body}
    rendered = Rendered(subject="Unused", body=body, action_url=action_url, content=content)
    return REGISTRY["whatsapp"].send(rendered, to)


# --- the adapter against the Cloud-API-shaped server ---------------------------------------
def test_a_text_message_is_posted_as_the_cloud_api_expects(whatsapp):
    receipt = send("Dosarul dvs. a fost aprobat.", action_url="https://e.md/d/7")

    (request,) = whatsapp.requests
    assert request.method == "POST"
    assert request.path == f"/{API_VERSION}/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "37369123456",
        "type": "text",
        "text": {"body": "Dosarul dvs. a fost aprobat.\nhttps://e.md/d/7", "preview_url": False},
    }
    assert receipt.provider_id.startswith("wamid.")
    assert receipt.details == {"type": "text"}


def test_a_template_message_is_sent_instead_of_text(whatsapp):
    receipt = send("Fallback text", template=TEMPLATE)

    (request,) = whatsapp.requests
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "37369123456",
        "type": "template",
        "template": {
            "name": "appointment_reminder",
            "language": {"code": "ro"},
            "components": TEMPLATE["components"],
        },
    }
    assert receipt.details == {"type": "template", "template": "appointment_reminder"}


def test_a_template_without_components_sends_none(whatsapp):
    send(template={"name": "hello_world", "language": "en_US"})
    assert whatsapp.requests[0].json()["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
    }


@pytest.mark.parametrize(
    ("answer", "error", "reason"),
    [
        (graph_error(400, 130429, "Rate limit hit", "OAuthException"), TransientError, None),
        (
            graph_error(400, 131056, "(Business Account, Consumer Account) pair rate limit hit"),
            TransientError,
            None,
        ),
        (graph_error(400, 4, "(#4) Application request limit reached"), TransientError, None),
        (graph_error(400, 80007, "Rate limit issues"), TransientError, None),
        (graph_error(429, 130429, "Rate limit hit"), TransientError, None),
        (graph_error(500, 131000, "Something went wrong"), TransientError, None),
        (Response(502, b"Bad Gateway", {"Content-Type": "text/plain"}), TransientError, None),
        (
            graph_error(400, 131026, "Message undeliverable"),
            PermanentError,
            FailureReason.INVALID_DESTINATION,
        ),
        (
            graph_error(400, 131047, "Re-engagement message"),
            PermanentError,
            FailureReason.REJECTED_BY_PROVIDER,
        ),
        (
            graph_error(404, 132001, "Template name does not exist in the translation"),
            PermanentError,
            FailureReason.REJECTED_BY_PROVIDER,
        ),
        (
            graph_error(400, 131051, "Unsupported message type"),
            PermanentError,
            FailureReason.REJECTED_BY_PROVIDER,
        ),
    ],
)
def test_cloud_api_answers_are_classified(whatsapp, answer, error, reason):
    whatsapp.failures = [answer]
    with pytest.raises(error) as raised:
        send()
    assert type(raised.value) is error
    if reason:
        assert raised.value.reason == reason
    if isinstance(answer.body, dict):
        recorded = answer.body["error"]
        assert f"WhatsApp error {recorded['code']}" in str(raised.value)
        assert recorded["message"] in str(raised.value)
        assert recorded["fbtrace_id"] in str(raised.value)


def test_re_engagement_says_a_template_is_needed(whatsapp):
    whatsapp.failures = [graph_error(400, 131047, "Re-engagement message")]
    with pytest.raises(PermanentError, match="24 hours.*whatsappTemplate"):
        send()


def test_retry_after_is_passed_on(whatsapp):
    whatsapp.failures = [graph_error(429, 130429, "Rate limit hit", **{"Retry-After": "12"})]
    with pytest.raises(TransientError) as raised:
        send()
    assert raised.value.retry_after == 12


def test_an_expired_token_is_retried_and_not_revealed(whatsapp, monkeypatch):
    monkeypatch.setattr(settings, "WHATSAPP_TOKEN", "EAAG-expired-token")
    with pytest.raises(TransientError) as raised:
        send()
    assert "WhatsApp error 190" in str(raised.value)
    assert "EAAG-expired-token" not in str(raised.value)


def test_missing_configuration_is_retried_without_calling_the_api(whatsapp, monkeypatch):
    monkeypatch.setattr(settings, "WHATSAPP_PHONE_NUMBER_ID", "")
    with pytest.raises(TransientError, match="WHATSAPP_PHONE_NUMBER_ID"):
        send()
    assert whatsapp.requests == []


# --- through the API and a worker ----------------------------------------------------------
def test_a_whatsapp_message_travels_from_the_api_to_the_cloud_api(client, sender, whatsapp, worker):
    posted = post(
        client, sender, whatsapp_notification("069 123 456", actionUrl="https://e.md/p/1")
    )
    assert posted.status_code == 202
    (summary,) = posted.get_json()["messages"]
    assert (summary["channel"], summary["destination"]) == ("whatsapp", "+37369123456")

    wait_until(settled(summary["id"], MessageState.SENT))

    (request,) = whatsapp.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "37369123456",
        "type": "text",
        "text": {"body": "Vă așteptăm luni la ora 9:00.\nhttps://e.md/p/1", "preview_url": False},
    }
    status = client.get(f"/v1/messages/{summary['id']}", headers=sender.headers).get_json()
    assert status["details"] == {"type": "text"}
    assert status["attemptHistory"][0]["providerId"].startswith("wamid.")


def test_a_template_notification_sends_the_template(client, sender, whatsapp, worker):
    body = whatsapp_notification("+37369123456", whatsappTemplate=TEMPLATE)
    posted = post(client, sender, body)
    assert posted.status_code == 202
    assert posted.get_json()["message"]["whatsappTemplate"] == TEMPLATE
    message_id = posted.get_json()["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    sent = whatsapp.requests[0].json()
    assert sent["type"] == "template"
    assert sent["template"] == {
        "name": TEMPLATE["name"],
        "language": {"code": "ro"},
        "components": TEMPLATE["components"],
    }
    assert "text" not in sent
    assert message(message_id).details == {"type": "template", "template": "appointment_reminder"}


def test_a_throttled_message_is_retried_then_sent(client, sender, whatsapp, worker):
    whatsapp.failures = [graph_error(400, 130429, "Rate limit hit")]
    message_id = post(client, sender, whatsapp_notification("+37369123456")).get_json()["messages"][
        0
    ]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    status = client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()
    assert status["attempts"] == 2
    assert [a["outcome"] for a in status["attemptHistory"]] == ["transient", "sent"]
    assert "130429" in status["attemptHistory"][0]["error"]
    assert len(whatsapp.requests) == 2


def test_an_http_429_waits_for_retry_after(client, sender, whatsapp, worker):
    whatsapp.failures = [graph_error(429, 130429, "Rate limit hit", **{"Retry-After": "1"})]
    message_id = post(client, sender, whatsapp_notification("+37369123456")).get_json()["messages"][
        0
    ]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    first, second = whatsapp.arrivals
    assert second - first >= 1.0  # Retry-After, not the 50 ms backoff


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (graph_error(400, 131026, "Message undeliverable"), "INVALID_DESTINATION"),
        (graph_error(400, 131047, "Re-engagement message"), "REJECTED_BY_PROVIDER"),
    ],
)
def test_a_refused_message_fails_at_once_with_its_reason(
    client, sender, whatsapp, worker, answer, reason
):
    whatsapp.failures = [answer]
    message_id = post(client, sender, whatsapp_notification("+37369123456")).get_json()["messages"][
        0
    ]["id"]

    wait_until(settled(message_id, MessageState.FAILED))

    failed = message(message_id)
    assert failed.failure_reason == reason
    assert failed.attempts == 1
    assert str(answer.body["error"]["code"]) in failed.last_error
    assert len(whatsapp.requests) == 1


def test_bad_numbers_are_refused_at_accept_time_by_index(client, sender, whatsapp):
    body = whatsapp_notification("+37369123456", "+373 69 ABC 456", "12", "whatsapp:+37369123456")

    response = post(client, sender, body)

    assert response.status_code == 400
    errors = response.get_json()["errors"]["recipients"]
    assert sorted(errors) == ["1", "2", "3"]
    assert all("Not a valid phone number" in errors[index]["value"][0] for index in errors)
    assert Message.select().count() == 0


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ({"name": "Appointment Reminder", "language": "ro"}, "name"),
        ({"name": "appointment_reminder"}, "language"),
        ({"name": "appointment_reminder", "language": "romanian"}, "language"),
        (
            {
                "name": "appointment_reminder",
                "language": "ro",
                "components": [{"text": "x" * 5000}],
            },
            "components",
        ),
        ({"name": "appointment_reminder", "language": "ro", "namespace": "x"}, "namespace"),
    ],
)
def test_a_bad_template_is_refused(client, sender, template, field):
    response = post(
        client, sender, whatsapp_notification("+37369123456", whatsappTemplate=template)
    )
    assert response.status_code == 400
    assert field in response.get_json()["errors"]["message"]["whatsappTemplate"]


def test_text_over_the_cloud_api_limit_is_refused_unless_a_template_is_sent(
    client, sender, whatsapp
):
    response = post(client, sender, whatsapp_notification("+37369123456", body="a" * 4097))
    assert response.status_code == 400
    assert "at most 4096" in response.get_json()["errors"]["message"]["body"][0]

    with_template = whatsapp_notification(
        "+37369123456", body="a" * 4097, whatsappTemplate=TEMPLATE
    )
    assert post(client, sender, with_template).status_code == 202

"""Webhooks through the API and a real worker to a real receiver that checks the signature."""

import socket
from datetime import datetime

import pytest

from channels import REGISTRY
from channels.base import PermanentError, TransientError
from channels.webhook import check_destination
from models.sender import Sender
from models.states import MessageState
from settings import settings
from tests.factories import message
from tests.fakes.http import Response
from tests.fakes.receiver import SignedReceiver, header
from tests.support import running_worker, settled, wait_until


@pytest.fixture
def allow_private(monkeypatch):
    """The receivers listen on http://127.0.0.1, which production settings refuse."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)


@pytest.fixture
def receiver(sender, allow_private):
    server = SignedReceiver(sender.sender.webhook_secret).start()
    yield server
    server.stop()
    REGISTRY["webhook"].close()


@pytest.fixture
def fast_webhook_retries(monkeypatch):
    monkeypatch.setattr(settings.WEBHOOK, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.WEBHOOK, "MAX_BACKOFF_MS", 200)


def webhook(*urls: str, **extra) -> dict:
    body = {
        "recipients": [{"type": "webhook", "value": url} for url in urls],
        "message": {"subject": "Dosar aprobat", "body": "Dosarul 42 a fost aprobat."},
    }
    body.update(extra)
    return body


def send(client, sender, body) -> str:
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["messages"][0]["id"]


def test_a_webhook_is_posted_as_signed_json(client, sender, other_sender, receiver, worker):
    body = webhook(
        f"{receiver.url}/hooks/herald?source=herald",
        event="permit.approved",
        serviceName="Permits",
        reference="PRM-2024-42",
        targetId="42",
        targetType="permit",
    )
    body["message"].update(actionUrl="https://permits.example.md/42", data={"permit": 42})
    message_id = send(client, sender, body)

    wait_until(settled(message_id, MessageState.SENT))

    (request,) = receiver.verified
    assert request.method == "POST"
    assert request.path == "/hooks/herald?source=herald"
    assert header(request, "Content-Type") == "application/json"
    assert header(request, "User-Agent") == "Herald"
    assert header(request, "Herald-Message-Id") == message_id
    sent = request.json()
    notification_id = message(message_id).notification_id
    assert sent == {
        "messageId": message_id,
        "notificationId": str(notification_id),
        "event": "permit.approved",
        "serviceName": "Permits",
        "reference": "PRM-2024-42",
        "targetId": "42",
        "targetType": "permit",
        "subject": "Dosar aprobat",
        "body": "Dosarul 42 a fost aprobat.",
        "actionUrl": "https://permits.example.md/42",
        "data": {"permit": 42},
        "sentAt": sent["sentAt"],
    }
    assert datetime.fromisoformat(sent["sentAt"]).utcoffset().total_seconds() == 0
    status = client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()
    assert status["attempts"] == 1
    assert status["details"] == {"status": 200}


def test_the_signature_is_made_with_the_senders_own_secret(client, sender, receiver, worker):
    """The receiver refuses (401) a signature made with any other secret."""
    Sender.update(webhook_secret="not-the-secret-the-receiver-has").where(
        Sender.id == sender.sender.id
    ).execute()
    message_id = send(client, sender, webhook(f"{receiver.url}/hook"))

    wait_until(settled(message_id, MessageState.FAILED))

    assert receiver.verified == []
    assert len(receiver.requests) == 1
    assert message(message_id).failure_reason == "REJECTED_BY_PROVIDER"
    assert "401" in message(message_id).last_error


def test_transient_answers_are_retried_honouring_retry_after(
    client, sender, receiver, worker, fast_webhook_retries
):
    receiver.replies = [
        Response(503, {"error": "maintenance"}),
        Response(429, {"error": "slow down"}, headers={"Retry-After": "1"}),
    ]
    message_id = send(client, sender, webhook(f"{receiver.url}/hook"))

    wait_until(settled(message_id, MessageState.SENT))

    assert len(receiver.verified) == 3
    assert {header(r, "Herald-Message-Id") for r in receiver.verified} == {message_id}
    assert receiver.arrivals[2] - receiver.arrivals[1] >= 1.0
    status = client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()
    assert [a["outcome"] for a in status["attemptHistory"]] == ["transient", "transient", "sent"]
    assert "503" in status["attemptHistory"][0]["error"]
    assert "429" in status["attemptHistory"][1]["error"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Response(400, {"error": "unknown event"}), "REJECTED_BY_PROVIDER"),
        (Response(410, {"error": "hook deleted"}), "DEAD_ADDRESS"),
        (Response(404, {"error": "no such hook"}), "REJECTED_BY_PROVIDER"),
    ],
)
def test_other_client_errors_fail_at_once(
    client, sender, receiver, worker, fast_webhook_retries, answer, reason
):
    receiver.replies = [answer]
    message_id = send(client, sender, webhook(f"{receiver.url}/hook"))

    wait_until(settled(message_id, MessageState.FAILED))

    failed = message(message_id)
    assert failed.failure_reason == reason
    assert failed.attempts == 1
    assert str(answer.status) in failed.last_error
    assert answer.body["error"] in failed.last_error
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(client, sender, receiver, worker):
    receiver.replies = [Response(302, b"", headers={"Location": f"{receiver.url}/elsewhere"})]
    message_id = send(client, sender, webhook(f"{receiver.url}/hook"))

    wait_until(settled(message_id, MessageState.FAILED))

    assert message(message_id).failure_reason == "REJECTED_BY_PROVIDER"
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_a_large_answer_is_cut_short_in_the_error(client, sender, receiver, worker):
    receiver.replies = [Response(400, b"x" * 1_000_000, {"Content-Type": "text/plain"})]
    message_id = send(client, sender, webhook(f"{receiver.url}/hook"))

    wait_until(settled(message_id, MessageState.FAILED))

    assert "400" in message(message_id).last_error
    assert len(message(message_id).last_error) < 1000


def test_an_unreachable_receiver_is_retried(
    client, sender, receiver, worker, fast_webhook_retries, monkeypatch
):
    monkeypatch.setattr(settings.WEBHOOK, "MAX_RETRIES", 1)
    receiver.stop()  # nothing listens on its port any more
    message_id = send(client, sender, webhook(f"{receiver.url}/hook"))

    wait_until(settled(message_id, MessageState.FAILED))

    failed = message(message_id)
    assert failed.failure_reason == "RETRIES_EXHAUSTED"
    assert failed.attempts == 2
    assert "cannot reach 127.0.0.1" in failed.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.md/herald",
        "https://127.0.0.1/herald",
        "https://localhost:8443/herald",
        "https://10.0.0.1/",
        "https://192.168.1.10/hook",
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://user:password@hooks.example.md/",
        "ftp://hooks.example.md/",
        "not a url",
    ],
)
def test_unsafe_urls_are_refused_naming_the_recipient(client, sender, monkeypatch, url):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", False)
    body = webhook("https://hooks.example.md/herald", url)

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    assert response.status_code == 400
    errors = response.get_json()["errors"]["recipients"]
    assert list(errors) == ["1"]
    assert errors["1"]["value"]


def test_a_url_that_became_unsafe_fails_at_send_time(client, sender, receiver, queues, monkeypatch):
    message_id = send(client, sender, webhook(f"{receiver.url}/hook"))
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", False)

    with running_worker(queues):
        wait_until(settled(message_id, MessageState.FAILED))

    assert message(message_id).failure_reason == "INVALID_DESTINATION"
    assert receiver.requests == []


def test_webhook_urls_are_limited_in_length(client, sender):
    body = webhook("https://hooks.example.md/" + "a" * 2000)
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 400
    assert "2000" in response.get_json()["errors"]["recipients"]["0"]["value"][0]


def resolves_to(monkeypatch, outcome) -> None:
    """Stand-in for DNS: no resolver of ours can answer for public names on this machine."""

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(outcome, Exception):
            raise outcome
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (outcome, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.169.254"])
def test_a_name_resolving_to_a_private_address_is_an_invalid_destination(monkeypatch, address):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", False)
    resolves_to(monkeypatch, address)
    with pytest.raises(PermanentError) as raised:
        check_destination("https://hooks.example.md/herald")
    assert raised.value.reason == "INVALID_DESTINATION"
    assert address in str(raised.value)


def test_dns_answers_decide_between_transient_and_permanent(monkeypatch):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", False)
    resolves_to(monkeypatch, "93.184.215.14")
    check_destination("https://hooks.example.md/herald")

    resolves_to(monkeypatch, socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    with pytest.raises(TransientError):
        check_destination("https://hooks.example.md/herald")

    resolves_to(monkeypatch, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    with pytest.raises(PermanentError) as raised:
        check_destination("https://hooks.example.md/herald")
    assert raised.value.reason == "INVALID_DESTINATION"

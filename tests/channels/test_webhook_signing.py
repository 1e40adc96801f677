"""Webhooks signed per endpoint in the Standard Webhooks format, through the API and a real
worker to real receivers that verify with the ``standardwebhooks`` package itself: one
endpoint's receiver cannot sign for another endpoint, nor for the sender's delivery callbacks;
a rotated secret signs next to the new one for the grace, then not; the legacy
``Herald-Signature`` goes on verifying."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from channels import REGISTRY
from channels.signing import HEADER, signed_headers, verify
from models.base import utcnow
from models.sender import Sender
from models.states import MessageState
from models.webhook_endpoint import WebhookEndpoint
from settings import settings
from tests.fakes.http import Request, Response
from tests.fakes.receiver import StandardReceiver, header, standard_verifies
from tests.support import settled, wait_until

BODY = b'{"messageId":"m-1","body":"Dosarul 42 a fost aprobat."}'


@pytest.fixture
def receivers(monkeypatch):
    """Start StandardReceivers (on http://127.0.0.1, which production settings refuse)."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    started: list[StandardReceiver] = []

    def start(secret: str = "whsec_" + "A" * 32) -> StandardReceiver:
        receiver = StandardReceiver(secret).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
    REGISTRY["webhook"].close()


@pytest.fixture
def fast_retries(monkeypatch):
    for channel in (settings.WEBHOOK, settings.CALLBACK):
        monkeypatch.setattr(channel, "MIN_BACKOFF_MS", 50)
        monkeypatch.setattr(channel, "MAX_BACKOFF_MS", 200)


def endpoint_at(client, sender, receiver: StandardReceiver, path: str = "/hook") -> dict:
    """Register ``receiver``'s URL for ``sender``; the receiver then checks with its secret."""
    response = client.post(
        "/v1/webhook-endpoints", json={"url": receiver.url + path}, headers=sender.headers
    )
    assert response.status_code == 201, response.get_json()
    endpoint = response.get_json()
    receiver.secret = endpoint["secret"]
    return endpoint


def send(client, sender, *urls: str) -> list[str]:
    body = {
        "recipients": [{"type": "webhook", "value": url} for url in urls],
        "message": {"subject": "Dosar aprobat", "body": "Dosarul 42 a fost aprobat."},
    }
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return [m["id"] for m in response.get_json()["messages"]]


def verifies(secret: str, request: Request) -> bool:
    return standard_verifies(secret, request)


def forged(secret: str, body: bytes, webhook_id: str = "forged-1") -> dict[str, str]:
    """What a receiver knowing ``secret`` can sign: the headers of a forged request."""
    return {"Content-Type": "application/json", **signed_headers([secret], webhook_id, body)}


def test_the_headers_are_what_standardwebhooks_signs():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = signed_headers([secret], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", BODY, now=1_700_000_000)

    library = Webhook(secret)
    moment = datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert headers["webhook-id"] == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == library.sign(
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", moment, BODY.decode()
    )
    assert verify(secret, BODY, headers[HEADER], now=1_700_000_000)  # the legacy header too


def test_two_secrets_give_two_space_separated_signatures_each_verifying():
    old, new = "whsec_" + "b" * 32, "whsec_" + "c" * 32
    headers = signed_headers([new, old], "m-1", BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(BODY, headers)
        assert verify(secret, BODY, headers[HEADER])
    assert not standard_verifies("whsec_" + "d" * 32, Request("POST", "/", headers, BODY))


def test_a_webhook_to_an_endpoint_verifies_with_its_secret_only(client, sender, receivers, worker):
    receiver = receivers()
    endpoint = endpoint_at(client, sender, receiver)

    (message_id,) = send(client, sender, receiver.url + "/hook")

    wait_until(settled(message_id, MessageState.SENT))
    (request,) = receiver.verified
    assert header(request, "webhook-id") == message_id == header(request, "Herald-Message-Id")
    assert verifies(endpoint["secret"], request)
    assert verify(endpoint["secret"], request.body, header(request, HEADER))  # legacy header
    for other in (sender.sender.webhook_secret, sender.sender.callback_secret):
        assert not verifies(other, request)
        assert not verify(other, request.body, header(request, HEADER))


def test_the_url_matches_in_its_normal_form(client, sender, receivers, worker):
    receiver = receivers()
    endpoint_at(client, sender, receiver, "/hook?x=1")
    upper = receiver.url.replace("http://", "HTTP://") + "/hook?x=1"

    (message_id,) = send(client, sender, upper)

    wait_until(settled(message_id, MessageState.SENT))
    assert len(receiver.verified) == 1


def test_one_endpoints_receiver_cannot_sign_for_another_nor_for_callbacks(
    client, sender, receivers, worker
):
    """The issue's forging scenario: receiver A knows only A's secret."""
    a, b = receivers(), receivers()
    endpoint_a, endpoint_b = endpoint_at(client, sender, a), endpoint_at(client, sender, b)
    callbacks = receivers(sender.sender.callback_secret)
    Sender.update(callback_url=callbacks.url + "/cb").where(Sender.id == sender.sender.id).execute()

    sent = send(client, sender, a.url + "/hook", b.url + "/hook")
    for message_id in sent:
        wait_until(settled(message_id, MessageState.SENT))
    callbacks.wait_for(2)

    (to_a,) = a.verified
    assert not verifies(endpoint_b["secret"], to_a)
    assert not verifies(sender.sender.callback_secret, to_a)
    for target in (b.url + "/hook", callbacks.url + "/cb"):
        answer = requests.post(
            target, data=to_a.body, headers=forged(endpoint_a["secret"], to_a.body)
        )
        assert answer.status_code == 401
    assert len(b.verified) == 1  # only Herald's own
    assert len(callbacks.verified) == 2  # Herald's two callbacks; no forged one
    for request in callbacks.verified:
        assert not any(verifies(e["secret"], request) for e in (endpoint_a, endpoint_b))


def test_callbacks_verify_with_the_callback_secret_and_an_id_stable_over_retries(
    client, sender, receivers, worker, fast_retries
):
    hook = receivers()
    endpoint = endpoint_at(client, sender, hook)
    callbacks = receivers(sender.sender.callback_secret)
    callbacks.replies = [Response(503, {"error": "busy"})]
    Sender.update(callback_url=callbacks.url + "/cb").where(Sender.id == sender.sender.id).execute()

    (message_id,) = send(client, sender, hook.url + "/hook")

    first, again = callbacks.wait_for(2)
    ids = {header(first, "webhook-id"), header(again, "webhook-id")}
    assert len(ids) == 1 and message_id not in ids  # the callback's id, not the message's
    assert header(first, "Herald-Message-Id") == message_id
    for request in (first, again):
        assert verifies(sender.sender.callback_secret, request)
        assert verify(sender.sender.callback_secret, request.body, header(request, HEADER))
        assert not verifies(endpoint["secret"], request)
        assert not verifies(sender.sender.webhook_secret, request)


def test_a_webhook_id_is_the_same_on_every_retry(client, sender, receivers, worker, fast_retries):
    receiver = receivers()
    endpoint_at(client, sender, receiver)
    receiver.replies = [Response(503, {"error": "busy"})]

    (message_id,) = send(client, sender, receiver.url + "/hook")

    wait_until(settled(message_id, MessageState.SENT))
    assert [header(r, "webhook-id") for r in receiver.verified] == [message_id] * 2
    assert receiver.verified[0].headers["webhook-timestamp"]


def test_a_rotated_secret_signs_beside_the_new_one_for_the_grace_only(
    client, sender, receivers, worker, monkeypatch
):
    monkeypatch.setattr(settings, "WEBHOOK_SECRET_GRACE_SECONDS", 3600)
    receiver = receivers()
    old = endpoint_at(client, sender, receiver)["secret"]
    rotated = client.post(
        f"/v1/webhook-endpoints/{receiver_endpoint_id(sender)}/rotate",
        json={},
        headers=sender.headers,
    ).get_json()
    new = receiver.secret = rotated["secret"]

    (during,) = send(client, sender, receiver.url + "/hook")
    wait_until(settled(during, MessageState.SENT))
    WebhookEndpoint.update(rotated_at=utcnow() - timedelta(seconds=3601)).execute()
    (after,) = send(client, sender, receiver.url + "/hook")
    wait_until(settled(after, MessageState.SENT))

    by_id = {header(r, "webhook-id"): r for r in receiver.verified}
    assert verifies(old, by_id[during]) and verifies(new, by_id[during])
    assert verify(old, by_id[during].body, header(by_id[during], HEADER))
    assert verifies(new, by_id[after]) and not verifies(old, by_id[after])
    assert not verify(old, by_id[after].body, header(by_id[after], HEADER))


def receiver_endpoint_id(sender) -> str:
    return str(WebhookEndpoint.get(WebhookEndpoint.sender == sender.sender.id).id)


def test_an_unregistered_url_is_signed_with_the_senders_webhook_secret(
    client, sender, receivers, worker
):
    receiver = receivers(sender.sender.webhook_secret)
    endpoint_at(client, sender, receivers(), "/elsewhere")  # another URL's endpoint

    (message_id,) = send(client, sender, receiver.url + "/hook")

    wait_until(settled(message_id, MessageState.SENT))
    (request,) = receiver.verified
    assert verify(sender.sender.webhook_secret, request.body, header(request, HEADER))
    assert not verifies(sender.sender.callback_secret, request)


def test_a_deleted_endpoint_no_longer_signs(client, sender, receivers, worker):
    receiver = receivers()
    endpoint = endpoint_at(client, sender, receiver)
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert client.delete(path, headers=sender.headers).status_code == 204

    (message_id,) = send(client, sender, receiver.url + "/hook")

    wait_until(settled(message_id, MessageState.FAILED))  # signed with the sender's secret
    (request,) = receiver.requests
    assert not verifies(endpoint["secret"], request)
    assert verifies(sender.sender.webhook_secret, request)


def test_registering_rotating_and_deleting_an_endpoint_hold_from_the_next_webhook(
    client, sender, receivers, worker, monkeypatch
):
    """The worker keeps what it read of senders (SENDER_CACHE_SECONDS), not of endpoints: after
    each change the receiver makes at once, the next webhook to the same URL verifies."""
    monkeypatch.setattr(settings, "SENDER_CACHE_SECONDS", 600)
    monkeypatch.setattr(settings, "WEBHOOK_SECRET_GRACE_SECONDS", 3600)
    legacy = sender.sender.webhook_secret
    receiver = receivers(legacy)
    url = receiver.url + "/hook"
    (unregistered,) = send(client, sender, url)
    wait_until(settled(unregistered, MessageState.SENT))

    first = endpoint_at(client, sender, receiver)["secret"]
    (registered,) = send(client, sender, url)
    wait_until(settled(registered, MessageState.SENT))

    path = f"/v1/webhook-endpoints/{receiver_endpoint_id(sender)}"
    rotated = client.post(f"{path}/rotate", json={}, headers=sender.headers).get_json()
    receiver.secret = rotated["secret"]
    (after_rotation,) = send(client, sender, url)
    wait_until(settled(after_rotation, MessageState.SENT))

    assert client.delete(path, headers=sender.headers).status_code == 204
    receiver.secret = legacy
    (after_deletion,) = send(client, sender, url)
    wait_until(settled(after_deletion, MessageState.SENT))

    by_id = {header(r, "webhook-id"): r for r in receiver.verified}
    assert not verifies(first, by_id[unregistered])
    assert verifies(first, by_id[registered]) and not verifies(legacy, by_id[registered])
    assert verifies(first, by_id[after_rotation])  # the old secret's grace
    assert verifies(rotated["secret"], by_id[after_rotation])
    assert not verifies(first, by_id[after_deletion])

"""Web push: API → worker → a push service on 127.0.0.1 that verifies VAPID and decrypts."""

import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from channels import REGISTRY
from channels.base import Rendered, TransientError
from channels.webpush import canonical_subscription, generate_vapid_keys, vapid_authorization
from models.states import MessageState
from settings import settings
from tests.factories import message
from tests.fakes.http import Response
from tests.fakes.pushservice import PushService, Subscriber, b64url_decode, b64url_encode
from tests.support import running_worker, settled, wait_until


@pytest.fixture
def vapid(monkeypatch):
    """A fresh VAPID key pair in the settings; loopback endpoints allowed; fast retries."""
    private, public = generate_vapid_keys()
    monkeypatch.setattr(settings, "VAPID_PRIVATE_KEY", private)
    monkeypatch.setattr(settings, "VAPID_PUBLIC_KEY", public)
    monkeypatch.setattr(settings, "VAPID_SUBJECT", "mailto:ops@example.md")
    monkeypatch.setattr(settings, "WEBPUSH_TTL_SECONDS", 3600)
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    monkeypatch.setattr(settings.WEBPUSH, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.WEBPUSH, "MAX_BACKOFF_MS", 200)
    return private, public


@pytest.fixture
def push_service(vapid):
    service = PushService(application_server_key=vapid[1]).start()
    yield service
    REGISTRY["webpush"].close()
    service.stop()


def push_notification(*subscriptions, **message_fields) -> dict:
    content = {"subject": "Dosar aprobat", "body": "Dosarul nr. 12 a fost aprobat."}
    content.update(message_fields)
    return {
        "recipients": [{"type": "webpush", "value": value} for value in subscriptions],
        "message": content,
    }


def post(client, sender, body) -> list[str]:
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return [m["id"] for m in response.get_json()["messages"]]


def history(client, sender, message_id) -> dict:
    return client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()


# --- delivery through a real worker ----------------------------------------------------------
def test_a_push_is_encrypted_signed_and_delivered(client, sender, push_service, worker):
    _, subscription = push_service.subscribe()
    body = push_notification(
        subscription, actionUrl="https://e.gov.md/dosare/12", data={"dosar": 12, "urgent": True}
    )
    (message_id,) = post(client, sender, body)

    wait_until(settled(message_id, MessageState.SENT))

    assert push_service.rejections == []
    (push,) = push_service.pushes
    assert push.payload == {
        "title": "Dosar aprobat",
        "body": "Dosarul nr. 12 a fost aprobat.",
        "url": "https://e.gov.md/dosare/12",
        "data": {"dosar": 12, "urgent": True},
    }
    assert push.headers["ttl"] == "3600"
    assert push.headers["content-encoding"] == "aes128gcm"
    assert push.claims["aud"] == push_service.url
    assert push.claims["sub"] == "mailto:ops@example.md"

    status = history(client, sender, message_id)
    assert status["attempts"] == 1
    assert status["attemptHistory"][0]["providerId"].startswith(f"{push_service.url}/message/")
    assert status["details"] == {"pushService": "127.0.0.1", "status": 201}
    stored = json.loads(status["destination"])
    assert stored == {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}


def test_429_is_retried_after_the_services_retry_after(client, sender, push_service, worker):
    _, subscription = push_service.subscribe()
    push_service.answers = [Response(429, {"reason": "slow down"}, {"Retry-After": "1"})]
    (message_id,) = post(client, sender, push_notification(subscription))

    wait_until(settled(message_id, MessageState.SENT))

    first, second = push_service.arrivals
    assert second - first >= 1.0  # without Retry-After the backoff here is at most 0.2 s
    assert [push.payload["body"] for push in push_service.pushes] == [
        "Dosarul nr. 12 a fost aprobat."
    ] * 2
    status = history(client, sender, message_id)
    assert [a["outcome"] for a in status["attemptHistory"]] == ["transient", "sent"]
    assert "429" in status["attemptHistory"][0]["error"]


def test_a_server_error_is_retried_then_sent(client, sender, push_service, worker):
    _, subscription = push_service.subscribe()
    push_service.answers = [Response(503, {"reason": "maintenance"})]
    (message_id,) = post(client, sender, push_notification(subscription))

    wait_until(settled(message_id, MessageState.SENT))

    assert message(message_id).attempts == 2
    assert len(push_service.pushes) == 2
    assert push_service.rejections == []


def test_413_fails_at_once_as_rejected(client, sender, push_service, worker):
    push_service.max_body = 100  # a push service with a smaller limit than RFC 8291's 4096
    _, subscription = push_service.subscribe()
    (message_id,) = post(client, sender, push_notification(subscription))

    wait_until(settled(message_id, MessageState.FAILED))

    failed = message(message_id)
    assert failed.failure_reason == "REJECTED_BY_PROVIDER"
    assert failed.attempts == 1
    assert "413" in failed.last_error and "too large" in failed.last_error
    assert push_service.pushes == []


def test_404_and_410_are_dead_addresses(client, sender, push_service, worker):
    _, gone = push_service.subscribe()
    push_service.unsubscribe(gone)
    never = Subscriber().subscription(f"{push_service.url}/push/never-subscribed")
    gone_id, never_id = post(client, sender, push_notification(gone, never))

    wait_until(settled(gone_id, MessageState.FAILED))
    wait_until(settled(never_id, MessageState.FAILED))

    for message_id, status in ((gone_id, "410"), (never_id, "404")):
        failed = message(message_id)
        assert failed.failure_reason == "DEAD_ADDRESS"
        assert failed.attempts == 1
        assert status in failed.last_error
        assert "never-subscribed" not in failed.last_error  # endpoints are capability URLs
    assert push_service.rejections == []


def test_vapid_keys_removed_after_accepting_are_retried_until_configured(
    client, sender, push_service, queues, db, vapid, monkeypatch
):
    """Accepted while configured; the worker finds no key: nothing is sent until it is back."""
    monkeypatch.setattr(settings.WEBPUSH, "MAX_RETRIES", 100)
    _, subscription = push_service.subscribe()
    (message_id,) = post(client, sender, push_notification(subscription))
    monkeypatch.setattr(settings, "VAPID_PRIVATE_KEY", "")

    with running_worker(queues):
        wait_until(lambda: message(message_id).state == MessageState.RETRYING)
        assert "VAPID_PRIVATE_KEY" in message(message_id).last_error
        assert push_service.requests == []

        monkeypatch.setattr(settings, "VAPID_PRIVATE_KEY", vapid[0])
        wait_until(settled(message_id, MessageState.SENT))
    assert len(push_service.pushes) == 1


def test_a_private_endpoint_is_refused_at_send_time(
    client, sender, push_service, queues, db, monkeypatch
):
    _, subscription = push_service.subscribe()
    (message_id,) = post(client, sender, push_notification(subscription))
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", False)

    with running_worker(queues):
        wait_until(settled(message_id, MessageState.FAILED))

    assert message(message_id).failure_reason == "INVALID_DESTINATION"
    assert push_service.requests == []


# --- the adapter's own rules -----------------------------------------------------------------
def test_a_mismatched_public_key_is_a_configuration_error(vapid, monkeypatch):
    monkeypatch.setattr(settings, "VAPID_PUBLIC_KEY", generate_vapid_keys()[1])
    with pytest.raises(TransientError, match="VAPID_PUBLIC_KEY does not match"):
        vapid_authorization("https://push.example.net/push/abc")


def test_a_broken_private_key_is_a_configuration_error(vapid, monkeypatch):
    monkeypatch.setattr(settings, "VAPID_PRIVATE_KEY", "bm90IGEga2V5")
    with pytest.raises(TransientError, match="VAPID_PRIVATE_KEY is not"):
        vapid_authorization("https://push.example.net/push/abc")


def test_subscriptions_are_stored_canonically(vapid):
    subscription = Subscriber().subscription("https://push.example.net/push/abc")
    padded = dict(
        subscription, keys={k: v + "=" * (-len(v) % 4) for k, v in subscription["keys"].items()}
    )

    canonical = canonical_subscription(padded)

    assert json.loads(canonical) == {
        "endpoint": "https://push.example.net/push/abc",
        "keys": subscription["keys"],
    }
    assert canonical_subscription(canonical) == canonical


# --- accept-time validation ------------------------------------------------------------------
def _subscription(**changes) -> dict:
    value = Subscriber().subscription("https://push.example.net/push/abc")
    keys = changes.pop("keys", {})
    value.update(changes)
    value["keys"] = {**value["keys"], **keys}
    return value


def _without(key: str) -> dict:
    value = _subscription()
    value["keys"].pop(key)
    return value


COMPRESSED_POINT = b64url_encode(b"\x02" + bytes(range(32)))
OFF_CURVE_POINT = b64url_encode(b"\x04" + bytes(64))

MALFORMED = {
    "not an object": ("https://push.example.net/push/abc", "Must be a PushSubscription object"),
    "no keys": ({"endpoint": "https://push.example.net/push/abc"}, "keys is required"),
    "no endpoint": (
        {k: v for k, v in _subscription().items() if k != "endpoint"},
        "endpoint is required",
    ),
    "http endpoint": (
        _subscription(endpoint="http://push.example.net/push/abc"),
        "endpoint: Must be an https:// URL.",
    ),
    "endpoint too long": (
        _subscription(endpoint="https://push.example.net/" + "a" * 2000),
        "endpoint: Must be a URL of at most 2000 characters.",
    ),
    "no p256dh": (_without("p256dh"), "keys.p256dh must be a base64url P-256 public key."),
    "bad base64": (
        _subscription(keys={"p256dh": "not base64!"}),
        "keys.p256dh must be a base64url P-256 public key.",
    ),
    "compressed point": (
        _subscription(keys={"p256dh": COMPRESSED_POINT}),
        "keys.p256dh must be a base64url P-256 public key.",
    ),
    "point off the curve": (
        _subscription(keys={"p256dh": OFF_CURVE_POINT}),
        "keys.p256dh must be a base64url P-256 public key.",
    ),
    "no auth": (_without("auth"), "keys.auth must be a base64url 16-byte secret."),
    "short auth": (
        _subscription(keys={"auth": b64url_encode(bytes(8))}),
        "keys.auth must be a base64url 16-byte secret.",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_subscriptions_are_400_naming_the_recipient(
    client, sender, vapid, case, monkeypatch
):
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", False)
    value, reason = MALFORMED[case]
    body = push_notification(_subscription(), value)

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    assert response.status_code == 400
    errors = response.get_json()["errors"]["recipients"]
    assert list(errors) == ["1"]
    assert errors["1"]["value"][0].startswith(reason)


def test_a_payload_too_big_for_push_services_is_400(client, sender, vapid):
    body = push_notification(_subscription(), body="ă" * 2100)

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    assert response.status_code == 400
    (error,) = response.get_json()["errors"]["message"]["body"]
    assert "at most 3993" in error


# --- the public key browsers subscribe with ---------------------------------------------------
def test_the_vapid_public_key_is_public(client, vapid):
    response = client.get("/v1/webpush/vapid-public-key")

    assert response.status_code == 200
    assert response.get_json() == {"publicKey": vapid[1]}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_public_key_is_derived_when_only_the_private_key_is_set(client, vapid, monkeypatch):
    monkeypatch.setattr(settings, "VAPID_PUBLIC_KEY", "")
    assert client.get("/v1/webpush/vapid-public-key").get_json() == {"publicKey": vapid[1]}


def test_the_public_key_is_404_when_web_push_is_not_configured(client, monkeypatch):
    monkeypatch.setattr(settings, "VAPID_PRIVATE_KEY", "")
    monkeypatch.setattr(settings, "VAPID_PUBLIC_KEY", "")

    response = client.get("/v1/webpush/vapid-public-key")

    assert response.status_code == 404
    assert response.get_json() == {
        "code": 404,
        "status": "Not Found",
        "message": "Web push is not configured: VAPID keys are not set.",
    }


# --- herald vapid generate -----------------------------------------------------------------
def test_vapid_generate_prints_a_working_key_pair(push_service, monkeypatch):
    result = subprocess.run(
        [sys.executable, "-m", "cli", "vapid", "generate"],
        env=dict(os.environ, DATABASE_URL="sqlite:///:memory:"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert sorted(lines) == ["VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"]
    private, public = lines["VAPID_PRIVATE_KEY"], lines["VAPID_PUBLIC_KEY"]
    assert "=" not in private + public
    scalar = int.from_bytes(b64url_decode(private), "big")
    derived = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
    assert len(b64url_decode(public)) == 65 and b64url_decode(public)[0] == 4
    assert (
        ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(public)
        ).public_numbers()
        == derived.public_numbers()
    )

    monkeypatch.setattr(settings, "VAPID_PRIVATE_KEY", private)
    monkeypatch.setattr(settings, "VAPID_PUBLIC_KEY", public)
    push_service.application_server_key = public
    _, subscription = push_service.subscribe()
    destination = canonical_subscription(subscription)
    REGISTRY["webpush"].send(Rendered(subject="Test", body="Salut"), destination)

    assert push_service.rejections == []
    assert push_service.pushes[0].payload["body"] == "Salut"

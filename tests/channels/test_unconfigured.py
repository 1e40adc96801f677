"""A channel this server has no credentials for is off: the API refuses it, fan-out skips it,
and an adapter that finds itself unconfigured at send time calls nobody (DESIGN Promise 7)."""

import socket
import threading

import pytest

from channels import REGISTRY
from channels.base import NotConfigured, Rendered
from channels.webpush import generate_vapid_keys
from models.contact import upsert_contacts
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from settings import settings
from tasks.fanout import fanout
from tests.factories import idnp, message
from tests.fakes.pushservice import Subscriber
from tests.support import running_worker, wait_until

#: What each channel needs to be configured, with values that configure it.
CREDENTIALS = {
    "email": {"SMTP_HOST": "127.0.0.1"},
    "telegram": {"TELEGRAM_BOT_TOKEN": "7000000001:test-token"},
    "viber": {"VIBER_AUTH_TOKEN": "viber-token"},
    "whatsapp": {"WHATSAPP_TOKEN": "EAAG-token", "WHATSAPP_PHONE_NUMBER_ID": "105500"},
    "sms": {"SMS_ACCOUNT_SID": "AC0001", "SMS_AUTH_TOKEN": "secret", "SMS_FROM": "Herald"},
    "webpush": {"VAPID_PRIVATE_KEY": generate_vapid_keys()[0]},
}
#: Every (channel, setting) a server may lack.
MISSING = [(channel, name) for channel, needed in CREDENTIALS.items() for name in needed]
MESSAGE = {"subject": "Dosar aprobat", "body": "Dosarul dvs. a fost aprobat."}


class Listener:
    """A TCP port on 127.0.0.1 that counts connections and closes each at once: where every
    provider URL points, so a call made despite the missing settings is seen and fails fast."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def configured(monkeypatch):
    """Every channel configured, every provider at a :class:`Listener`."""
    listener = Listener()
    for needed in CREDENTIALS.values():
        for name, value in needed.items():
            monkeypatch.setattr(settings, name, value)
    for name in ("TELEGRAM_API_URL", "VIBER_API_URL", "WHATSAPP_API_URL", "SMS_API_URL"):
        monkeypatch.setattr(settings, name, listener.url)
    monkeypatch.setattr(settings, "SMTP_PORT", listener.port)
    monkeypatch.setattr(settings, "SMS_PROVIDER", "twilio")
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    yield listener
    for channel in REGISTRY.values():
        channel.close()
    listener.close()


def destination(channel: str, listener: Listener):
    """A recipient value for ``channel`` (a push subscription whose endpoint is the listener)."""
    if channel == "webpush":
        return Subscriber().subscription(f"{listener.url}/push/1")
    return {
        "email": "ion@example.md",
        "telegram": "123456789",
        "viber": "viber-user-1",
        "whatsapp": "+37369123456",
        "sms": "+37369123456",
    }[channel]


def test_each_channel_names_what_it_needs(configured, monkeypatch):
    assert {name for name, channel in REGISTRY.items() if channel.is_configured()} == set(REGISTRY)
    for name, needed in CREDENTIALS.items():
        for setting in needed:
            monkeypatch.setattr(settings, setting, "")
        assert REGISTRY[name].missing_settings() == list(needed)
    assert {name for name, channel in REGISTRY.items() if channel.is_configured()} == {
        "inapp",
        "letter",
        "webhook",
    }


@pytest.mark.parametrize(("channel", "setting"), MISSING)
def test_the_api_refuses_an_unconfigured_channel(
    client, sender, configured, monkeypatch, channel, setting
):
    monkeypatch.setattr(settings, setting, "")
    recipient_type = REGISTRY[channel].recipient_type
    direct = {
        "recipients": [
            {"type": "user", "value": "u-1"},
            {"type": recipient_type, "value": destination(channel, configured)},
        ],
        "message": MESSAGE,
    }
    by_idnp = {
        "recipients": [{"type": "idnp", "value": idnp(1)}],
        "channels": ["inapp", channel],
        "message": MESSAGE,
    }

    refused = [
        client.post("/v1/notifications", json=body, headers=sender.headers)
        for body in (direct, by_idnp)
    ]

    not_configured = f"The {channel} channel is not configured on this server."
    assert [response.status_code for response in refused] == [400, 400]
    assert refused[0].get_json()["errors"] == {"recipients": {"1": {"type": [not_configured]}}}
    assert refused[1].get_json()["errors"] == {"channels": [not_configured]}
    assert Notification.select().count() == 0


@pytest.mark.parametrize(("channel", "setting"), MISSING)
def test_an_adapter_without_its_settings_calls_nobody(configured, monkeypatch, channel, setting):
    adapter = REGISTRY[channel]
    stored = adapter.parse_destination(destination(channel, configured))
    monkeypatch.setattr(settings, setting, "")

    with pytest.raises(NotConfigured, match=setting):
        adapter.send(Rendered(subject="Dosar", body="Aprobat."), stored)

    assert configured.connections == 0


def test_fanout_skips_contact_channels_this_server_cannot_use(client, sender, queues, monkeypatch):
    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", "")
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
    upsert_contacts(
        [
            {
                "idnp": idnp(1),
                "channels": [
                    {"type": "telegram", "address": "111111111", "priority": 1},
                    {"type": "email", "address": "ion@example.md", "priority": 2},
                ],
            },
            {"idnp": idnp(2), "channels": [{"type": "telegram", "address": "222222222"}]},
        ]
    )
    body = {"recipients": [{"type": "idnp", "value": idnp(n)} for n in (1, 2)], "message": MESSAGE}
    posted = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert posted.status_code == 202, posted.get_json()

    fanout(posted.get_json()["id"])

    messages = Message.select().where(Message.notification == posted.get_json()["id"])
    found = {(m.recipient_key, m.channel, m.state, m.failure_reason) for m in messages}
    assert found == {
        (idnp(1), "email", MessageState.QUEUED, None),
        (idnp(1), "inapp", MessageState.QUEUED, None),
        (idnp(2), "none", MessageState.FAILED, "NO_ACTIVE_CHANNEL"),
        (idnp(2), "inapp", MessageState.QUEUED, None),
    }


def test_content_is_not_checked_against_channels_people_cannot_get(client, sender, monkeypatch):
    """An SMS limit does not refuse a long message to people when SMS is not configured."""
    monkeypatch.setattr(settings, "SMS_ACCOUNT_SID", "")
    body = {
        "recipients": [{"type": "idnp", "value": idnp(1)}],
        "message": MESSAGE | {"body": "a" * 2000},
    }
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()


def test_a_token_removed_after_accepting_is_retried_without_a_call(
    client, sender, telegram, queues, db, monkeypatch
):
    monkeypatch.setattr(settings.TELEGRAM, "MAX_RETRIES", 100)
    monkeypatch.setattr(settings.TELEGRAM, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.TELEGRAM, "MAX_BACKOFF_MS", 200)
    body = {"recipients": [{"type": "telegram", "value": "123456789"}], "message": MESSAGE}
    posted = client.post("/v1/notifications", json=body, headers=sender.headers)
    message_id = posted.get_json()["messages"][0]["id"]
    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", "")

    with running_worker(queues):
        wait_until(
            lambda: (
                message(message_id).attempts >= 2
                and message(message_id).state == MessageState.RETRYING
            )
        )

    assert "TELEGRAM_BOT_TOKEN not set" in message(message_id).last_error
    assert telegram.requests == []


def test_reachability_counts_only_channels_this_server_can_use(client, monkeypatch):
    from tests.factories import make_sender

    registrar = make_sender("registry", permissions=["contacts:read", "contacts:write"])
    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", "")
    upsert_contacts([{"idnp": idnp(1), "channels": [{"type": "telegram", "address": "1111"}]}])

    url = f"/v1/contacts/{idnp(1)}/reachability"
    reach = client.get(url, headers=registrar.headers).get_json()

    assert reach == {
        "exists": True,
        "hasActiveChannel": False,
        "activeChannels": [],
        "preferences": {"channels": {}, "services": {}},
    }
    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", "7000000001:test-token")
    assert client.get(url, headers=registrar.headers).get_json()["hasActiveChannel"] is True

"""Shared by the provider receipt tests (tests/api/test_providers_*.py): a person in the
contact registry, a message sent to them through a real worker, the sender's callback receiver,
and what a receipt may have changed."""

from __future__ import annotations

from datetime import timedelta

from models.base import utcnow
from models.contact import ContactChannel, upsert_contacts
from models.message import Message
from models.notification import Notification
from models.sender import Sender
from models.states import MessageState
from scheduler.jobs import purge
from settings import settings
from tests.factories import idnp
from tests.fakes.receiver import SignedReceiver
from tests.support import wait_until

#: Where providers reach Herald in these tests: only ever a URL handed to a provider (and
#: signed by it), never one Herald connects to.
PUBLIC_BASE_URL = "https://herald.example.md"


def person(serial: int, kind: str, address: str) -> str:
    """A registered contact with one channel; their IDNP."""
    upsert_contacts(
        [
            {
                "idnp": idnp(serial),
                "name": f"Persoana {serial}",
                "preferred_language": "ro",
                "channels": [{"type": kind, "address": address, "priority": 10}],
            }
        ]
    )
    return idnp(serial)


def send_to_person(client, sender, ion: str, channel: str) -> str:
    """POST a notification to the person on ``channel`` only; the id of its message, once a
    worker has had the provider accept it."""
    body = {
        "recipients": [{"type": "idnp", "value": ion}],
        "channels": [channel],
        "message": {"subject": "Programare", "body": "Vă așteptăm luni la ora 9:00."},
    }
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    notification_id = response.get_json()["id"]
    wait_until(lambda: Notification.get_by_id(notification_id).fanout_state == "done")
    (message,) = Message.select().where(Message.notification == notification_id)
    wait_until(lambda: Message.get_by_id(message.id).state == MessageState.SENT)
    return str(message.id)


def listen_for_callbacks(sender, monkeypatch) -> SignedReceiver:
    """A receiver of ``sender``'s delivery callbacks on 127.0.0.1 (stop it after the test)."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    receiver = SignedReceiver(sender.sender.callback_secret).start()
    url = f"{receiver.url}/herald/callbacks"
    Sender.update(callback_url=url).where(Sender.id == sender.sender.id).execute()
    return receiver


def callback_for(receiver: SignedReceiver, message_id: str, state: str, read=False) -> dict:
    """The callback the sender received for the message reaching ``state`` (with ``read``:
    the one that says it was read), waited for."""

    def received():
        return next(
            (
                payload
                for payload in (request.json() for request in receiver.verified)
                if payload["messageId"] == message_id
                and payload["state"] == state
                and (payload["readAt"] is not None or not read)
            ),
            None,
        )

    return wait_until(received, timeout=20)


def history(client, sender, message_id: str) -> dict:
    response = client.get(f"/v1/messages/{message_id}", headers=sender.headers)
    assert response.status_code == 200
    return response.get_json()


def footprint(message_id: str) -> tuple:
    """Everything a receipt may change: the message's delivery columns and the registry's
    channels (a callback is owed only with a change of the message)."""
    row = Message.get_by_id(message_id)
    channels = [(c.type, c.address, c.active) for c in ContactChannel.select()]
    return (
        row.state,
        row.delivered_at,
        row.read_at,
        row.failure_reason,
        row.last_error,
        row.updated_at,
        sorted(channels),
    )


def channel_active(kind: str, address: str) -> bool:
    return ContactChannel.get(
        (ContactChannel.type == kind) & (ContactChannel.address == address)
    ).active


def purge_past_retention() -> None:
    """Run the retention purge as if MESSAGE_RETENTION_DAYS had passed."""
    purge(now=utcnow() + timedelta(days=settings.MESSAGE_RETENTION_DAYS + 1))

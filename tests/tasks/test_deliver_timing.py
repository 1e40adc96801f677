"""Delivery respects time: a push message past its notification's ``validTill`` is never sent,
and a non-urgent push message inside its contact's quiet hours waits until they end (then the
scheduled-send job queues it); in-app copies and urgent notifications never wait."""

from datetime import timedelta

from models.base import utcnow
from models.contact import upsert_contacts
from models.message import Message
from models.notification import Notification
from models.states import FailureReason, MessageState
from scheduler.jobs import send_scheduled
from tasks.deliver import deliver
from tasks.fanout import fanout
from tests.factories import email_notification, idnp


def submit(client, sender, body) -> str:
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def by_channel(notification_id) -> dict[str, Message]:
    query = Message.select().where(Message.notification == notification_id)
    return {message.channel: message for message in query}


def test_a_message_claimed_after_valid_till_fails_unsent(client, sender, smtp, queues):
    body = email_notification(validTill=(utcnow() + timedelta(hours=1)).isoformat())
    notification = submit(client, sender, body)
    Notification.update(valid_till=utcnow()).where(Notification.id == notification).execute()
    [message] = by_channel(notification).values()
    deliver(str(message.id))
    message = Message.get_by_id(message.id)
    assert (message.state, message.failure_reason) == (MessageState.FAILED, FailureReason.EXPIRED)
    assert message.attempts == 0
    assert smtp.received == []


def quiet_person(serial: int) -> str:
    now = utcnow()
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    row = {
        "idnp": idnp(serial),
        "quiet_hours": quiet,
        "channels": [{"type": "email", "address": f"p{serial}@example.md"}],
    }
    upsert_contacts([row])
    return idnp(serial)


def test_quiet_hours_hold_push_until_they_end_but_not_in_app(client, sender, smtp, queues):
    person = quiet_person(1)
    notification = submit(
        client, sender, {**email_notification(), "recipients": [{"type": "idnp", "value": person}]}
    )
    fanout(notification)
    messages = by_channel(notification)
    deliver(str(messages["email"].id))
    deliver(str(messages["inapp"].id))

    email = Message.get_by_id(messages["email"].id)
    assert email.state == MessageState.SCHEDULED
    assert email.attempts == 0
    assert utcnow() < email.due_at <= utcnow() + timedelta(hours=1)
    assert Message.get_by_id(messages["inapp"].id).state == MessageState.UNREAD
    assert smtp.received == []

    assert send_scheduled(email.due_at)["queued"] == 1
    assert Message.get_by_id(email.id).state == MessageState.QUEUED


def test_urgent_notifications_ignore_quiet_hours(client, sender, smtp, queues):
    person = quiet_person(2)
    body = {**email_notification(urgent=True), "recipients": [{"type": "idnp", "value": person}]}
    notification = submit(client, sender, body)
    fanout(notification)
    deliver(str(by_channel(notification)["email"].id))
    assert Message.get_by_id(by_channel(notification)["email"].id).state == MessageState.SENT
    assert len(smtp.received) == 1


def test_a_scheduled_notification_to_people_is_fanned_out_as_scheduled(client, sender, queues):
    person = quiet_person(3)
    send_at = utcnow() + timedelta(hours=2)
    body = {
        **email_notification(sendAt=send_at.isoformat()),
        "recipients": [{"type": "idnp", "value": person}],
    }
    notification = submit(client, sender, body)
    fanout(notification)
    messages = by_channel(notification)
    assert {m.state for m in messages.values()} == {MessageState.SCHEDULED}
    assert {m.due_at for m in messages.values()} == {send_at}
    assert queues.client.llen("dramatiq:email") == 0
    assert send_scheduled(send_at)["queued"] == 2

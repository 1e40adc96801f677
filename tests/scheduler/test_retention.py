"""Retention: the purge counts from when a notification's last message became final and never
touches a message that is not final (scheduled, queued, sending, retrying, held) or a
notification still fanning out; such a message keeps what it needs and is delivered whole."""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from models.base import utcnow
from models.contact import upsert_contacts
from models.message import Message
from models.notification import Notification
from models.states import FINAL, FailureReason, MessageState
from scheduler.jobs import auto_resend, purge, send_scheduled
from settings import settings
from tests.factories import email_notification, idnp, stored_message
from tests.support import running_worker, settled, wait_until

RETENTION = timedelta(days=7)
BODY = "Vă așteptăm luni la ora 9:00."
NOT_FINAL = [state for state in MessageState if state not in FINAL]
NOTHING = {"notifications": 0, "messages": 0}


@pytest.fixture(autouse=True)
def _seven_days(monkeypatch):
    monkeypatch.setattr(settings, "MESSAGE_RETENTION_DAYS", RETENTION.days)


def submit(client, sender, body) -> dict:
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def messages_of(notification_id) -> list[Message]:
    return list(Message.select().where(Message.notification == notification_id))


def person(serial: int, *emails: str) -> str:
    """A registered contact with these email addresses, in priority order; its IDNP."""
    channels = [
        {"type": "email", "address": address, "priority": 10 * (rank + 1)}
        for rank, address in enumerate(emails)
    ]
    upsert_contacts([{"idnp": idnp(serial), "preferred_language": "ro", "channels": channels}])
    return idnp(serial)


def shift_back(notification_id, delta: timedelta) -> None:
    """Move a notification's and its messages' times ``delta`` into the past, as if it had been
    accepted that much earlier (the worker runs on the real clock, so time travels this way)."""
    notification = Notification.get_by_id(notification_id)
    Notification.update(
        created_at=notification.created_at - delta,
        send_at=notification.send_at and notification.send_at - delta,
    ).where(Notification.id == notification_id).execute()
    for message in messages_of(notification_id):
        Message.update(
            created_at=message.created_at - delta,
            updated_at=message.updated_at - delta,
            due_at=message.due_at and message.due_at - delta,
        ).where(Message.id == message.id).execute()


def assert_whole(notification_id, *destinations: str) -> None:
    notification = Notification.get_by_id(notification_id)
    assert notification.purged_at is None
    assert notification.content["body"] == BODY
    assert sorted(m.destination for m in messages_of(notification_id)) == sorted(destinations)


def delivered_body(smtp, count: int = 1) -> list[str]:
    received = smtp.wait_for(count, timeout=20)
    assert len(received) == count, "not delivered"
    return [mail.email.get_body(("plain",)).get_content().strip() for mail in received]


def test_a_send_scheduled_beyond_retention_is_kept_and_delivered_with_its_body(
    client, sender, smtp, queues
):
    accepted = utcnow()
    body = email_notification(sendAt=(accepted + timedelta(days=30)).isoformat())
    notification_id = submit(client, sender, body)["id"]

    for now in (accepted + RETENTION + timedelta(days=1), accepted + timedelta(days=29)):
        assert purge(now) == NOTHING
        assert_whole(notification_id, "ion@example.md")
        assert messages_of(notification_id)[0].state == MessageState.SCHEDULED

    shift_back(notification_id, timedelta(days=30))  # the send time has come
    with running_worker(queues):
        assert send_scheduled(utcnow())["queued"] == 1
        assert delivered_body(smtp) == [BODY]
        [message] = messages_of(notification_id)
        wait_until(settled(message.id, MessageState.SENT))

    final = Message.get_by_id(message.id).updated_at
    assert purge(final + RETENTION - timedelta(seconds=1)) == NOTHING
    assert purge(final + RETENTION + timedelta(seconds=1)) == {"notifications": 1, "messages": 1}
    message = Message.get_by_id(message.id)
    assert (message.state, message.destination, message.body) == (MessageState.SENT, "", None)
    assert Notification.get_by_id(notification_id).content == {}


def test_a_message_still_queued_past_retention_is_kept_and_delivered(client, sender, smtp, queues):
    notification_id = submit(client, sender, email_notification())["id"]  # no worker yet

    assert purge(utcnow() + RETENTION + timedelta(days=1)) == NOTHING
    assert_whole(notification_id, "ion@example.md")

    with running_worker(queues):
        assert delivered_body(smtp) == [BODY]


def test_retrying_and_held_messages_are_kept_and_the_chain_delivers(
    client, sender, smtp, worker, fast_retries, monkeypatch
):
    monkeypatch.setattr(settings.EMAIL, "MAX_RETRIES", 10_000)
    smtp.rcpt_replies["busy@example.md"] = "451 4.2.1 Mailbox busy, try later"
    ion = person(1, "busy@example.md", "backup@example.md")
    fallback = {"recipients": [{"type": "idnp", "value": ion}], "channelPolicy": "fallback"}
    notification_id = submit(client, sender, email_notification(channels=["email"], **fallback))[
        "id"
    ]
    wait_until(lambda: len(messages_of(notification_id)) == 2)
    busy, backup = sorted(messages_of(notification_id), key=lambda m: m.fallback_rank)
    wait_until(lambda: Message.get_by_id(busy.id).attempts >= 2)  # refused, retrying

    assert purge(utcnow() + RETENTION + timedelta(days=1)) == NOTHING
    assert_whole(notification_id, "busy@example.md", "backup@example.md")
    assert Message.get_by_id(backup.id).state == MessageState.HELD

    smtp.rcpt_replies["busy@example.md"] = "550 5.1.1 No such user"
    assert delivered_body(smtp) == [BODY]
    assert smtp.received[0].rcpt_tos == ["backup@example.md"]


def test_a_pending_fanout_is_kept_and_then_delivered(client, sender, smtp, queues):
    ion = person(2, "ion.popescu@example.md")
    body = email_notification(channels=["email"], recipients=[{"type": "idnp", "value": ion}])
    notification_id = submit(client, sender, body)["id"]  # no worker: the fan-out waits
    assert Notification.get_by_id(notification_id).fanout_state == "pending"

    assert purge(utcnow() + RETENTION + timedelta(days=1)) == NOTHING
    notification = Notification.get_by_id(notification_id)
    assert (notification.purged_at, notification.content["body"]) == (None, BODY)
    assert [r["idnp"] for r in notification.recipients] == [ion]

    with running_worker(queues):
        assert delivered_body(smtp) == [BODY]
    assert smtp.received[0].rcpt_tos == ["ion.popescu@example.md"]


@pytest.mark.parametrize("state", NOT_FINAL)
def test_one_message_not_final_keeps_the_whole_notification(sender, state):
    long_ago = utcnow() - timedelta(days=60)
    done = stored_message(sender.sender, created_at=long_ago, updated_at=long_ago, body="b")
    waiting = stored_message(
        sender.sender,
        notification=done.notification,
        created_at=long_ago,
        updated_at=long_ago,
        state=state,
        destination="ana@example.md",
    )

    assert purge(utcnow()) == NOTHING
    assert Message.get_by_id(waiting.id).destination == "ana@example.md"
    assert Message.get_by_id(done.id).body == "b"
    assert Notification.get_by_id(done.notification_id).content["body"] == "Vă așteptăm luni."


@pytest.mark.parametrize("state", FINAL)
def test_retention_counts_from_when_the_last_message_became_final(sender, state):
    created = utcnow() - timedelta(days=60)
    final = utcnow() - timedelta(days=2)
    first = stored_message(sender.sender, created_at=created, updated_at=created)
    last = stored_message(
        sender.sender, notification=first.notification, created_at=created, updated_at=final
    )
    Message.update(state=state).where(Message.id == last.id).execute()

    assert purge(final + RETENTION) == NOTHING
    assert Message.get_by_id(first.id).destination == "ion@example.md"
    assert purge(final + RETENTION + timedelta(microseconds=1)) == {
        "notifications": 1,
        "messages": 2,
    }
    assert {Message.get_by_id(m.id).destination for m in (first, last)} == {""}


def test_a_notification_without_messages_counts_from_its_creation(sender):
    created = utcnow() - timedelta(days=30)
    notification = Notification.create(
        sender=sender.sender, content={"body": "b"}, created_at=created, fanout_state="done"
    )
    assert purge(created + RETENTION) == NOTHING
    assert purge(created + RETENTION + timedelta(seconds=1))["notifications"] == 1
    assert Notification.get_by_id(notification.id).content == {}


def test_notifications_waiting_ahead_do_not_hold_back_later_ones(sender, monkeypatch):
    monkeypatch.setattr(settings, "PURGE_BATCH_SIZE", 2)
    now = utcnow()
    for days in (40, 39, 38, 37, 36):
        when = now - timedelta(days=days)
        stored_message(sender.sender, created_at=when, updated_at=when, state="scheduled")
    old = [
        stored_message(
            sender.sender, created_at=now - timedelta(days=d), updated_at=now - RETENTION * 2
        )
        for d in (20, 19, 18)
    ]

    assert purge(now) == {"notifications": 3, "messages": 3}
    assert {Message.get_by_id(m.id).destination for m in old} == {""}
    assert Message.select().where(Message.destination == "ion@example.md").count() == 5


def test_a_purged_message_is_never_resent_automatically(sender, queues, monkeypatch):
    monkeypatch.setattr(settings, "AUTO_RESEND_AFTER", 3600)
    monkeypatch.setattr(settings, "AUTO_RESEND_MAX", 3)
    failed_at = utcnow() - RETENTION - timedelta(days=1)
    message = stored_message(
        sender.sender,
        created_at=failed_at,
        updated_at=failed_at,
        state=MessageState.FAILED,
        failure_reason=FailureReason.RETRIES_EXHAUSTED,
    )

    assert purge(utcnow()) == {"notifications": 1, "messages": 1}
    assert auto_resend(utcnow()) == {"resent": 0}
    assert Message.get_by_id(message.id).state == MessageState.FAILED
    assert queues.client.llen("dramatiq:email") == 0


def snapshot(message: Message) -> tuple:
    return (
        message.state,
        message.destination,
        message.recipient_key,
        message.attributes,
        message.subject,
        message.body,
        message.last_error,
        message.details,
        message.updated_at,
    )


#: A message: its state, and how many hours after its notification's creation it last changed.
MESSAGES = st.tuples(st.sampled_from(list(MessageState)), st.integers(0, 24 * 20))
#: A notification: created this many hours from the cutoff, its fan-out state, its messages.
NOTIFICATIONS = st.tuples(
    st.integers(-24 * 20, 24 * 3),
    st.sampled_from(["none", "done", "pending"]),
    st.lists(MESSAGES, max_size=3),
)


@examples(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(notifications=st.lists(NOTIFICATIONS, min_size=1, max_size=6), batch=st.integers(1, 3))
def test_purge_changes_no_message_not_final_and_exactly_the_notifications_final_before_cutoff(
    sender, monkeypatch, notifications, batch
):
    Message.delete().execute()
    Notification.delete().execute()
    monkeypatch.setattr(settings, "PURGE_BATCH_SIZE", batch)
    now = utcnow()
    cutoff = now - RETENTION
    expected = set()
    for hours, fanout_state, messages in notifications:
        created = cutoff + timedelta(hours=hours)
        notification = Notification.create(
            sender=sender.sender,
            content={"body": BODY},
            recipients=[{"idnp": idnp(1)}],
            fanout_state=fanout_state,
            created_at=created,
        )
        for state, changed in messages:
            stored_message(
                sender.sender,
                notification=notification,
                created_at=created,
                updated_at=created + timedelta(hours=changed),
                state=state,
                recipient_key=idnp(1),
                body=BODY,
            )
        finished = [
            state in FINAL and created + timedelta(hours=changed) < cutoff
            for state, changed in messages
        ]
        if fanout_state != "pending" and created < cutoff and all(finished):
            expected.add(notification.id)
    before = {message.id: snapshot(message) for message in Message.select()}

    purge(now)

    purged = Notification.select().where(Notification.purged_at.is_null(False))
    assert {notification.id for notification in purged} == expected
    for notification in Notification.select().where(Notification.purged_at.is_null()):
        assert (notification.content, notification.recipients) == (
            {"body": BODY},
            [{"idnp": idnp(1)}],
        )
    for message in Message.select():
        if message.notification_id in expected:
            assert (message.destination, message.recipient_key, message.body) == ("", None, None)
        else:
            assert snapshot(message) == before[message.id]
    assert purge(now) == NOTHING

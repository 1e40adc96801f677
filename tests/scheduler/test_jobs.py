"""The scheduler's jobs, run with an injected "now": scheduled sends, reminders (each occurrence
exactly once), expiry, automatic resends, the retention purge, and the runs they record."""

from datetime import timedelta

import pytest

from channels import documents
from models.base import utcnow
from models.message import Message
from models.notification import Notification
from models.reminder import Reminder
from models.sender import Sender
from models.states import FailureReason, MessageState
from scheduler import as_leader
from scheduler.jobs import auto_resend, expire_lapsed, purge, send_scheduled
from scheduler.leader import LeaderLock
from settings import settings
from tests.factories import email_notification


def submit(client, sender, body) -> str:
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def messages_of(notification_id) -> list[Message]:
    return list(Message.select().where(Message.notification == notification_id))


def email_queue(queues) -> int:
    return queues.client.llen("dramatiq:email")


def test_a_scheduled_send_waits_for_its_time_then_is_queued_once(client, sender, queues):
    send_at = utcnow() + timedelta(hours=1)
    notification = submit(client, sender, email_notification(sendAt=send_at.isoformat()))
    [message] = messages_of(notification)
    assert (message.state, message.due_at) == (MessageState.SCHEDULED, send_at)
    assert email_queue(queues) == 0

    assert send_scheduled(send_at - timedelta(seconds=1))["queued"] == 0
    assert send_scheduled(send_at)["queued"] == 1
    assert Message.get_by_id(message.id).state == MessageState.QUEUED
    assert email_queue(queues) == 1
    assert send_scheduled(send_at + timedelta(seconds=5))["queued"] == 0
    assert email_queue(queues) == 1


def reminder_at(client, sender, *moments) -> str:
    body = email_notification(at=[m.isoformat() for m in moments])
    response = client.post("/v1/reminders", json=body, headers=sender.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def fired(reminder_id) -> list[Notification]:
    query = Notification.select().where(Notification.reminder == reminder_id)
    return list(query.order_by(Notification.occurrence_at))


def test_each_occurrence_fires_exactly_once(client, sender, queues):
    first, second = utcnow() + timedelta(hours=1), utcnow() + timedelta(hours=2)
    reminder_id = reminder_at(client, sender, first, second)

    assert send_scheduled(first - timedelta(seconds=1))["fired"] == 0
    assert send_scheduled(first)["fired"] == 1
    assert send_scheduled(first + timedelta(seconds=5))["fired"] == 0
    [notification] = fired(reminder_id)
    assert notification.occurrence_at == first
    assert [m.destination for m in messages_of(notification.id)] == ["ion@example.md"]
    shown = client.get(f"/v1/notifications/{notification.id}", headers=sender.headers)
    assert shown.get_json()["reminderId"] == reminder_id
    assert shown.get_json()["occurrenceAt"][:19] == first.isoformat()[:19]
    assert email_queue(queues) == 1

    # A run that died after committing the notification, before moving the reminder on, leaves
    # the occurrence due and uncounted; the next run finds the notification and only moves on.
    Reminder.update(next_at=first, fired=0).where(Reminder.id == reminder_id).execute()
    assert send_scheduled(first + timedelta(seconds=10)) == {
        "queued": 0,
        "fired": 0,
        "duplicate": 1,
        "invalid": 0,
    }
    assert len(fired(reminder_id)) == 1
    assert Reminder.get_by_id(reminder_id).next_at == second

    assert send_scheduled(second)["fired"] == 1
    reminder = Reminder.get_by_id(reminder_id)
    assert (reminder.state, reminder.next_at, reminder.fired) == ("done", None, 2)
    assert [n.occurrence_at for n in fired(reminder_id)] == [first, second]
    assert email_queue(queues) == 2


def test_occurrences_missed_while_down_all_fire_once_when_back(client, sender, queues):
    moments = [utcnow() + timedelta(hours=n) for n in (1, 2, 3)]
    reminder_id = reminder_at(client, sender, *moments)
    assert send_scheduled(moments[-1] + timedelta(days=1))["fired"] == 3
    assert [n.occurrence_at for n in fired(reminder_id)] == moments


def test_a_cancelled_reminder_fires_no_more(client, sender, queues):
    first, second = utcnow() + timedelta(hours=1), utcnow() + timedelta(hours=2)
    reminder_id = reminder_at(client, sender, first, second)
    send_scheduled(first)
    assert client.delete(f"/v1/reminders/{reminder_id}", headers=sender.headers).status_code == 204
    assert send_scheduled(second + timedelta(hours=1))["fired"] == 0
    assert len(fired(reminder_id)) == 1


def test_past_valid_till_inapp_expires_and_push_fails_unsent(client, sender, queues):
    valid_till = utcnow() + timedelta(hours=1)
    body = email_notification(validTill=valid_till.isoformat())
    body["recipients"].append({"type": "user", "value": "user-1"})
    notification = submit(client, sender, body)
    email, inapp = sorted(messages_of(notification), key=lambda m: m.channel)
    Message.update(state=MessageState.UNREAD).where(Message.id == inapp.id).execute()
    Sender.update(callback_url="https://hooks.example.md/herald").execute()

    assert expire_lapsed(valid_till - timedelta(seconds=1)) == {
        "inapp_expired": 0,
        "push_expired": 0,
    }
    assert expire_lapsed(valid_till) == {"inapp_expired": 1, "push_expired": 1}
    email, inapp = Message.get_by_id(email.id), Message.get_by_id(inapp.id)
    assert (email.state, email.failure_reason) == (MessageState.FAILED, FailureReason.EXPIRED)
    assert inapp.state == MessageState.EXPIRED
    assert queues.client.llen("dramatiq:callbacks") == 1  # the sender hears of the failure


def failed_message(sender, reason, failed_at, **fields) -> Message:
    notification = Notification.create(sender=sender.sender, content={"subject": "s", "body": "b"})
    return Message.create(
        notification=notification,
        sender=sender.sender,
        channel="email",
        destination="a@example.md",
        state=MessageState.FAILED,
        failure_reason=reason,
        attempts=6,
        updated_at=failed_at,
        **fields,
    )


def test_outage_failures_are_resent_after_a_while_at_most_the_limit(sender, queues, monkeypatch):
    monkeypatch.setattr(settings, "AUTO_RESEND_AFTER", 3600)
    monkeypatch.setattr(settings, "AUTO_RESEND_MAX", 2)
    failed_at = utcnow()
    outage = failed_message(sender, FailureReason.RETRIES_EXHAUSTED, failed_at)
    rejected = failed_message(sender, FailureReason.REJECTED_BY_PROVIDER, failed_at)
    later = failed_at + timedelta(hours=1)

    assert auto_resend(later - timedelta(seconds=1)) == {"resent": 0}
    for resend in (1, 2):
        assert auto_resend(later) == {"resent": 1}
        message = Message.get_by_id(outage.id)
        assert (message.state, message.resends, message.failure_reason) == (
            MessageState.QUEUED,
            resend,
            None,
        )
        assert email_queue(queues) == resend
        Message.update(
            state=MessageState.FAILED,
            failure_reason=FailureReason.RETRIES_EXHAUSTED,
            updated_at=failed_at,
        ).where(Message.id == outage.id).execute()
    assert auto_resend(later + timedelta(days=1)) == {"resent": 0}
    assert Message.get_by_id(rejected.id).state == MessageState.FAILED


def test_expired_or_chained_failures_are_not_resent(sender, queues):
    failed_at = utcnow() - timedelta(days=1)
    chained = failed_message(sender, FailureReason.RETRIES_EXHAUSTED, failed_at, fallback_rank=0)
    lapsed = failed_message(sender, FailureReason.RETRIES_EXHAUSTED, failed_at)
    Notification.update(valid_till=utcnow()).where(
        Notification.id == lapsed.notification_id
    ).execute()
    assert auto_resend(utcnow() + timedelta(seconds=1)) == {"resent": 0}
    assert Message.get_by_id(chained.id).state == MessageState.FAILED


def test_the_purge_redacts_old_personal_data_in_batches(sender, monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "MESSAGE_RETENTION_DAYS", 7)
    monkeypatch.setattr(settings, "PURGE_BATCH_SIZE", 2)
    monkeypatch.setattr(settings, "DOCUMENT_STORE_DIR", str(tmp_path))
    now = utcnow()
    failed_at = now - timedelta(days=8)
    old = [
        failed_message(sender, FailureReason.RETRIES_EXHAUSTED, failed_at, recipient_key="2000")
        for _ in range(3)
    ]
    recent = failed_message(sender, FailureReason.RETRIES_EXHAUSTED, now)
    document_id = documents.put(b"%PDF-1.4", "application/pdf", "act.pdf")
    attachment = {"document_id": document_id, "filename": "act.pdf", "size": 8}
    Notification.update(content={"subject": "s", "body": "b", "attachments": [attachment]}).where(
        Notification.id == old[0].notification_id
    ).execute()
    Message.update(
        attributes={"name": "Ion"}, last_error="to a@example.md", subject="Dosar", body="Ion, …"
    ).execute()
    Notification.update(created_at=now - timedelta(days=8), attributes={"x": 1}).where(
        Notification.id.in_([m.notification_id for m in old])
    ).execute()

    assert purge(now) == {"notifications": 3, "messages": 3}
    for message in old:
        message = Message.get_by_id(message.id)
        assert (message.destination, message.recipient_key, message.attributes) == ("", None, None)
        assert (message.last_error, message.subject, message.body) == (None, None, None)
        assert (message.state, message.failure_reason) == (
            MessageState.FAILED,
            FailureReason.RETRIES_EXHAUSTED,
        )
        notification = Notification.get_by_id(message.notification_id)
        assert (notification.content, notification.attributes) == ({}, None)
        assert notification.purged_at == now
    assert Message.get_by_id(recent.id).destination == "a@example.md"
    with pytest.raises(documents.DocumentNotFound):
        documents.get(document_id)
    assert purge(now) == {"notifications": 0, "messages": 0}


def test_job_runs_are_recorded_and_shown_to_admins(client, sender, admin, queues):
    lock = LeaderLock(queues.client, 5, key="herald:test:leader")
    as_leader(lock, send_scheduled, 5, queues.client)()
    response = client.get("/v1/admin/scheduler", headers=admin.headers)
    assert response.status_code == 200
    [run] = response.get_json()
    assert run["job"] == "send_scheduled"
    assert run["counts"] == {"queued": 0, "fired": 0, "duplicate": 0, "invalid": 0}
    assert run["nextRun"] > run["lastRun"]
    assert run["durationSeconds"] >= 0 and run["error"] is None
    assert client.get("/v1/admin/scheduler", headers=sender.headers).status_code == 403

"""An in-app message, whose send is only its outcome's write, is claimed and recorded in one
commit: once, whatever duplicate jobs or other workers do, and nothing is lost when a worker
dies before that commit (the replay job finds the message still queued)."""

from datetime import timedelta

import pytest

from models import db as database
from models.base import utcnow
from models.message import Attempt, Message, claim_message
from models.notification import Notification
from models.states import MessageState
from scheduler.jobs import replay
from settings import settings
from tasks import deliver as delivery
from tests.factories import message


def inapp_message(client, sender, **message_fields) -> str:
    body = {
        "recipients": [{"type": "user", "value": "user-7"}],
        "message": {"subject": "Dosar aprobat", "body": "Dosarul 42 a fost aprobat."},
        **message_fields,
    }
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["messages"][0]["id"]


def attempts_of(message_id: str) -> list[int]:
    return [a.number for a in Attempt.select().where(Attempt.message == message_id)]


@pytest.fixture
def commits(monkeypatch) -> list[int]:
    """How many group commits ran (each one transaction)."""
    counted: list[int] = []
    run = database.group_commit.run

    def counting(work):
        counted.append(1)
        return run(work)

    monkeypatch.setattr(database.group_commit, "run", counting)
    return counted


def test_an_inapp_message_is_stored_unread_with_one_commit(client, sender, queues, commits):
    message_id = inapp_message(client, sender)
    commits.clear()  # the accept path's own group commit

    delivery.deliver(message_id, "inapp")

    stored = message(message_id)
    assert (stored.state, stored.attempts, stored.body) == (
        MessageState.UNREAD,
        1,
        "Dosarul 42 a fost aprobat.",
    )
    assert stored.sent_at is not None and stored.due_at is None
    assert attempts_of(message_id) == [1]
    assert len(commits) == 1


def test_a_duplicate_job_records_nothing_more(client, sender, queues):
    message_id = inapp_message(client, sender)

    delivery.deliver(message_id, "inapp")
    delivery.deliver(message_id, "inapp")

    assert message(message_id).attempts == 1
    assert attempts_of(message_id) == [1]


def test_a_message_another_worker_claimed_meanwhile_is_left_to_it(
    client, sender, queues, monkeypatch
):
    """Another worker claims the message between this one's read and its commit (the read is
    wrapped to claim right after it: no timing window can place the claim there otherwise)."""
    message_id = inapp_message(client, sender)
    peek = delivery.peek_message

    def peek_then_claimed_elsewhere(*args, **kwargs):
        read = peek(*args, **kwargs)
        assert claim_message(message_id, settings.DELIVERY_LEASE_SECONDS) is not None
        return read

    monkeypatch.setattr(delivery, "peek_message", peek_then_claimed_elsewhere)

    delivery.deliver(message_id, "inapp")

    assert (message(message_id).state, message(message_id).attempts) == (MessageState.SENDING, 1)
    assert attempts_of(message_id) == []


class WorkerKilled(BaseException):
    """Stands in for the end of a worker process (nothing after it runs in that worker)."""


def test_a_worker_dying_before_the_commit_leaves_it_queued_for_replay(
    client, sender, queues, monkeypatch
):
    message_id = inapp_message(client, sender)
    render = delivery.render

    def killed(message):
        monkeypatch.setattr(delivery, "render", render)
        raise WorkerKilled

    monkeypatch.setattr(delivery, "render", killed)
    with pytest.raises(WorkerKilled):
        delivery.deliver(message_id, "inapp")
    assert (message(message_id).state, message(message_id).attempts) == (MessageState.QUEUED, 0)

    overdue = utcnow() - timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1)
    Message.update(due_at=overdue).where(Message.id == message_id).execute()  # time passes
    assert replay() == 1
    delivery.deliver(message_id, "inapp")  # the replayed job

    assert (message(message_id).state, message(message_id).attempts) == (MessageState.UNREAD, 1)
    assert attempts_of(message_id) == [1]


def test_an_expired_notification_expires_its_message(client, sender, queues):
    message_id = inapp_message(client, sender)
    Notification.update(valid_till=utcnow() - timedelta(seconds=1)).execute()

    delivery.deliver(message_id, "inapp")

    assert (message(message_id).state, attempts_of(message_id)) == (MessageState.EXPIRED, [])


def test_a_notification_deleted_after_the_read_cancels_its_message(
    client, sender, queues, monkeypatch
):
    message_id = inapp_message(client, sender)
    path = f"/v1/notifications/{message(message_id).notification_id}"
    peek = delivery.peek_message

    def peek_then_deleted(*args, **kwargs):
        read = peek(*args, **kwargs)
        assert client.delete(path, headers=sender.headers).status_code == 204
        return read

    monkeypatch.setattr(delivery, "peek_message", peek_then_deleted)

    delivery.deliver(message_id, "inapp")

    assert (message(message_id).state, attempts_of(message_id)) == (MessageState.CANCELLED, [])

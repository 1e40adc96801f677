"""The state guards: claim once, fence stale workers, replay only what is stuck."""

import uuid
from datetime import timedelta

from models.base import utcnow
from models.message import Attempt, Message, claim_message, finish_attempt, release_stuck
from models.notification import Notification
from models.states import AttemptOutcome, MessageState
from tests.factories import make_sender


def a_message(state=MessageState.QUEUED, due_in=timedelta(0), **fields) -> Message:
    sender = make_sender(f"s-{uuid.uuid4().hex}").sender
    notification = Notification.create(sender=sender, content={"subject": "s", "body": "b"})
    return Message.create(
        notification=notification,
        sender=sender,
        channel="email",
        destination="a@example.md",
        state=state,
        due_at=utcnow() + due_in,
        **fields,
    )


def test_a_message_is_claimed_once(db):
    message = a_message()
    first = claim_message(message.id, lease_seconds=60)
    second = claim_message(message.id, lease_seconds=60)

    assert first is not None and first.state == MessageState.SENDING and first.attempts == 1
    assert first.notification.content == {"subject": "s", "body": "b"}
    assert second is None


def test_a_retry_is_not_claimed_before_it_is_due(db):
    message = a_message(MessageState.RETRYING, due_in=timedelta(minutes=5))
    assert claim_message(message.id, lease_seconds=60) is None
    assert claim_message(message.id, 60, now=utcnow() + timedelta(minutes=5)) is not None


def test_final_states_are_never_claimed(db):
    for state in (MessageState.SENT, MessageState.FAILED, MessageState.CANCELLED):
        assert claim_message(a_message(state).id, lease_seconds=60) is None


def test_a_worker_whose_lease_was_taken_over_cannot_record(db):
    message = a_message()
    stale = claim_message(message.id, lease_seconds=60)
    # The lease expired and replay put the message back in the queue.
    Message.update(state=MessageState.QUEUED, due_at=utcnow()).where(
        Message.id == message.id
    ).execute()
    fresh = claim_message(message.id, lease_seconds=60)

    assert not finish_attempt(
        stale, AttemptOutcome.SENT, started_at=utcnow(), state=MessageState.SENT
    )
    assert finish_attempt(fresh, AttemptOutcome.SENT, started_at=utcnow(), state=MessageState.SENT)
    assert [a.number for a in Attempt.select().where(Attempt.message == message.id)] == [2]


def test_release_stuck_picks_only_what_is_stuck(db):
    now = utcnow()
    fresh = a_message(due_in=timedelta(seconds=-5))
    lost = a_message(due_in=timedelta(seconds=-120))
    late_retry = a_message(MessageState.RETRYING, due_in=timedelta(seconds=-120))
    dead_worker = a_message(MessageState.SENDING, due_in=timedelta(seconds=-1))
    live_worker = a_message(MessageState.SENDING, due_in=timedelta(seconds=30))
    a_message(MessageState.SENT, due_in=timedelta(seconds=-999))

    released = release_stuck(now, after_seconds=60, limit=100)

    assert {message_id for message_id, _ in released} == {
        str(lost.id),
        str(late_retry.id),
        str(dead_worker.id),
    }
    assert Message.get_by_id(dead_worker.id).state == MessageState.QUEUED
    assert Message.get_by_id(live_worker.id).state == MessageState.SENDING
    assert Message.get_by_id(fresh.id).due_at == fresh.due_at
    assert release_stuck(now, after_seconds=60, limit=100) == []  # due_at moved to now

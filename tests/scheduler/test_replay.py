"""The replay job: stuck messages re-enqueued, a row that cannot be enqueued failed once and
never again in the way of the others, and nothing lost while the broker is down. Replay of a
batch runs on each broker (Redis; RabbitMQ when TEST_RABBITMQ_URL is set)."""

import logging
from datetime import timedelta

import pytest

from models.base import utcnow
from models.message import Message
from models.sender import Sender
from models.states import FailureReason, MessageState
from scheduler.jobs import replay
from settings import settings
from tasks.broker import BROKER_ERRORS
from tasks.deliver import ACTORS, UnknownChannel, enqueue
from tests.factories import message, stored_message
from tests.support import drain, running_worker, settled, wait_until


def overdue_queued(sender, channel="email", **columns) -> Message:
    """A message left ``queued`` past REPLAY_AFTER_SECONDS, as a lost job leaves it."""
    overdue = utcnow() - timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 60)
    return stored_message(sender.sender, state="queued", channel=channel, due_at=overdue, **columns)


def test_a_row_without_a_channel_is_failed_and_the_rest_of_the_batch_delivered(
    any_broker, sender, smtp, monkeypatch, caplog
):
    monkeypatch.setattr(settings, "REPLAY_BATCH_SIZE", 2)
    poisoned = overdue_queued(sender, channel="none", destination="")
    Message.update(due_at=poisoned.due_at - timedelta(seconds=1)).where(
        Message.id == poisoned.id
    ).execute()  # the oldest: first in the first batch
    good = [overdue_queued(sender, destination=f"p{n}@example.md") for n in range(3)]

    with caplog.at_level(logging.ERROR, logger="scheduler.jobs"):
        assert replay(utcnow()) == 3

    with running_worker(any_broker.broker):
        for row in good:
            wait_until(settled(row.id, MessageState.SENT), timeout=30)
    assert sorted(mail.rcpt_tos[0] for mail in smtp.received) == [
        "p0@example.md",
        "p1@example.md",
        "p2@example.md",
    ]
    flagged = message(poisoned.id)
    assert (flagged.state, flagged.failure_reason, flagged.due_at) == (
        MessageState.FAILED,
        FailureReason.NO_ACTIVE_CHANNEL,
        None,
    )
    assert flagged.last_error == "cannot be enqueued: no deliver actor for channel 'none'"

    later = utcnow() + timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 60)
    with caplog.at_level(logging.ERROR, logger="scheduler.jobs"):
        assert replay(later) == 0
    assert message(poisoned.id).updated_at == flagged.updated_at
    assert [r.getMessage() for r in caplog.records if r.name == "scheduler.jobs"] == [
        f"replay: message {poisoned.id} on channel 'none' failed with NO_ACTIVE_CHANNEL: "
        "cannot be enqueued: no deliver actor for channel 'none'"
    ]
    assert len(smtp.received) == 3


def test_the_sender_hears_of_a_message_replay_failed(sender, queues):
    Sender.update(callback_url="https://hooks.example.md/herald").execute()
    poisoned = overdue_queued(sender, channel="fax")

    assert replay(utcnow()) == 0

    assert message(poisoned.id).failure_reason == FailureReason.NO_ACTIVE_CHANNEL
    assert queues.client.llen("dramatiq:callbacks") == 1


def test_a_bug_in_building_one_job_fails_that_row_logged_with_its_traceback(
    sender, queues, monkeypatch, caplog
):
    poisoned, good = overdue_queued(sender), overdue_queued(sender)
    build = ACTORS["email"].message

    def message_with_a_bug(message_id, channel):
        if message_id == str(poisoned.id):
            raise KeyError("a bug")
        return build(message_id, channel)

    monkeypatch.setattr(ACTORS["email"], "message", message_with_a_bug)
    with caplog.at_level(logging.ERROR, logger="scheduler.jobs"):
        assert replay(utcnow()) == 1

    assert queues.client.llen("dramatiq:email") == 1
    failed = message(poisoned.id)
    assert (failed.state, failed.failure_reason) == (
        MessageState.FAILED,
        FailureReason.NO_ACTIVE_CHANNEL,
    )
    assert failed.last_error == "cannot be enqueued: KeyError('a bug')"
    (logged,) = [r for r in caplog.records if r.name == "scheduler.jobs"]
    assert isinstance(logged.exc_info[1], KeyError)
    with pytest.raises(KeyError):  # without a list to put it on, the error propagates
        enqueue([(str(good.id), "email"), (str(poisoned.id), "email")], quiet=True)


def test_enqueue_refuses_an_unknown_channel_even_when_quiet(sender, queues):
    good, bad = overdue_queued(sender), overdue_queued(sender, channel="none")
    items = [(str(good.id), "email"), (str(bad.id), "none")]

    for quiet in (False, True):
        with pytest.raises(UnknownChannel, match="'none'"):
            enqueue(items, quiet=quiet)
        with pytest.raises(UnknownChannel):
            enqueue(items[1:], delay_ms=100, quiet=quiet)

    assert queues.client.llen("dramatiq:email") == 0


def test_replay_with_the_broker_down_leaves_every_row_for_the_next_pass(
    sender, smtp, broker_outage
):
    server, own_broker = broker_outage
    rows = [overdue_queued(sender, destination=f"p{n}@example.md") for n in range(2)]
    server.stop()

    with pytest.raises(BROKER_ERRORS):
        replay(utcnow())

    assert [message(row.id).state for row in rows] == [MessageState.QUEUED] * 2
    server.start()
    overdue = utcnow() - timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1)
    Message.update(due_at=overdue).execute()  # time passes
    assert replay(utcnow()) == 2
    with running_worker(own_broker) as worker:
        for row in rows:
            wait_until(settled(row.id, MessageState.SENT))
        drain(own_broker, worker)
    assert len(smtp.received) == 2

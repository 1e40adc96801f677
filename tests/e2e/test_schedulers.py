"""Two `python -m scheduler` processes on one Redis and one database: one acts, the other stands
by; when the leader is SIGKILLed the standby takes over within the lock's TTL, and no reminder
occurrence fires twice or is lost. On each broker (Redis; RabbitMQ when TEST_RABBITMQ_URL is
set); the leader lock is on Redis either way."""

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from models.base import utcnow
from models.message import Message
from models.notification import Notification
from models.reminder import Reminder, create_reminder
from models.states import MessageState
from scheduler.jobs import replay
from settings import settings
from tests.factories import email_notification, make_sender
from tests.support import running_worker, wait_until, waiting_jobs

ROOT = Path(__file__).resolve().parents[2]


class SchedulerProcess:
    def __init__(self, env: dict):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line.decode(errors="replace"))

    def said(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def stuck_message(sender) -> Message:
    notification = Notification.create(sender=sender, content={"subject": "s", "body": "b"})
    return Message.create(
        notification=notification,
        sender=sender,
        channel="email",
        destination="a@example.md",
        state=MessageState.QUEUED,
        due_at=utcnow() - timedelta(minutes=10),
    )


def scheduler_env(db, redis_url, any_broker, **settings) -> dict:
    """Environment for scheduler processes on the test's database, Redis (leader lock) and
    broker. Stuck messages are ten minutes overdue, so REPLAY_AFTER_SECONDS of five minutes
    finds them once and never again during the test."""
    redis.Redis.from_url(redis_url).delete("herald:scheduler:leader")
    return dict(
        os.environ,
        DATABASE_URL=db.herald_url,
        REDIS_URL=redis_url,
        **any_broker.env,
        LEADER_LOCK_TTL_SECONDS="2",
        REPLAY_AFTER_SECONDS="300",
        LOG_LEVEL="INFO",
        **settings,
    )


@pytest.mark.e2e
def test_one_scheduler_acts_and_the_standby_takes_over(any_broker, db, redis_url):
    env = scheduler_env(db, redis_url, any_broker, REPLAY_INTERVAL_SECONDS="1")
    sender = make_sender("acme").sender
    first = SchedulerProcess(env)
    try:
        wait_until(lambda: first.said("scheduler started (leader)"), timeout=30)
        second = SchedulerProcess(env)
        try:
            wait_until(lambda: second.said("scheduler started (standby)"), timeout=30)

            stuck_message(sender)
            wait_until(lambda: first.said("replay: re-enqueued 1 stuck messages"), timeout=30)

            first.kill()
            wait_until(lambda: second.said(": leader"), timeout=30)
            stuck_message(sender)
            wait_until(lambda: second.said("replay: re-enqueued 1 stuck messages"), timeout=30)
        finally:
            second.kill()
    finally:
        first.kill()

    assert first.said("replay:") == 1, first.lines
    assert second.said("replay:") == 1, second.lines
    assert waiting_jobs(any_broker.broker, "email") == 2


@pytest.mark.e2e
def test_reminders_fire_exactly_once_across_a_leader_killed_mid_campaign(
    any_broker, db, redis_url, smtp, monkeypatch
):
    env = scheduler_env(db, redis_url, any_broker, SCHEDULE_INTERVAL_SECONDS="1")
    sender = make_sender("acme").sender

    def fired() -> list:
        query = Notification.select(Notification.occurrence_at)
        return [n.occurrence_at for n in query.where(Notification.reminder == reminder.id)]

    first = SchedulerProcess(env)
    try:
        wait_until(lambda: first.said("scheduler started (leader)"), timeout=30)
        second = SchedulerProcess(env)
        try:
            wait_until(lambda: second.said("scheduler started (standby)"), timeout=30)
            # Two occurrences soon, the rest well after: the leader is killed between them, so
            # the standby must fire the rest however slowly this machine runs the test.
            start = utcnow() + timedelta(seconds=2)
            moments = [start, start + timedelta(seconds=1)]
            moments += [start + timedelta(seconds=20 + n) for n in range(6)]
            schedule = {"at": [moment.isoformat() for moment in moments]}
            reminder = create_reminder(sender, email_notification(), schedule, None, utcnow())
            wait_until(lambda: len(fired()) >= 2, timeout=30)
            first.kill()
            assert len(fired()) < len(moments), "the leader fired the whole campaign"
            wait_until(lambda: len(fired()) == len(moments), timeout=60)
            wait_until(lambda: Reminder.get_by_id(reminder.id).state == "done", timeout=30)
        finally:
            second.kill()
    finally:
        first.kill()

    assert sorted(fired()) == moments
    assert Reminder.get_by_id(reminder.id).fired == len(moments)
    assert second.said("send_scheduled:") >= 1, second.lines
    # Each occurrence's email arrives once. The leader may have been killed between storing an
    # occurrence and enqueueing it (RabbitMQ confirms take long enough to be caught there):
    # replay enqueues whatever is still queued, and claims keep duplicates from sending twice.
    monkeypatch.setattr(settings, "REPLAY_AFTER_SECONDS", 0)
    with running_worker(any_broker.broker):
        replay(utcnow())
        wait_until(lambda: len(smtp.received) >= len(moments), timeout=60)
        any_broker.broker.join("email", timeout=30_000)
    assert len(smtp.received) == len(moments)

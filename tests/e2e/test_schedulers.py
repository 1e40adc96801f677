"""Two `python -m scheduler` processes on one Redis and one database: one acts, the other stands
by; when the leader is SIGKILLed the standby takes over within the lock's TTL, and no reminder
occurrence fires twice or is lost."""

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from models.base import utcnow
from models.message import Message
from models.notification import Notification
from models.reminder import Reminder, create_reminder
from models.states import MessageState
from tests.factories import email_notification, make_sender
from tests.support import wait_until

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


@pytest.mark.e2e
def test_one_scheduler_acts_and_the_standby_takes_over(db, queues, redis_url):
    queues.client.delete("herald:scheduler:leader")
    env = dict(
        os.environ,
        DATABASE_URL=db.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL="",
        LEADER_LOCK_TTL_SECONDS="2",
        REPLAY_INTERVAL_SECONDS="1",
        LOG_LEVEL="INFO",
    )
    sender = make_sender("acme").sender
    first = SchedulerProcess(env)
    try:
        wait_until(lambda: first.said("scheduler started (leader)"), timeout=30)
        second = SchedulerProcess(env)
        try:
            wait_until(lambda: second.said("scheduler started (standby)"), timeout=30)

            stuck_message(sender)
            wait_until(lambda: first.said("replay: re-enqueued 1 stuck messages"), timeout=10)

            first.kill()
            wait_until(lambda: second.said(": leader"), timeout=10)
            stuck_message(sender)
            wait_until(lambda: second.said("replay: re-enqueued 1 stuck messages"), timeout=10)
        finally:
            second.kill()
    finally:
        first.kill()

    assert first.said("replay:") == 1, first.lines
    assert second.said("replay:") == 1, second.lines
    assert queues.client.llen("dramatiq:email") == 2


@pytest.mark.e2e
def test_reminders_fire_exactly_once_across_a_leader_killed_mid_campaign(db, queues, redis_url):
    queues.client.delete("herald:scheduler:leader")
    env = dict(
        os.environ,
        DATABASE_URL=db.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL="",
        LEADER_LOCK_TTL_SECONDS="2",
        SCHEDULE_INTERVAL_SECONDS="1",
        LOG_LEVEL="INFO",
    )
    sender = make_sender("acme").sender
    start = utcnow() + timedelta(seconds=4)
    moments = [start + timedelta(seconds=n) for n in range(8)]
    schedule = {"at": [moment.isoformat() for moment in moments]}
    reminder = create_reminder(sender, email_notification(), schedule, None, utcnow())

    def fired() -> list:
        query = Notification.select(Notification.occurrence_at)
        return [n.occurrence_at for n in query.where(Notification.reminder == reminder.id)]

    first = SchedulerProcess(env)
    try:
        wait_until(lambda: first.said("scheduler started (leader)"), timeout=30)
        second = SchedulerProcess(env)
        try:
            wait_until(lambda: second.said("scheduler started (standby)"), timeout=30)
            wait_until(lambda: len(fired()) >= 2, timeout=30)
            first.kill()
            wait_until(lambda: len(fired()) == len(moments), timeout=30)
            wait_until(lambda: Reminder.get_by_id(reminder.id).state == "done", timeout=10)
        finally:
            second.kill()
    finally:
        first.kill()

    assert sorted(fired()) == moments
    assert Reminder.get_by_id(reminder.id).fired == len(moments)
    assert second.said("send_scheduled:") >= 1, second.lines
    assert queues.client.llen("dramatiq:email") == len(moments)

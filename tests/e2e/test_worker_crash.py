"""A real `dramatiq tasks.worker` worker process SIGKILLed in the middle of an SMTP transaction: the
message is recovered by replay once the lease expires, and arrives exactly once. On each broker
(Redis; RabbitMQ when TEST_RABBITMQ_URL is set)."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from models.base import utcnow
from models.states import MessageState
from scheduler.jobs import replay
from settings import settings
from tests.factories import email_notification, message
from tests.support import ScriptedMailServer, running_worker, wait_until

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2


class StallingMailServer(ScriptedMailServer):
    """Hangs in DATA for the first message, as a slow server would; accepts the rest."""

    def __init__(self):
        super().__init__()
        self.stalled = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if not self.stalled.is_set():
            self.stalled.set()
            await asyncio.sleep(60)
            return "451 4.3.0 Timed out"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.e2e
def test_a_killed_worker_loses_nothing_and_sends_once(
    any_broker, client, sender, db, redis_url, monkeypatch
):
    from dev.embedded_redis import free_port
    from dev.mailcatcher import start_mailcatcher

    smtp = StallingMailServer()
    smtp_port = free_port()
    controller = start_mailcatcher(smtp, "127.0.0.1", smtp_port)
    monkeypatch.setattr(settings, "SMTP_PORT", smtp_port)
    env = dict(
        os.environ,
        DATABASE_URL=db.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL=any_broker.url,
        SMTP_PORT=str(smtp_port),
        DELIVERY_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    worker_process = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "tasks.worker", "--processes", "1", "--threads", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        posted = client.post("/v1/notifications", json=email_notification(), headers=sender.headers)
        message_id = posted.get_json()["messages"][0]["id"]

        assert smtp.stalled.wait(60), "the worker never reached DATA"
        claimed = message(message_id)
        assert claimed.state == MessageState.SENDING
        os.killpg(worker_process.pid, signal.SIGKILL)
        worker_process.wait(10)

        # While the lease runs, replay leaves the message alone (asked at a moment inside the
        # lease, so a slow machine cannot have let it expire meanwhile)…
        assert replay(claimed.due_at - timedelta(seconds=1)) == 0
        # …and once it has expired, replay hands it to another worker.
        wait_until(lambda: message(message_id).due_at < utcnow(), timeout=LEASE_SECONDS + 30)
        assert replay(utcnow()) == 1

        with running_worker(any_broker.broker, threads=1):
            wait_until(lambda: message(message_id).state == MessageState.SENT, timeout=30)
    finally:
        if worker_process.poll() is None:
            os.killpg(worker_process.pid, signal.SIGKILL)
        controller.stop()

    assert [mail.rcpt_tos for mail in smtp.received] == [["ion@example.md"]]
    recovered = message(message_id)
    assert recovered.attempts == 2
    assert [a.outcome for a in recovered.attempt_rows] == ["sent"]

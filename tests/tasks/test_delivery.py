"""The whole path: API → database → Redis → Dramatiq worker → SMTP server, and its failures."""

import asyncio
from datetime import timedelta

import pytest
from dramatiq.middleware import TimeLimit

from models.base import utcnow
from models.message import Attempt, Message
from models.notification import Notification
from models.states import MessageState
from scheduler.jobs import replay
from settings import settings
from tasks.deliver import ACTORS
from tests.factories import email_notification, message
from tests.fakes.http import FakeProvider, Response
from tests.support import drain, running_worker, settled, wait_until


def send(client, sender, body):
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202
    return response.get_json()


def test_email_travels_from_the_api_to_the_smtp_server(client, sender, smtp, worker):
    body = email_notification("ion.popescu@example.md")
    body["message"]["html"] = "<p>Vă așteptăm <b>luni</b>.</p>"
    posted = send(client, sender, body)
    message_id = posted["messages"][0]["id"]

    (mail,) = smtp.wait_for(1)
    wait_until(settled(message_id, MessageState.SENT))

    assert mail.rcpt_tos == ["ion.popescu@example.md"]
    email = mail.email
    assert email["To"] == "ion.popescu@example.md"
    assert email["From"] == settings.MAIL_FROM
    assert email["Subject"] == "Programare confirmată"
    assert email["X-Herald-Message-Id"] == message_id
    assert email["Message-ID"]
    assert email.get_body(("plain",)).get_content().strip() == "Vă așteptăm luni la ora 9:00."
    assert "<b>luni</b>" in email.get_body(("html",)).get_content()

    status = client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()
    assert status["state"] == "sent"
    assert status["sentAt"]
    assert status["attempts"] == 1
    assert [a["outcome"] for a in status["attemptHistory"]] == ["sent"]
    assert status["attemptHistory"][0]["providerId"] == email["Message-ID"]
    notification = client.get(f"/v1/notifications/{posted['id']}", headers=sender.headers)
    assert notification.get_json()["state"] == "completed"


def test_a_4xx_reply_is_retried_then_sent(client, sender, smtp, worker, fast_retries):
    smtp.data_replies = ["451 4.3.0 Mailbox temporarily unavailable"]
    message_id = send(client, sender, email_notification())["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    assert len(smtp.received) == 1
    assert smtp.data_commands == 2
    status = client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()
    assert status["attempts"] == 2
    assert [a["outcome"] for a in status["attemptHistory"]] == ["transient", "sent"]
    assert "451" in status["attemptHistory"][0]["error"]


def test_a_5xx_reply_fails_at_once_with_its_reason(client, sender, smtp, worker, fast_retries):
    smtp.data_replies = ["554 5.7.1 Message rejected as spam"]
    posted = send(client, sender, email_notification())
    message_id = posted["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.FAILED))

    failed = message(message_id)
    assert failed.failure_reason == "REJECTED_BY_PROVIDER"
    assert failed.attempts == 1
    assert "554" in failed.last_error
    assert smtp.received == []
    notification = client.get(f"/v1/notifications/{posted['id']}", headers=sender.headers)
    assert notification.get_json()["state"] == "failed"
    assert notification.get_json()["messages"][0]["failureReason"] == "REJECTED_BY_PROVIDER"


def test_a_refused_recipient_is_an_invalid_destination(client, sender, smtp, worker):
    smtp.rcpt_replies["nobody@example.md"] = "550 5.1.1 No such user"
    body = email_notification("nobody@example.md", "ion@example.md")
    nobody, ion = (m["id"] for m in send(client, sender, body)["messages"])

    wait_until(settled(nobody, MessageState.FAILED))
    wait_until(settled(ion, MessageState.SENT))

    assert message(nobody).failure_reason == "INVALID_DESTINATION"
    assert [mail.rcpt_tos for mail in smtp.received] == [["ion@example.md"]]


def test_retries_run_out(client, sender, smtp, worker, fast_retries, monkeypatch):
    monkeypatch.setattr(settings.EMAIL, "MAX_RETRIES", 2)
    smtp.data_replies = ["421 4.7.0 Try again later"] * 5
    message_id = send(client, sender, email_notification())["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.FAILED))

    failed = message(message_id)
    assert failed.failure_reason == "RETRIES_EXHAUSTED"
    assert failed.attempts == 3
    assert smtp.data_commands == 3


def test_an_unreachable_smtp_server_is_retried(
    client, sender, smtp, worker, fast_retries, monkeypatch
):
    from dev.embedded_redis import free_port

    real_port = settings.SMTP_PORT
    monkeypatch.setattr(settings, "SMTP_PORT", free_port())  # nothing listens there
    message_id = send(client, sender, email_notification())["messages"][0]["id"]
    wait_until(
        lambda: message(message_id).attempts >= 1 and message(message_id).state == "retrying"
    )
    assert "connection" in message(message_id).last_error.lower()

    monkeypatch.setattr(settings, "SMTP_PORT", real_port)
    wait_until(settled(message_id, MessageState.SENT))
    assert len(smtp.received) == 1


def test_a_duplicated_deliver_job_sends_once(client, sender, smtp, queues, db):
    message_id = send(client, sender, email_notification())["messages"][0]["id"]
    for _ in range(3):
        ACTORS["email"].send(message_id)

    with running_worker(queues, threads=4) as worker:
        wait_until(settled(message_id, MessageState.SENT))
        drain(queues, worker)

    assert len(smtp.received) == 1
    assert message(message_id).attempts == 1


def test_a_worker_that_died_mid_send_is_recovered_by_replay(client, sender, smtp, queues, db):
    """A claimed message whose worker vanished (lease expired) is requeued and sent once."""
    message_id = send(client, sender, email_notification())["messages"][0]["id"]
    queues.flush_all()  # the job was taken by the worker that then died
    claimed_at = utcnow() - timedelta(seconds=settings.DELIVERY_LEASE_SECONDS + 5)
    Message.update(
        state=MessageState.SENDING,
        attempts=1,
        due_at=claimed_at + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS),
    ).where(Message.id == message_id).execute()

    assert replay(utcnow()) == 1

    with running_worker(queues):
        wait_until(settled(message_id, MessageState.SENT))
    assert len(smtp.received) == 1
    assert message(message_id).attempts == 2


def test_a_live_lease_is_not_replayed(client, sender, queues, db):
    message_id = send(client, sender, email_notification())["messages"][0]["id"]
    Message.update(
        state=MessageState.SENDING, attempts=1, due_at=utcnow() + timedelta(seconds=60)
    ).where(Message.id == message_id).execute()

    assert replay(utcnow()) == 0
    assert message(message_id).state == MessageState.SENDING


def test_broker_down_at_accept_time_then_replay_delivers(
    client, sender, smtp, broker_outage, monkeypatch
):
    server, own_broker = broker_outage
    server.stop()

    response = client.post("/v1/notifications", json=email_notification(), headers=sender.headers)

    assert response.status_code == 202
    message_id = response.get_json()["messages"][0]["id"]
    assert message(message_id).state == MessageState.QUEUED

    server.start()
    overdue = utcnow() - timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1)
    Message.update(due_at=overdue).where(Message.id == message_id).execute()  # time passes
    assert replay(utcnow()) == 1
    with running_worker(own_broker) as worker:
        wait_until(settled(message_id, MessageState.SENT))
        drain(own_broker, worker)
    assert len(smtp.received) == 1
    assert replay(utcnow()) == 0


@pytest.fixture
def time_limits(broker):
    """Dramatiq's time limits, enforced: their watcher thread starts at process boot in
    ``dramatiq tasks.worker``, which a worker started in a test does not go through."""
    (limits,) = [m for m in broker.middleware if isinstance(m, TimeLimit)]
    if not limits.manager.is_alive():
        limits.manager.start()


def stall_until_interrupted(smtp, caplog, monkeypatch) -> None:
    """The SMTP server holds its answer to each message until Dramatiq has interrupted the
    worker sending it (its time limit), then answers 451: a provider call that outlives the
    time limit, without a race between the two."""
    stalls = []

    async def handle_data(server, session, envelope):
        stalls.append(envelope)
        for _ in range(600):
            if caplog.text.count("Time limit exceeded") >= len(stalls):
                break
            await asyncio.sleep(0.05)
        return "451 4.4.2 Too late"

    monkeypatch.setattr(smtp, "handle_DATA", handle_data)


def test_a_send_cut_short_by_the_time_limit_is_an_attempt_and_retries_end_it(
    client, sender, smtp, worker, time_limits, fast_retries, monkeypatch, caplog
):
    monkeypatch.setitem(ACTORS["email"].options, "time_limit", 500)
    monkeypatch.setattr(settings.EMAIL, "MAX_RETRIES", 1)
    stall_until_interrupted(smtp, caplog, monkeypatch)
    message_id = send(client, sender, email_notification())["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.FAILED), timeout=30)

    failed = message(message_id)
    assert (failed.failure_reason, failed.attempts) == ("RETRIES_EXHAUSTED", 2)
    attempts = Attempt.select().where(Attempt.message == message_id).order_by(Attempt.number)
    assert [(a.number, a.outcome) for a in attempts] == [(1, "transient"), (2, "transient")]
    assert all("interrupted (TimeLimitExceeded)" in a.error for a in attempts)
    assert smtp.received == []


def test_an_outcome_the_database_cannot_store_as_given_is_stored_safely(client, sender, queues):
    """A lone surrogate reaches the rendered body through JSON (which can carry one as an
    escape); no database can store it as text. Planted in the stored content, as the API
    refuses it."""
    body = {
        "recipients": [{"type": "user", "value": "user-1"}],
        "message": {"subject": "Dosar aprobat", "body": "Dosarul a fost aprobat."},
    }
    message_id = send(client, sender, body)["messages"][0]["id"]
    planted = {"subject": "Dosar aprobat", "body": "Dosarul \udc80 a fost aprobat."}
    notification = Message.get_by_id(message_id).notification_id
    Notification.update(content=planted).where(Notification.id == notification).execute()

    with running_worker(queues):
        wait_until(settled(message_id, MessageState.UNREAD))

    stored = message(message_id)
    assert (stored.attempts, stored.body, stored.subject) == (1, None, None)
    assert "surrogates not allowed" in stored.last_error
    (attempt,) = Attempt.select().where(Attempt.message == message_id)
    assert (attempt.outcome, attempt.error) == ("sent", stored.last_error)


def test_a_provider_reply_the_database_cannot_store_as_given_is_stored_safely(
    client, sender, worker, monkeypatch
):
    """A NUL in a provider's answer, quoted in the error text, which PostgreSQL refuses."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    hook = FakeProvider().start()
    hook.script = [Response(400, b"no\x00such hook", {"Content-Type": "text/plain"})]
    body = {
        "recipients": [{"type": "webhook", "value": f"{hook.url}/hook"}],
        "message": {"subject": "Dosar aprobat", "body": "Dosarul 42 a fost aprobat."},
    }
    try:
        message_id = send(client, sender, body)["messages"][0]["id"]
        wait_until(settled(message_id, MessageState.FAILED))
    finally:
        hook.stop()

    failed = message(message_id)
    assert failed.failure_reason == "REJECTED_BY_PROVIDER"
    assert "answered 400: no" in failed.last_error

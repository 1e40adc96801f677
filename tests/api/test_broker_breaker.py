"""A hung broker (a Redis that accepts connections but never answers) does not hold up the
API: after the first enqueue that times out, the breaker skips enqueueing for a while, POSTs
answer 202 at once, and the replay job sends what waited once the broker answers again."""

import os
import signal
import socket
from contextlib import contextmanager
from datetime import timedelta
from time import monotonic

import tasks
from models.base import utcnow
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from scheduler.jobs import replay
from settings import settings
from tasks.broker import breaker, create_broker, use_broker
from tests.factories import email_notification
from tests.support import drain, running_worker, settled, wait_until

#: Far below BROKER_TIMEOUT_SECONDS (3 s): an answer this fast did not wait on the broker.
FAST = 1.0


@contextmanager
def hung(server):
    """The embedded Redis stopped (SIGSTOP): connections are accepted, nothing is answered."""
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def timed_post(client, sender, body):
    started = monotonic()
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    return response, monotonic() - started


def test_a_hung_broker_does_not_slow_accepting_and_replay_sends_what_waited(
    client, sender, smtp, broker_outage
):
    server, own_broker = broker_outage
    assert settings.BROKER_TIMEOUT_SECONDS >= 3 * FAST
    ids = []
    with hung(server):
        first, _ = timed_post(client, sender, email_notification("p0@example.md"))
        assert first.status_code == 202  # it waited out one timeout, and opened the breaker
        ids.append(first.get_json()["messages"][0]["id"])
        for n in range(1, 6):
            response, took = timed_post(client, sender, email_notification(f"p{n}@example.md"))
            assert response.status_code == 202
            assert took < FAST, f"POST {n} took {took:.1f} s"
            ids.append(response.get_json()["messages"][0]["id"])
        health_started = monotonic()
        health = client.get("/healthz")
        assert monotonic() - health_started < FAST
        assert (health.status_code, health.get_json()["broker"]) == (503, "unreachable")

    assert [Message.get_by_id(i).state for i in ids] == [MessageState.QUEUED] * 6
    assert breaker.is_open
    overdue = utcnow() - timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1)
    Message.update(due_at=overdue).where(Message.id.in_(ids)).execute()  # time passes
    assert replay(utcnow()) == 6  # the replay job tries, breaker or not
    assert not breaker.is_open
    with running_worker(own_broker) as worker:
        for message_id in ids:
            wait_until(settled(message_id, MessageState.SENT))
        drain(own_broker, worker)
    assert sorted(mail.rcpt_tos[0] for mail in smtp.received) == [
        f"p{n}@example.md" for n in range(6)
    ]


def test_the_breaker_closes_by_itself_once_the_broker_answers(
    client, sender, broker_outage, monkeypatch
):
    server, own_broker = broker_outage
    monkeypatch.setattr(settings, "BROKER_BREAKER_SECONDS", 0.2)
    with hung(server):
        response, _ = timed_post(client, sender, email_notification())
        assert response.status_code == 202
        assert breaker.is_open
        for _ in range(3):  # skipped at once; a background ping keeps failing meanwhile
            assert timed_post(client, sender, email_notification())[1] < FAST

    def enqueued_at_once() -> bool:  # (a job the hung Redis took may land too: look for ours)
        response = client.post(
            "/v1/notifications", json=email_notification(), headers=sender.headers
        )
        message_id = response.get_json()["messages"][0]["id"]
        jobs = own_broker.client.hvals(f"{own_broker.namespace}:email.msgs")
        return any(message_id.encode() in job for job in jobs)

    wait_until(enqueued_at_once, timeout=30, interval=0.1)
    assert not breaker.is_open


def test_a_fanout_start_is_skipped_at_once_while_the_breaker_is_open(client, sender, broker_outage):
    server, _ = broker_outage
    body = {
        "recipients": [{"type": "idnp", "value": "2001234567891"}],
        "channels": ["email"],
        "message": email_notification()["message"],
    }
    with hung(server):
        assert timed_post(client, sender, email_notification())[0].status_code == 202
        response, took = timed_post(client, sender, body)
    assert response.status_code == 202
    assert took < FAST
    assert Notification.get_by_id(response.get_json()["id"]).fanout_state == "pending"


@contextmanager
def silent_rabbitmq():
    """A RabbitMQ URL on which connections are accepted (by the kernel) and never answered:
    what a hung server looks like to pika. The machine's RabbitMQ may be shared, so it is not
    the one stopped."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield f"amqp://guest:guest@127.0.0.1:{listener.getsockname()[1]}/%2F"


def test_a_hung_rabbitmq_costs_one_timeout_then_accepting_is_fast(client, sender, broker):
    with silent_rabbitmq() as url:
        use_broker(create_broker(url), list(tasks.ACTORS.values()))
        try:
            first, took = timed_post(client, sender, email_notification())
            assert first.status_code == 202
            assert took < settings.BROKER_TIMEOUT_SECONDS + 2  # pika's own: 15 s
            for _ in range(3):
                response, took = timed_post(client, sender, email_notification())
                assert (response.status_code, took < FAST) == (202, True)
        finally:
            use_broker(broker, list(tasks.ACTORS.values()))

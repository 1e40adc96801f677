"""Delivery callbacks: a signed POST to the sender's callback URL per message sent or failed,
retried on its own queue, never in the way of delivery."""

import logging
from datetime import timedelta

import pytest

from models.base import utcnow
from models.callback import Callback
from models.sender import Sender
from models.states import MessageState
from scheduler import jobs
from settings import settings
from tasks.callbacks import callback_actor
from tasks.deliver import deliver
from tests.factories import email_notification, message
from tests.fakes.http import Response
from tests.fakes.receiver import SignedReceiver, header
from tests.support import drain, running_worker, wait_until


@pytest.fixture
def allow_private(monkeypatch):
    """Receivers listen on http://127.0.0.1, which production settings refuse."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)


@pytest.fixture
def fast_callback_retries(monkeypatch):
    monkeypatch.setattr(settings.CALLBACK, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.CALLBACK, "MAX_BACKOFF_MS", 200)


@pytest.fixture
def receivers():
    """Start signed receivers on demand; all stopped after the test."""
    started = []

    def start(secret: str, port: int | None = None) -> SignedReceiver:
        started.append(SignedReceiver(secret, port=port).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


def listen_for_callbacks(sender, receivers) -> SignedReceiver:
    """A receiver for ``sender``'s callbacks, set as its callback URL."""
    receiver = receivers(sender.sender.callback_secret)
    set_callback_url(sender, f"{receiver.url}/herald/callbacks")
    return receiver


def set_callback_url(sender, url: str | None) -> None:
    Sender.update(callback_url=url).where(Sender.id == sender.sender.id).execute()


def send(client, sender, body) -> list[str]:
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return [m["id"] for m in response.get_json()["messages"]]


def webhook(*urls: str) -> dict:
    return {
        "recipients": [{"type": "webhook", "value": url} for url in urls],
        "message": {"subject": "Dosar aprobat", "body": "Dosarul 42 a fost aprobat."},
        "reference": "PRM-42",
    }


def test_one_signed_callback_per_message_sent_or_failed(
    client, sender, receivers, allow_private, worker
):
    callbacks = listen_for_callbacks(sender, receivers)
    hook = receivers(sender.sender.webhook_secret)
    strict = receivers("a secret the sender does not have")  # answers 401: rejected
    body = webhook(f"{hook.url}/hook", f"{strict.url}/hook")
    posted = client.post("/v1/notifications", json=body, headers=sender.headers).get_json()
    notification_id = posted["id"]
    sent_id, failed_id = (m["id"] for m in posted["messages"])

    callbacks.wait_for(2)
    drain(worker.broker, worker, queue="callbacks")

    assert len(callbacks.requests) == 2
    by_message = {r.json()["messageId"]: r for r in callbacks.verified}
    sent, failed = message(sent_id), message(failed_id)
    assert by_message[sent_id].json() == {
        "messageId": sent_id,
        "notificationId": notification_id,
        "reference": "PRM-42",
        "channel": "webhook",
        "destination": f"{hook.url}/hook",
        "state": "sent",
        "failureReason": None,
        "sentAt": sent.sent_at.isoformat(),
        "deliveredAt": None,
        "readAt": None,
    }
    assert by_message[failed_id].json() == {
        "messageId": failed_id,
        "notificationId": notification_id,
        "reference": "PRM-42",
        "channel": "webhook",
        "destination": f"{strict.url}/hook",
        "state": "failed",
        "failureReason": "REJECTED_BY_PROVIDER",
        "sentAt": None,
        "deliveredAt": None,
        "readAt": None,
    }
    assert failed.state == MessageState.FAILED
    for request in callbacks.verified:
        assert request.path == "/herald/callbacks"
        assert header(request, "User-Agent") == "Herald"
        assert header(request, "Herald-Message-Id") == request.json()["messageId"]


def test_a_failing_callback_endpoint_is_retried(
    client, sender, receivers, allow_private, smtp, worker, fast_callback_retries
):
    callbacks = listen_for_callbacks(sender, receivers)
    callbacks.replies = [
        Response(500, {"error": "boom"}),
        Response(429, {"error": "slow down"}, headers={"Retry-After": "1"}),
    ]
    (message_id,) = send(client, sender, email_notification())

    wait_until(lambda: len(callbacks.verified) == 3)

    assert len({r.body for r in callbacks.verified}) == 1
    assert callbacks.verified[0].json()["state"] == "sent"
    assert callbacks.arrivals[2] - callbacks.arrivals[1] >= 1.0
    assert message(message_id).state == MessageState.SENT
    assert message(message_id).attempts == 1


def test_callback_retries_run_out(
    client,
    sender,
    receivers,
    allow_private,
    smtp,
    worker,
    fast_callback_retries,
    monkeypatch,
    caplog,
):
    monkeypatch.setattr(settings.CALLBACK, "MAX_RETRIES", 2)
    callbacks = listen_for_callbacks(sender, receivers)
    callbacks.replies = [Response(503)] * 10
    (message_id,) = send(client, sender, email_notification())

    wait_until(lambda: "callback given up: retries exhausted" in caplog.text)
    drain(worker.broker, worker, queue="callbacks")

    assert len(callbacks.requests) == 3
    assert message(message_id).state == MessageState.SENT
    assert Callback.select().count() == 0  # nothing is owed any more


def test_a_refused_callback_is_not_retried(
    client, sender, receivers, allow_private, smtp, worker, fast_callback_retries, caplog
):
    caplog.set_level(logging.INFO, logger="tasks.callbacks")
    callbacks = listen_for_callbacks(sender, receivers)
    callbacks.replies = [Response(400, {"error": "unknown message"})] * 3
    send(client, sender, email_notification())

    wait_until(lambda: "callback given up" in caplog.text)
    drain(worker.broker, worker, queue="callbacks")

    assert len(callbacks.requests) == 1
    assert "400" in caplog.text


def test_a_callback_endpoint_that_is_down_changes_nothing_about_delivery(
    client, sender, receivers, allow_private, smtp, worker, fast_callback_retries, caplog
):
    caplog.set_level(logging.INFO, logger="tasks.callbacks")
    down = listen_for_callbacks(sender, receivers)
    down.stop()
    (message_id,) = send(client, sender, email_notification())

    wait_until(lambda: message(message_id).state == MessageState.SENT)
    wait_until(lambda: "callback to retry" in caplog.text)

    delivered = message(message_id)
    assert delivered.attempts == 1
    assert delivered.last_error is None
    assert len(smtp.received) == 1

    back_up = receivers(sender.sender.callback_secret, port=down.port)
    (request,) = back_up.wait_for(1)
    assert request.json()["messageId"] == message_id
    assert request.json()["state"] == "sent"


def test_no_callback_without_a_callback_url(
    client, sender, other_sender, receivers, allow_private, smtp, worker
):
    callbacks = listen_for_callbacks(other_sender, receivers)
    (quiet_id,) = send(client, sender, email_notification("ion@example.md"))
    wait_until(lambda: message(quiet_id).state == MessageState.SENT)
    (loud_id,) = send(client, other_sender, email_notification("ana@example.md"))

    callbacks.wait_for(1)
    drain(worker.broker, worker, queue="callbacks")

    assert [r.json()["messageId"] for r in callbacks.requests] == [loud_id]


@pytest.mark.parametrize("allowed", [True, False])
def test_the_callback_url_is_checked_again_when_called(
    client, sender, receivers, smtp, worker, monkeypatch, caplog, allowed
):
    """A private URL stored while it was allowed is not called once it no longer is."""
    caplog.set_level(logging.INFO, logger="tasks.callbacks")
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", allowed)
    callbacks = listen_for_callbacks(sender, receivers)
    (message_id,) = send(client, sender, email_notification())

    wait_until(lambda: message(message_id).state == MessageState.SENT)
    if allowed:
        callbacks.wait_for(1)
    else:
        wait_until(lambda: "callback given up" in caplog.text)
    drain(worker.broker, worker, queue="callbacks")

    assert len(callbacks.requests) == (1 if allowed else 0)


def test_callbacks_owed_while_the_broker_is_down_are_sent_once_by_the_replay_job(
    client, sender, receivers, allow_private, smtp, broker_outage, caplog
):
    server, own_broker = broker_outage
    callbacks = listen_for_callbacks(sender, receivers)
    smtp.rcpt_replies["nobody@example.md"] = "550 5.1.1 No such user"
    sent_id, failed_id = send(
        client, sender, email_notification("ion@example.md", "nobody@example.md")
    )
    server.stop()
    for message_id in (sent_id, failed_id):  # the jobs a worker took before the outage
        deliver(message_id)

    assert message(sent_id).state == MessageState.SENT
    assert message(failed_id).state == MessageState.FAILED
    owed = {(str(c.message_id), c.state, c.failure_reason) for c in Callback.select()}
    assert owed == {(sent_id, "sent", None), (failed_id, "failed", "INVALID_DESTINATION")}
    assert "callbacks wait for the replay job" in caplog.text

    server.start()
    later = utcnow() + timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1)
    with running_worker(own_broker) as worker:
        jobs.replay(now=later)
        callbacks.wait_for(2)
        drain(own_broker, worker, queue="callbacks")
        jobs.replay(now=later + timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1))
        drain(own_broker, worker, queue="callbacks")

    told = sorted((r.json()["messageId"], r.json()["state"]) for r in callbacks.verified)
    assert told == sorted([(sent_id, "sent"), (failed_id, "failed")])
    assert len(callbacks.requests) == 2
    assert Callback.select().count() == 0


def test_a_callback_whose_job_was_lost_is_sent_by_the_replay_job(
    client, sender, receivers, allow_private, smtp, queues, db
):
    callbacks = listen_for_callbacks(sender, receivers)
    (message_id,) = send(client, sender, email_notification())
    deliver(message_id)
    queues.flush_all()  # the callback job is lost with the broker's data
    assert Callback.select().count() == 1

    assert jobs.replay(now=utcnow()) == 0  # not overdue yet: nothing is re-enqueued
    assert queues.client.llen("dramatiq:callbacks") == 0
    with running_worker(queues) as worker:
        jobs.replay(now=utcnow() + timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1))
        (request,) = callbacks.wait_for(1)
        drain(queues, worker, queue="callbacks")

    assert (request.json()["messageId"], request.json()["state"]) == (message_id, "sent")
    assert len(callbacks.requests) == 1
    assert Callback.select().count() == 0


def test_a_duplicated_callback_job_posts_once(
    client, sender, receivers, allow_private, smtp, queues, db
):
    callbacks = listen_for_callbacks(sender, receivers)
    (message_id,) = send(client, sender, email_notification())
    deliver(message_id)
    (owed,) = Callback.select()
    callback_actor.send(str(owed.id))  # a second job for the same callback

    with running_worker(queues, threads=4) as worker:
        callbacks.wait_for(1)
        drain(queues, worker, queue="callbacks")

    assert len(callbacks.requests) == 1


def test_an_expiry_callback_owed_while_the_broker_is_down_is_sent_by_the_replay_job(
    client, sender, receivers, allow_private, broker_outage
):
    server, own_broker = broker_outage
    callbacks = listen_for_callbacks(sender, receivers)
    server.stop()
    valid_till = utcnow() + timedelta(hours=1)
    (message_id,) = send(client, sender, email_notification(validTill=valid_till.isoformat()))

    assert jobs.expire_lapsed(valid_till)["push_expired"] == 1
    assert [(c.state, c.failure_reason) for c in Callback.select()] == [("failed", "EXPIRED")]

    server.start()
    with running_worker(own_broker) as worker:
        jobs.replay(now=valid_till + timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1))
        (request,) = callbacks.wait_for(1)
        drain(own_broker, worker, queue="callbacks")

    assert request.json()["messageId"] == message_id
    assert (request.json()["state"], request.json()["failureReason"]) == ("failed", "EXPIRED")
    assert Callback.select().count() == 0

"""The accept path under concurrency: requests of one web process share their commits
(``models.db.group_commit``) and each still gets its own notification, committed before its
message is enqueued; one Idempotency-Key used by many requests at once makes one notification
and one message."""

from __future__ import annotations

import threading

from models.message import Message
from models.notification import Notification
from tests.factories import email_notification

THREADS = 8


def post_together(app, make_request, times: int = 1) -> list:
    """``make_request(client, thread number, round)`` from THREADS threads released at once;
    the responses (status, JSON)."""
    barrier = threading.Barrier(THREADS)
    answers: list = []
    lock = threading.Lock()

    def run(number: int) -> None:
        client = app.test_client()
        barrier.wait(timeout=30)
        for round_ in range(times):
            response = make_request(client, number, round_)
            with lock:
                answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=run, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return answers


def test_concurrent_requests_each_get_their_own_committed_and_enqueued_message(app, sender, queues):
    def submit(client, number, round_):
        body = email_notification(f"p{number}-{round_}@example.md")
        return client.post("/v1/notifications", json=body, headers=sender.headers)

    answers = post_together(app, submit, times=5)

    assert {status for status, _ in answers} == {202}
    ids = {body["id"] for _, body in answers}
    assert len(ids) == len(answers) == THREADS * 5
    stored = {str(n.id) for n in Notification.select()}
    assert stored == ids
    destinations = {m.destination for m in Message.select()}
    assert destinations == {f"p{n}-{r}@example.md" for n in range(THREADS) for r in range(5)}
    assert queues.client.llen("dramatiq:email") == THREADS * 5


def test_one_key_used_by_concurrent_requests_makes_one_notification(app, sender, queues):
    body = email_notification("ion@example.md")
    headers = sender.headers | {"Idempotency-Key": "order-7"}

    answers = post_together(
        app, lambda client, *_: client.post("/v1/notifications", json=body, headers=headers)
    )

    assert {status for status, _ in answers} == {202}
    assert len({body["id"] for _, body in answers}) == 1
    assert Notification.select().count() == 1
    assert Message.select().count() == 1
    assert queues.client.llen("dramatiq:email") == 1

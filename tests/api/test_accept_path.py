"""The accept path under concurrency: requests of one web process share their commits
(``models.db.group_commit``) and each still gets its own notification, committed before its
message is enqueued; one Idempotency-Key used by many requests at once makes one notification
and one message."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta
from uuid import UUID

import pytest
from flask import g

from api.notification_schemas import NotificationSchema, notification_json, with_related
from models.base import utcnow
from models.idempotency import IdempotencyRecord
from models.message import Message
from models.notification import Notification
from models.preference import ADDRESS, address_subject, opt_out
from tasks.fanout import fanout
from tests.factories import email_notification, idnp, make_sender, visit_reminder
from tests.support import counted_statements
from tests.tasks.test_fanout import person

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


# --- the accepted notification's JSON is the schema's dump -----------------------------------
PDF = base64.b64encode(b"%PDF-1.4 herald").decode()


def accepted_bodies() -> list[dict]:
    """Bodies of every shape the accept path answers: direct recipients of several channels,
    a registry address (masked without contacts:read), opt-outs failed or bypassed, every
    optional field, a template, a schedule, attachments, an IDNP fan-out."""
    person(1, ("email", "registry@example.md"))
    opt_out(address_subject("email", "gone@example.md"), "email", kind=ADDRESS)
    later = (utcnow() + timedelta(days=2)).isoformat()
    everything = {
        "recipients": [
            {"type": "email", "value": "ion@example.md", "language": "ru"},
            {"type": "email", "value": "registry@example.md"},
            {"type": "email", "value": "gone@example.md"},
            {"type": "user", "value": "u-2", "attributes": {"flat": 3}},
            {"type": "user", "value": "u-1"},
        ],
        "message": {
            "subject": "S",
            "body": "B",
            "html": "<p>B</p>",
            "actionUrl": "https://example.md/permit/7",
            "data": {"permit": 7, "tags": ["a"]},
        },
        "serviceName": "permits",
        "event": "permit.issued",
        "targetId": "p-7",
        "targetType": "permit",
        "reference": "ref-7",
        "urgent": True,
        "requireAction": True,
        "validTill": (utcnow() + timedelta(days=9)).isoformat(),
        "language": "ro",
    }
    template = {
        "recipients": [{"type": "email", "value": "ion@example.md"}],
        "template": "visit-reminder",
        "attributes": {"visitDate": "2026-12-01T09:00:00+02:00"},
    }
    return [
        email_notification(),
        everything,
        everything | {"critical": True},
        email_notification("a@example.md", "b@example.md", sendAt=later),
        template,
        {
            "recipients": [{"type": "email", "value": "ion@example.md"}],
            "message": {
                "subject": "S",
                "body": "B",
                "attachments": [
                    {"filename": "a.pdf", "contentType": "application/pdf", "content": PDF}
                ],
            },
        },
        {
            "recipients": [{"type": "idnp", "value": idnp(1)}],
            "message": {"subject": "S", "body": "B"},
        },
    ]


def dumped_both_ways(app, sender, notification) -> dict:
    """The schema's dump of ``notification`` for ``sender``, once checked equal to
    :func:`notification_json`'s."""
    with app.test_request_context():
        g.sender = sender
        dumped = NotificationSchema().dump(notification)
        assert notification_json(notification) == dumped
    return dumped


@pytest.mark.parametrize("grants", [(), ("contacts:read", "send_critical")])
def test_the_accepted_notification_is_the_schema_s_dump(app, client, queues, grants):
    posting = make_sender("poster", permissions=grants)
    created = client.post("/v1/templates", json=visit_reminder(), headers=posting.headers)
    assert created.status_code == 201
    accepted = []
    for body in accepted_bodies():
        if body.get("critical") and not grants:
            continue
        response = client.post("/v1/notifications", json=body, headers=posting.headers)
        assert response.status_code == 202, response.get_json()
        answered = response.get_json()
        notification = Notification.get_by_id(answered["id"])
        by_id = {m.id: m for m in Message.select().where(Message.notification == notification)}
        notification.__dict__["message_list"] = [by_id[UUID(m["id"])] for m in answered["messages"]]
        assert answered == dumped_both_ways(app, posting.sender, notification)
        accepted.append(notification.id)

    # Beyond the accept path: registry addresses (masked without contacts:read), and
    # destinations past retention.
    fanout(str(accepted[-1]))
    notifications = list(Notification.select().where(Notification.id.in_(accepted)))
    with_related(notifications)
    shown = [dumped_both_ways(app, posting.sender, n) for n in notifications]
    destinations = {m["destination"] for n in shown for m in n["messages"]}
    assert ("r***@example.md" in destinations) == (not grants)
    for notification in notifications:
        for message in notification.__dict__["message_list"]:
            message.updated_at -= timedelta(days=10 * 365)
        dumped_both_ways(app, posting.sender, notification)


def test_a_keyed_request_keeps_its_response_in_its_notification_s_transaction(client, sender, db):
    with counted_statements(db) as statements:
        response = client.post(
            "/v1/notifications",
            json=email_notification(),
            headers=sender.headers | {"Idempotency-Key": "order-8"},
        )

    assert response.status_code == 202
    table = IdempotencyRecord._meta.table_name
    assert not [s for s in statements if s.lstrip().startswith("UPDATE") and table in s]
    record = IdempotencyRecord.get(IdempotencyRecord.key == "order-8")
    assert (record.status_code, record.response) == (202, response.get_json())

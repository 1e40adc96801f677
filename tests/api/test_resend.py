"""POST /v1/messages {"action": "resend"}: failed messages back to the queue, all or none."""

from datetime import timedelta

from models.base import utcnow
from models.message import Attempt, Message
from scheduler.jobs import purge, replay
from settings import settings
from tasks.fanout import NO_CHANNEL, fanout
from tests.factories import email_notification, idnp, make_sender, message, stored_message
from tests.support import drain, running_worker, settled, wait_until

RESEND = "resend_failed"


def resend(client, who, identifiers):
    body = {"action": "resend", "identifiers": identifiers}
    return client.post("/v1/messages", json=body, headers=who.headers)


def test_a_failed_email_is_resent_through_a_real_worker(client, smtp, worker):
    resender = make_sender("lender", permissions=[RESEND])
    smtp.data_replies = ["552 5.3.4 Message too big"]
    posted = client.post("/v1/notifications", json=email_notification(), headers=resender.headers)
    message_id = posted.get_json()["messages"][0]["id"]
    wait_until(settled(message_id, "failed"))
    assert message(message_id).failure_reason == "REJECTED_BY_PROVIDER"

    response = resend(client, resender, [message_id])

    assert response.status_code == 200
    assert response.get_json() == {
        "returnCode": 200,
        "returnStatus": "SUCCESS",
        "resent": 1,
        "queued": 1,
    }
    wait_until(settled(message_id, "sent"))
    sent = message(message_id)
    assert sent.failure_reason is None
    assert sent.attempts == 2
    attempts = Attempt.select().where(Attempt.message == message_id).order_by(Attempt.number)
    assert [(a.number, a.outcome) for a in attempts] == [(1, "permanent"), (2, "sent")]
    assert (sent.subject, sent.body) == ("Programare confirmată", "Vă așteptăm luni la ora 9:00.")
    assert len(smtp.received) == 1


def test_resend_needs_the_permission(client, sender):
    failed = stored_message(sender.sender, state="failed")
    response = resend(client, sender, [str(failed.id)])
    assert response.status_code == 403
    assert message(failed.id).state == "failed"


def test_any_bad_identifier_refuses_the_whole_request(client, other_sender):
    resender = make_sender("lender", permissions=[RESEND])
    failed = stored_message(resender.sender, state="failed", failure_reason="DEAD_ADDRESS")
    sent = stored_message(resender.sender, state="sent")
    theirs = stored_message(other_sender.sender, state="failed")
    identifiers = [
        str(failed.id),
        str(failed.id),
        str(sent.id),
        str(theirs.id),
        "01a205c0-2cad-77b8-9d6c-5d1f7133d763",
        "not-an-id",
    ]

    response = resend(client, resender, identifiers)

    assert response.status_code == 400
    assert response.get_json()["errors"]["identifiers"] == {
        "1": ["Duplicate of identifiers[0]."],
        "2": ["Not failed: sent."],
        "3": ["No such message."],
        "4": ["No such message."],
        "5": ["No such message."],
    }
    assert message(failed.id).state == "failed"
    assert message(failed.id).failure_reason == "DEAD_ADDRESS"


def test_resend_puts_messages_back_to_queued_keeping_attempts(client, queues):
    resender = make_sender("lender", permissions=[RESEND])
    failed = [stored_message(resender.sender, state="failed", attempts=3) for _ in range(2)]

    response = resend(client, resender, [str(m.id) for m in failed])

    assert (response.get_json()["resent"], response.get_json()["queued"]) == (2, 2)
    for row in failed:
        assert (message(row.id).state, message(row.id).attempts) == ("queued", 3)
    assert queues.client.llen("dramatiq:email") == 2
    assert resend(client, resender, [str(failed[0].id)]).status_code == 400


def test_an_admin_may_resend_any_senders_failed_message(client, sender, admin):
    failed = stored_message(sender.sender, state="failed")
    assert resend(client, admin, [str(failed.id)]).status_code == 200
    assert message(failed.id).state == "queued"


def test_malformed_resend_requests_are_400(client):
    resender = make_sender("lender", permissions=[RESEND])
    for body in (
        {"action": "delete", "identifiers": ["x"]},
        {"action": "resend", "identifiers": []},
        {"action": "resend"},
        {"action": "resend", "identifiers": ["x"] * 1001},
        {"action": "resend", "identifiers": ["x"], "colour": "red"},
    ):
        response = client.post("/v1/messages", json=body, headers=resender.headers)
        assert response.status_code == 400, body


def refused(response) -> dict:
    assert response.status_code == 400, response.get_json()
    return response.get_json()["errors"]["identifiers"]


def test_a_person_with_no_channel_cannot_be_resent_to(client, queues):
    resender = make_sender("lender", permissions=[RESEND])
    failed = stored_message(resender.sender, state="failed", failure_reason="DEAD_ADDRESS")
    unknown = {"recipients": [{"type": "idnp", "value": idnp(77)}], "channels": ["email"]}
    posted = client.post(
        "/v1/notifications",
        json={**unknown, "message": {"subject": "Anunț", "body": "Apa se oprește mâine."}},
        headers=resender.headers,
    )
    assert posted.status_code == 202, posted.get_json()
    fanout(posted.get_json()["id"])
    [nowhere] = Message.select().where(Message.notification == posted.get_json()["id"])
    assert (nowhere.channel, nowhere.failure_reason) == (NO_CHANNEL, "NO_ACTIVE_CHANNEL")

    response = resend(client, resender, [str(failed.id), str(nowhere.id)])

    assert refused(response) == {"1": ["Cannot be sent: Herald has no channel 'none'."]}
    assert (message(nowhere.id).state, message(nowhere.id).failure_reason) == (
        "failed",
        "NO_ACTIVE_CHANNEL",
    )
    assert message(failed.id).state == "failed"
    assert queues.client.llen("dramatiq:email") == 0


def test_purged_or_deleted_messages_cannot_be_resent(client, queues):
    resender = make_sender("lender", permissions=[RESEND])
    past_retention = utcnow() - timedelta(days=settings.MESSAGE_RETENTION_DAYS + 1)
    old = stored_message(resender.sender, state="failed", created_at=past_retention)
    deleted, kept = (stored_message(resender.sender, state="failed") for _ in range(2))
    assert purge(utcnow())["notifications"] == 1
    gone = client.delete(f"/v1/notifications/{deleted.notification_id}", headers=resender.headers)
    assert gone.status_code == 204

    response = resend(client, resender, [str(kept.id), str(old.id), str(deleted.id)])

    assert refused(response) == {
        "1": ["Cannot be sent: purged after retention (its content and destination are gone)."],
        "2": ["Cannot be sent: its notification was deleted."],
    }
    assert [message(m.id).state for m in (kept, old, deleted)] == ["failed"] * 3
    assert queues.client.llen("dramatiq:email") == 0


def test_resend_while_the_broker_is_down_says_so_and_replay_sends_later(
    client, smtp, broker_outage
):
    server, own_broker = broker_outage
    resender = make_sender("lender", permissions=[RESEND])
    smtp.data_replies = ["552 5.3.4 Message too big"] * 2
    body = email_notification("ion@example.md", "ana@example.md")
    posted = client.post("/v1/notifications", json=body, headers=resender.headers)
    ids = [m["id"] for m in posted.get_json()["messages"]]
    with running_worker(own_broker) as worker:
        for message_id in ids:
            wait_until(settled(message_id, "failed"))
        drain(own_broker, worker)
    server.stop()

    response = resend(client, resender, ids)

    assert response.status_code == 200
    assert response.get_json() == {
        "returnCode": 200,
        "returnStatus": "SUCCESS",
        "resent": 0,
        "queued": 2,
    }
    assert [message(i).state for i in ids] == ["queued", "queued"]
    server.start()
    overdue = utcnow() - timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1)
    Message.update(due_at=overdue).where(Message.id.in_(ids)).execute()  # time passes
    assert replay(utcnow()) == 2
    with running_worker(own_broker):
        for message_id in ids:
            wait_until(settled(message_id, "sent"))
    assert sorted(mail.rcpt_tos[0] for mail in smtp.received) == [
        "ana@example.md",
        "ion@example.md",
    ]

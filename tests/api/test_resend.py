"""POST /v1/messages {"action": "resend"}: failed messages back to the queue, all or none."""

from models.message import Attempt
from tests.factories import email_notification, make_sender, message, stored_message
from tests.support import settled, wait_until

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
    assert response.get_json() == {"returnCode": 200, "returnStatus": "SUCCESS", "resent": 1}
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

    assert response.get_json()["resent"] == 2
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

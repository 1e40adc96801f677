"""The Hackney dialect once a real worker has delivered: GOV.UK Notify's message status for the
email (SMTP server), SMS (Twilio-shaped gateway) and letter (PDF) of one notification, Herald's
states and failure reasons in Notify's words, privacy masking, and retention (``null`` content
after the purge, the message status 404)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.compat.hackney_views import notify_status
from models.base import utcnow
from models.message import Message
from models.notification import Notification
from models.states import FailureReason, MessageState
from scheduler.jobs import purge
from settings import settings
from tasks.fanout import fanout
from tests.api.test_compat_hackney import (
    ADDRESS,
    BASE,
    NOTIFY_TIME,
    STATUS_KEYS,
    assert_item_shape,
    created,
    listed,
    make_template,
    seed_post,
)
from tests.factories import idnp, make_sender
from tests.support import wait_until

FINAL_OR_INBOX = ("sent", "delivered", "failed", "unread")


@pytest.fixture
def delivering(monkeypatch, smtp, twilio, worker):
    """A worker with email, SMS and letters configured; UK numbers."""
    monkeypatch.setattr(settings, "SMS_DEFAULT_REGION", "GB")
    return smtp


def status(client, who, message_id, service="housing"):
    return client.get(f"{BASE}/message-status/{service}/{message_id}", headers=who.headers)


def delivered_item(client, who, body) -> dict:
    """POST the notification, wait until the worker has finished each of its messages, and
    answer its listing item."""
    item = created(client, who, body)
    rows = Message.select().where(Message.notification == item["id"])
    wait_until(lambda: all(m.state in FINAL_OR_INBOX for m in rows.clone()), timeout=30)
    [again] = [i for i in listed(client, who) if i["id"] == item["id"]]
    return again


def test_message_status_follows_each_channel_as_notify_shows_it(client, sender, delivering, twilio):
    template = make_template(client, sender)
    body = seed_post(
        requireEmailNotification=True,
        requireSmsNotification=True,
        requireLetter=True,
        personalisationParams=ADDRESS,
    )
    item = delivered_item(client, sender, body)
    sent = {m["type"]: m for m in item["sentMessageDetails"]}
    assert {kind: m["status"] for kind, m in sent.items()} == {
        "email": "delivered",
        "sms": "sending",  # sent; the gateway reports delivery later
        "letter": "delivered",
    }

    email = status(client, sender, sent["email"]["id"]).get_json()
    assert set(email) == STATUS_KEYS
    assert (email["id"], email["type"], email["status"]) == (
        sent["email"]["id"],
        "email",
        "delivered",
    )
    assert email["emailAddress"] == "test@example.com"
    assert email["subject"] == "Missed payments"
    assert email["body"] == "Dear Joe Bloggs, 3 payments were missed."
    assert NOTIFY_TIME.match(email["sentAt"]) and NOTIFY_TIME.match(email["completedAt"])
    assert email["phoneNumber"] is None and email["line1"] is None
    assert (email["postage"], email["reference"], email["createdByName"]) == (None, None, None)
    assert email["template"]["id"] == template and email["template"]["version"] == 1
    assert email["template"]["path"].endswith(f"/v1/templates/{template}/versions/1")
    assert client.get(email["template"]["path"], headers=sender.headers).status_code == 200
    assert [mail.rcpt_tos for mail in delivering.received] == [["test@example.com"]]

    sms = status(client, sender, sent["sms"]["id"]).get_json()
    assert (sms["type"], sms["status"], sms["phoneNumber"]) == ("sms", "sending", "+441234567890")
    assert sms["completedAt"] is None and NOTIFY_TIME.match(sms["sentAt"])
    assert sms["body"] == "Dear Joe, 3 payments were missed."
    assert len(twilio.arrivals) == 1

    letter = status(client, sender, sent["letter"]["id"]).get_json()
    assert (letter["type"], letter["status"]) == ("letter", "delivered")
    lines = [letter[f"line{number}"] for number in range(1, 7)]
    assert lines == [*ADDRESS.values(), None, None]
    assert letter["emailAddress"] is None and letter["phoneNumber"] is None


def test_a_delivery_receipt_reads_delivered(client, sender, delivering):
    make_template(client, sender)
    item = delivered_item(client, sender, seed_post(notificationType="Text"))
    [sms] = item["sentMessageDetails"]
    # Herald has no receipt endpoint to drive here; the row moves as a receipt would move it.
    Message.update(state=MessageState.DELIVERED, delivered_at=utcnow()).where(
        Message.id == sms["id"]
    ).execute()

    answer = status(client, sender, sms["id"]).get_json()
    assert (answer["status"], NOTIFY_TIME.match(answer["completedAt"]) is not None) == (
        "delivered",
        True,
    )


def test_a_refused_address_is_a_permanent_failure(client, sender, delivering):
    make_template(client, sender)
    delivering.rcpt_replies["gone@example.com"] = "550 5.1.1 No such user"
    item = delivered_item(
        client, sender, seed_post(notificationType="Email", email="gone@example.com")
    )

    [email] = item["sentMessageDetails"]
    answer = status(client, sender, email["id"]).get_json()
    assert answer["status"] == email["status"] == "permanent-failure"
    assert NOTIFY_TIME.match(answer["completedAt"])


@pytest.mark.parametrize(
    ("channel", "state", "reason", "expected"),
    [
        ("email", "scheduled", None, "created"),
        ("email", "queued", None, "created"),
        ("email", "held", None, "created"),
        ("email", "sending", None, "sending"),
        ("email", "retrying", None, "sending"),
        ("email", "sent", None, "delivered"),
        ("letter", "sent", None, "delivered"),
        ("sms", "sent", None, "sending"),
        ("sms", "delivered", None, "delivered"),
        ("email", "cancelled", None, "cancelled"),
        *[
            ("sms", "failed", reason, "permanent-failure")
            for reason in (
                FailureReason.INVALID_DESTINATION,
                FailureReason.DEAD_ADDRESS,
                FailureReason.REJECTED_BY_PROVIDER,
                FailureReason.UNSUBSCRIBED,
                FailureReason.NO_ACTIVE_CHANNEL,
            )
        ],
        ("sms", "failed", FailureReason.RETRIES_EXHAUSTED, "temporary-failure"),
        ("sms", "failed", FailureReason.THROTTLED, "temporary-failure"),
        ("sms", "failed", FailureReason.TEMPLATE_ERROR, "technical-failure"),
        ("sms", "failed", FailureReason.EXPIRED, "technical-failure"),
        ("sms", "failed", None, "technical-failure"),
    ],
)
def test_herald_states_in_notify_words(channel, state, reason, expected):
    message = Message(channel=channel, state=state, failure_reason=reason)
    assert notify_status(message) == expected


def test_screen_messages_and_unknown_ids_have_no_notify_status(client, sender):
    item = created(client, sender, {"notificationType": "Screen", "user": "u", "message": "m"})
    inapp = Message.get(Message.notification == item["id"])
    assert status(client, sender, inapp.id).status_code == 404
    assert status(client, sender, item["id"]).status_code == 404  # a notification id is not one
    assert status(client, sender, "not-a-guid").status_code == 404
    assert status(client, sender, inapp.id, service="x" * 101).status_code == 404


def test_after_retention_the_person_is_gone_and_the_status_is_404(client, sender, delivering):
    make_template(client, sender)
    item = delivered_item(client, sender, seed_post(requireEmailNotification=True))
    client.patch(
        f"{BASE}/notifications/{item['id']}",
        json={
            "id": item["id"],
            "actionType": "Approved",
            "actionNote": "Joe Bloggs phoned",
            "performedActionDoneBy": "officer@hackney.gov.uk",
        },
        headers=sender.headers,
    )
    [email] = item["sentMessageDetails"]
    assert status(client, sender, email["id"]).status_code == 200
    long_ago = utcnow() - timedelta(days=settings.MESSAGE_RETENTION_DAYS + 1)
    Notification.update(created_at=long_ago).where(Notification.id == item["id"]).execute()
    Message.update(updated_at=long_ago).where(Message.notification == item["id"]).execute()

    assert purge()["notifications"] == 1

    [after] = listed(client, sender)
    assert_item_shape(after)
    for erased in (
        "user",
        "message",
        "email",
        "personalisationParams",
        "actionNote",
        "performedActionDoneBy",
    ):
        assert after[erased] is None, erased
    assert after["performedActionType"] == "Approved"  # what was done stays, not who
    assert after["targetId"] == item["targetId"]
    assert status(client, sender, email["id"]).status_code == 404


def test_addresses_from_the_registry_are_masked_without_contacts_read(client, sender, db):
    """A sender that reaches a person by IDNP on /v1 sees, through Hackney's listing and
    message status, the address Herald found only masked."""
    keeper = make_sender("registry", permissions=["contacts:read", "contacts:write"])
    person = idnp(4242)
    contact = {
        "idnp": person,
        "name": "Joe Bloggs",
        "preferredLanguage": "ro",
        "channels": [{"type": "email", "address": "joe.bloggs@example.com", "priority": 10}],
    }
    assert client.post("/v1/contacts", json=contact, headers=keeper.headers).status_code == 201
    body = {
        "recipients": [{"type": "idnp", "value": person}],
        "message": {"subject": "Rent", "body": "Your rent statement is ready."},
        "targetId": "tenancy-1",
        "channels": ["email"],
    }
    posted = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert posted.status_code == 202, posted.get_json()
    fanout(posted.get_json()["id"])

    [item] = listed(client, sender, notificationType="Email", targetId="tenancy-1")
    assert item["email"] == "j***@example.com"
    [email] = item["sentMessageDetails"]
    assert status(client, sender, email["id"]).get_json()["emailAddress"] == "j***@example.com"
    admin = make_sender("admin", admin=True)
    assert status(client, admin, email["id"]).get_json()["emailAddress"] == "joe.bloggs@example.com"

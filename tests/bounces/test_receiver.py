"""Email bounces end to end: an email sent by a real worker to the SMTP server carries its VERP
return path as envelope sender; a delivery report sent over SMTP to the real bounce receiver
fails the message (or records a delay), owes the sender its callback and switches the person's
address off; everything else the receiver takes changes nothing. On both databases."""

import smtplib
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from channels.return_path import token_for
from models.callback import Callback
from models.contact import ContactChannel, upsert_contacts
from models.message import Message
from models.sender import Sender
from models.states import FailureReason, MessageState
from scheduler.jobs import purge
from settings import settings
from tests.bounces.conftest import DOMAIN, deliver_report, dsn
from tests.factories import email_notification, idnp, message
from tests.fakes.receiver import SignedReceiver
from tests.support import settled, wait_until

ION = idnp(7)


def bounces(outcome: str) -> float:
    return REGISTRY.get_sample_value("herald_bounces_total", {"outcome": outcome}) or 0.0


@pytest.fixture
def callbacks(sender, monkeypatch):
    """The sender's callback receiver, checking Herald's signature (on 127.0.0.1, which
    production settings refuse)."""
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    receiver = SignedReceiver(sender.sender.callback_secret).start()
    Sender.update(callback_url=f"{receiver.url}/cb").where(Sender.id == sender.sender.id).execute()
    yield receiver
    receiver.stop()


def sent_to_ion(client, sender, smtp) -> tuple[Message, str]:
    """An email to Ion (by IDNP, so his address is the registry's), sent by the worker: the
    message, and the envelope sender the SMTP server saw."""
    upsert_contacts(
        [{"idnp": ION, "name": "Ion", "channels": [{"type": "email", "address": "ion@example.md"}]}]
    )
    body = {
        "recipients": [{"type": "idnp", "value": ION}],
        "channels": ["email"],
        "message": {"subject": "Programare", "body": "Vă așteptăm luni."},
    }
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    (mail,) = smtp.wait_for(1)
    email = wait_until(lambda: Message.get_or_none(Message.channel == "email"))
    wait_until(settled(email.id, MessageState.SENT))
    return message(email.id), mail.mail_from


def ion_address() -> ContactChannel:
    return ContactChannel.get(ContactChannel.address == "ion@example.md")


def test_a_hard_bounce_fails_the_sent_email_tells_the_sender_and_switches_the_address_off(
    client, sender, smtp, worker, receiver, callbacks
):
    email, envelope_sender = sent_to_ion(client, sender, smtp)
    assert envelope_sender == f"bounces+{token_for(email.id)}@{DOMAIN}"
    callbacks.wait_for(1)  # "sent"
    before = bounces("failed")

    deliver_report(receiver, envelope_sender, dsn(envelope_sender))

    wait_until(settled(email.id, MessageState.FAILED))
    failed = message(email.id)
    assert failed.failure_reason == FailureReason.DEAD_ADDRESS
    assert failed.last_error.startswith("5.1.1 smtp; 550 5.1.1 <ion@example.md>: Recipient")
    assert failed.sent_at == email.sent_at
    assert ion_address().active is False
    assert "5.1.1" in ion_address().deactivated_reason
    wait_until(lambda: len(callbacks.verified) == 2)
    told = callbacks.verified[1].json()
    assert (told["messageId"], told["state"], told["failureReason"]) == (
        str(email.id),
        "failed",
        "DEAD_ADDRESS",
    )
    assert told["destination"] != "ion@example.md"  # the registry's address, masked
    assert bounces("failed") == before + 1

    # The API shows the failure, with the address masked in the error too.
    shown = client.get(f"/v1/messages/{email.id}", headers=sender.headers).get_json()
    assert (shown["state"], shown["failureReason"]) == ("failed", "DEAD_ADDRESS")
    assert "ion@example.md" not in shown["lastError"]


def test_another_permanent_failure_is_rejected_by_provider(client, sender, smtp, worker, receiver):
    email, envelope_sender = sent_to_ion(client, sender, smtp)
    report = dsn(envelope_sender, status="5.7.1", diagnostic="smtp; 550 5.7.1 Rejected as spam")

    deliver_report(receiver, envelope_sender.upper(), report)  # an MTA that uppercased it

    wait_until(settled(email.id, MessageState.FAILED))
    assert message(email.id).failure_reason == FailureReason.REJECTED_BY_PROVIDER
    assert message(email.id).last_error == "5.7.1 smtp; 550 5.7.1 Rejected as spam"
    assert ion_address().active is False


def test_a_delay_is_recorded_and_the_message_stays_sent(client, sender, smtp, worker, receiver):
    email, envelope_sender = sent_to_ion(client, sender, smtp)
    callbacks_before = Callback.select().count()
    before = bounces("transient")
    report = dsn(envelope_sender, "delayed", "4.2.2", "smtp; 452 4.2.2 Mailbox over quota")

    deliver_report(receiver, envelope_sender, report)

    wait_until(lambda: message(email.id).last_error)
    delayed = message(email.id)
    assert (delayed.state, delayed.last_error) == (
        "sent",
        "4.2.2 smtp; 452 4.2.2 Mailbox over quota",
    )
    assert delayed.failure_reason is None
    assert ion_address().active is True
    assert Callback.select().count() == callbacks_before
    assert bounces("transient") == before + 1


def test_a_duplicate_or_late_bounce_changes_nothing(client, sender, smtp, worker, receiver):
    email, envelope_sender = sent_to_ion(client, sender, smtp)
    deliver_report(receiver, envelope_sender, dsn(envelope_sender))
    wait_until(settled(email.id, MessageState.FAILED))
    failed = message(email.id)
    callbacks_owed = Callback.select().where(Callback.state == "failed").count()
    unchanged = bounces("unchanged")

    deliver_report(receiver, envelope_sender, dsn(envelope_sender))  # the same report again
    deliver_report(receiver, envelope_sender, dsn(envelope_sender, status="5.7.1"))
    deliver_report(receiver, envelope_sender, dsn(envelope_sender, "delayed", "4.4.1"))

    wait_until(lambda: bounces("unchanged") == unchanged + 2)
    after = message(email.id)
    assert (after.state, after.failure_reason, after.last_error, after.updated_at) == (
        failed.state,
        failed.failure_reason,
        failed.last_error,
        failed.updated_at,
    )
    assert Callback.select().where(Callback.state == "failed").count() == callbacks_owed


def test_a_forged_or_altered_token_is_taken_and_dropped(client, sender, smtp, worker, receiver):
    email, envelope_sender = sent_to_ion(client, sender, smtp)
    token = token_for(email.id)
    altered = token[:-1] + ("a" if token[-1] != "a" else "b")
    before = bounces("dropped_unknown_token")
    forged_secret = f"bounces+{token[:26]}{'a' * 14}@{DOMAIN}"  # the id, a made-up signature

    for address in (f"bounces+{altered}@{DOMAIN}", forged_secret):
        deliver_report(receiver, address, dsn(address))  # 250: no MTA retries it

    assert bounces("dropped_unknown_token") == before + 2
    assert message(email.id).state == MessageState.SENT
    assert ion_address().active is True


def test_mail_that_is_not_a_delivery_report_is_dropped(client, sender, smtp, worker, receiver):
    email, envelope_sender = sent_to_ion(client, sender, smtp)
    before = bounces("dropped_not_dsn")
    reply = (
        f"From: ion@example.md\r\nTo: {envelope_sender}\r\nSubject: Re: Programare\r\n\r\n"
        "Vin luni. Out of office: 5.1.1 user unknown\r\n"
    ).encode()

    deliver_report(receiver, envelope_sender, reply)

    assert bounces("dropped_not_dsn") == before + 1
    assert message(email.id).state == MessageState.SENT
    assert message(email.id).last_error is None


def test_a_bounce_for_a_message_purged_after_retention_finds_nothing(
    client, sender, smtp, worker, receiver
):
    email, envelope_sender = sent_to_ion(client, sender, smtp)
    final = message(email.id).updated_at
    retention = timedelta(days=settings.MESSAGE_RETENTION_DAYS)
    assert purge(final + retention + timedelta(seconds=1))["messages"] == 1
    before = bounces("dropped_unknown_token")

    deliver_report(receiver, envelope_sender, dsn(envelope_sender))

    assert bounces("dropped_unknown_token") == before + 1
    purged = message(email.id)
    assert (purged.state, purged.last_error, purged.failure_reason) == ("sent", None, None)
    assert Callback.select().where(Callback.state == "failed").count() == 0


def test_a_success_report_moves_the_email_to_delivered(client, sender, smtp, worker, receiver):
    email, envelope_sender = sent_to_ion(client, sender, smtp)

    deliver_report(
        receiver, envelope_sender, dsn(envelope_sender, "delivered", "2.0.0", diagnostic=None)
    )

    wait_until(settled(email.id, MessageState.DELIVERED))
    assert message(email.id).delivered_at is not None


def test_recipients_outside_the_return_paths_are_refused_at_rcpt(receiver, db):
    token = token_for("01900000-0000-7000-8000-000000000000")
    before = REGISTRY.get_sample_value("herald_bounces_refused_total", {"reason": "recipient"})
    with smtplib.SMTP(receiver.hostname, receiver.port, timeout=10) as client:
        client.ehlo("mx.example.md")
        client.mail("<>")
        for address in (
            f"postmaster@{DOMAIN}",
            f"bounces+{token}@other.example.md",
            f"bounces+short@{DOMAIN}",
            "ion@example.md",
        ):
            assert client.rcpt(address)[0] == 550, address
        assert client.rcpt(f"bounces+{token}@{DOMAIN}")[0] == 250
        assert client.rcpt(f"bounces+{token}@{DOMAIN}")[0] == 452  # one per transaction
    after = REGISTRY.get_sample_value("herald_bounces_refused_total", {"reason": "recipient"})
    assert after == before + 4


def test_an_oversize_report_is_refused_with_552(client, sender, smtp, worker, receiver):
    email, envelope_sender = sent_to_ion(client, sender, smtp)
    padding = b"\r\n" + b"The mail system said more than it should have.\r\n" * 1500
    oversize = dsn(envelope_sender).replace(b"recipients.\r\n", b"recipients." + padding)
    assert len(oversize) > 64 * 1024

    with pytest.raises(smtplib.SMTPSenderRefused) as declared:  # ESMTP: SIZE said up front
        deliver_report(receiver, envelope_sender, oversize)
    assert declared.value.smtp_code == 552
    with pytest.raises(smtplib.SMTPDataError) as sent:  # no SIZE: refused after DATA
        deliver_report(receiver, envelope_sender, oversize, helo=True)
    assert sent.value.smtp_code == 552

    assert message(email.id).state == MessageState.SENT
    assert ion_address().active is True


def test_without_a_bounce_domain_emails_go_from_the_from_address(client, sender, smtp, worker):
    response = client.post("/v1/notifications", json=email_notification(), headers=sender.headers)
    assert response.status_code == 202
    (mail,) = smtp.wait_for(1)
    assert mail.mail_from == "herald@localhost"  # MAIL_FROM's address, as before

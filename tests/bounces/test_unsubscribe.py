"""Unsubscribing by email: the ``mailto:`` of a sent email's ``List-Unsubscribe``, written to over
SMTP by a person's mail client, reaches the real bounce receiver, which turns email off for
the person and the email's service and counts it; a forged or altered token, or one whose
message retention purged, unsubscribes nobody (the link still does). On both databases."""

from __future__ import annotations

import re
import smtplib
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from prometheus_client import REGISTRY

from bounces.receiver import BounceReceiver
from channels.unsubscribe import mail_token
from models.contact import upsert_contacts
from models.message import Message
from models.preference import ADDRESS, Preference, opted_out, preferences_of
from models.states import MessageState
from scheduler.jobs import purge
from settings import settings
from tests.bounces.conftest import DOMAIN
from tests.factories import email_notification, idnp, message
from tests.support import settled, wait_until

ION = idnp(7)
MAILTO = re.compile(r"<mailto:([^>]+)>")
LINK = re.compile(r"<(https://[^>]+)>")


def unsubscribes(outcome: str) -> float:
    return REGISTRY.get_sample_value("herald_unsubscribes_total", {"outcome": outcome}) or 0.0


@pytest.fixture
def public(monkeypatch):
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", "https://herald.example.md")


def sent(client, sender, smtp, body: dict):
    """Submit ``body``; the message the worker sent and the mail the SMTP server received."""
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    (mail,) = smtp.wait_for(1, timeout=30)
    email = wait_until(lambda: Message.get_or_none(Message.channel == "email"))
    wait_until(settled(email.id, MessageState.SENT), timeout=30)
    return message(email.id), mail


def to_ion() -> dict:
    upsert_contacts(
        [{"idnp": ION, "name": "Ion", "channels": [{"type": "email", "address": "ion@example.md"}]}]
    )
    return {
        "recipients": [{"type": "idnp", "value": ION}],
        "channels": ["email"],
        "serviceName": "permits",
        "message": {"subject": "Autorizație", "body": "Autorizația dvs. este gata."},
    }


def write_to(receiver: BounceReceiver, to: str, sender: str = "ion@example.md") -> None:
    """Send a short mail to ``to`` over SMTP, as a mail client does for a ``mailto:``."""
    raw = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: unsubscribe\r\n\r\nPlease unsubscribe me.\r\n"
    ).encode()
    with smtplib.SMTP(receiver.hostname, receiver.port, timeout=10) as client:
        client.sendmail(sender, [to], raw)


def test_a_mail_to_the_mailto_address_unsubscribes_and_is_counted(
    client, sender, smtp, worker, receiver, public
):
    email, mail = sent(client, sender, smtp, to_ion())
    (address,) = MAILTO.findall(mail.email["List-Unsubscribe"])
    assert address == f"unsubscribe+{mail_token(email.id)}@{DOMAIN}"
    assert len(address.partition("@")[0]) <= 64  # a local part's limit (RFC 5321)
    before, unchanged = unsubscribes("unsubscribed"), unsubscribes("unchanged")

    write_to(receiver, address)

    assert preferences_of(ION) == {"channels": {}, "services": {"permits": {"email": False}}}
    assert opted_out([ION], "permits") == {ION: {"email"}}
    assert unsubscribes("unsubscribed") == before + 1
    write_to(receiver, address.upper())  # again, through an MTA that uppercased it
    assert unsubscribes("unchanged") == unchanged + 1
    assert Preference.select().count() == 1
    assert message(email.id).state == MessageState.SENT  # not a bounce


def test_a_direct_address_is_unsubscribed_by_mail(client, sender, smtp, worker, receiver, public):
    body = email_notification("maria@example.md", serviceName="permits")
    _email, mail = sent(client, sender, smtp, body)
    (address,) = MAILTO.findall(mail.email["List-Unsubscribe"])

    write_to(receiver, address, sender="maria@example.md")

    assert preferences_of("email:maria@example.md", ADDRESS)["services"] == {
        "permits": {"email": False}
    }


def test_a_forged_or_altered_token_unsubscribes_nobody(
    client, sender, smtp, worker, receiver, public
):
    email, _mail = sent(client, sender, smtp, to_ion())
    token = mail_token(email.id)
    altered = token[:-1] + ("a" if token[-1] != "a" else "b")
    forged = token[:26] + "a" * 14  # the message id, a made-up signature
    before = unsubscribes("dropped_unknown_token")

    for made_up in (altered, forged):
        write_to(receiver, f"unsubscribe+{made_up}@{DOMAIN}")  # 250: nobody is told why

    assert unsubscribes("dropped_unknown_token") == before + 2
    assert Preference.select().count() == 0


def test_another_address_at_the_domain_is_refused(receiver):
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        write_to(receiver, f"unsubscribe+nothing@{DOMAIN}")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        write_to(receiver, f"unsubscribe+{'a' * 40}@elsewhere.example.md")


def test_after_retention_the_mailto_finds_nobody_and_the_link_still_works(
    client, sender, smtp, worker, receiver, public
):
    email, mail = sent(client, sender, smtp, to_ion())
    (address,) = MAILTO.findall(mail.email["List-Unsubscribe"])
    (link,) = LINK.findall(mail.email["List-Unsubscribe"])
    retention = timedelta(days=settings.MESSAGE_RETENTION_DAYS)
    assert purge(message(email.id).updated_at + retention + timedelta(seconds=1))["messages"] == 1
    before = unsubscribes("dropped_unknown_token")

    write_to(receiver, address)

    assert unsubscribes("dropped_unknown_token") == before + 1
    assert Preference.select().count() == 0
    response = client.post(urlsplit(link).path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert opted_out([ION], "permits") == {ION: {"email"}}

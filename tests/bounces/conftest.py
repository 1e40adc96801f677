"""The bounce receiver's fixtures: emails sent with a return path at a bounce domain, the real
receiver on a free 127.0.0.1 port, and delivery reports shaped as MTAs write them."""

from __future__ import annotations

import smtplib
import textwrap

import pytest

from bounces.receiver import BounceReceiver
from dev.embedded_redis import free_port
from settings import settings

DOMAIN = "bounces.herald.example.md"
SECRET = "a-bounce-secret-of-at-least-32-characters"


@pytest.fixture
def bounce_domain(monkeypatch):
    """Emails go out with return paths at DOMAIN, signed with SECRET."""
    monkeypatch.setattr(settings, "BOUNCE_DOMAIN", DOMAIN)
    monkeypatch.setattr(settings, "BOUNCE_SECRET", SECRET)
    return DOMAIN


@pytest.fixture
def receiver(bounce_domain, db, monkeypatch):
    """The real bounce receiver (aiosmtpd) on a free port of 127.0.0.1, with a 64 KiB limit."""
    monkeypatch.setattr(settings, "BOUNCE_MAX_MESSAGE_BYTES", 64 * 1024)
    server = BounceReceiver("127.0.0.1", free_port())
    server.start()
    yield server
    server.stop()


def deliver_report(receiver: BounceReceiver, to: str, raw: bytes, helo: bool = False) -> None:
    """Send ``raw`` to ``to`` over SMTP from the null reverse path, as an MTA sends a DSN
    (``helo``: without ESMTP, so no SIZE is declared before DATA)."""
    with smtplib.SMTP(receiver.hostname, receiver.port, timeout=10) as client:
        if helo:
            client.helo("mx.example.md")
            client.mail("<>")
            client.rcpt(to)
            code, reply = client.data(raw)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        else:
            client.sendmail("<>", [to], raw)


def dsn(
    return_path: str,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str | None = "smtp; 550 5.1.1 <ion@example.md>: Recipient address rejected: "
    "User unknown in local recipient table",
    recipient: str = "ion@example.md",
) -> bytes:
    """A delivery status notification (RFC 3464) as Postfix writes one: a human-readable
    part, the message/delivery-status part (per-message fields, then the recipient's), and the
    returned message's headers."""
    diagnostic_line = f"Diagnostic-Code: {diagnostic}\n" if diagnostic else ""
    text = textwrap.dedent(
        """\
        Return-Path: <>
        Date: Mon,  3 Mar 2025 10:15:02 +0200 (EET)
        From: MAILER-DAEMON@mx.example.md (Mail Delivery System)
        Subject: Undelivered Mail Returned to Sender
        To: {return_path}
        Auto-Submitted: auto-replied
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status;
        \tboundary="4F1C2A0E3B.1740989702/mx.example.md"
        Message-Id: <20250303081502.7A1C83F0B2@mx.example.md>

        This is a MIME-encapsulated message.

        --4F1C2A0E3B.1740989702/mx.example.md
        Content-Description: Notification
        Content-Type: text/plain; charset=us-ascii

        This is the mail system at host mx.example.md.

        I'm sorry to have to inform you that your message could not
        be delivered to one or more recipients.

        --4F1C2A0E3B.1740989702/mx.example.md
        Content-Description: Delivery report
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.md
        X-Postfix-Queue-ID: 4F1C2A0E3B
        X-Postfix-Sender: rfc822; {return_path}
        Arrival-Date: Mon,  3 Mar 2025 10:15:01 +0200 (EET)

        Final-Recipient: rfc822; {recipient}
        Original-Recipient: rfc822;{recipient}
        Action: {action}
        Status: {status}
        Remote-MTA: dns; mail.example.md
        {diagnostic_line}
        --4F1C2A0E3B.1740989702/mx.example.md
        Content-Description: Undelivered Message Headers
        Content-Type: text/rfc822-headers

        From: Herald <herald@localhost>
        To: {recipient}
        Subject: Programare confirmata

        --4F1C2A0E3B.1740989702/mx.example.md--
        """
    ).format(
        return_path=return_path,
        action=action,
        status=status,
        recipient=recipient,
        diagnostic_line=diagnostic_line.rstrip("\n"),
    )
    return text.replace("\n", "\r\n").encode()

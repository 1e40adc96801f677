"""The email as it arrives at a real SMTP server: headers written directly or by the email
package, the MIME part shared by recipients of the same content, SMTPUTF8 for non-ASCII
addresses."""

import email
from email import policy
from email.utils import parsedate_to_datetime

import pytest

from channels.base import PermanentError, Rendered, TransientError
from channels.email import EmailChannel
from channels.email_mime import compose
from dev.mailcatcher import MailCatcher
from models.states import FailureReason
from settings import settings


@pytest.fixture
def channel():
    channel = EmailChannel()
    yield channel
    channel.close()


def parsed(mail):
    return email.message_from_bytes(mail.raw, policy=policy.default)


def content(part) -> str:
    """A text part's content, with the wire's CRLF line ends as newlines."""
    return part.get_content().replace("\r\n", "\n")


def test_headers_and_parts_read_back_as_sent(smtp, channel, monkeypatch):
    monkeypatch.setattr(settings, "MAIL_FROM", "Primăria Chișinău <noreply@primaria.md>")
    long_subject = "Programare confirmată pentru " + "serviciul de stare civilă " * 4
    rendered = Rendered(
        subject=long_subject,
        body="Vă așteptăm luni la ora 9:00.\n" + "x" * 200,
        html="<p>Vă așteptăm</p>",
        headers={"X-Herald-Message-Id": "0b9c5c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f"},
    )
    receipt = channel.send(rendered, "ion@example.md")

    (mail,) = smtp.wait_for(1)
    raw_head = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert raw_head.isascii()  # non-ASCII only as encoded words
    assert all(len(line) <= 78 for line in raw_head.split(b"\r\n"))
    message = parsed(mail)
    assert message["Subject"] == long_subject
    assert message["From"].addresses[0].display_name == "Primăria Chișinău"
    assert message["To"] == "ion@example.md"
    assert message["Message-ID"] == receipt.provider_id
    assert message["X-Herald-Message-Id"] == "0b9c5c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f"
    assert parsedate_to_datetime(message["Date"]).utcoffset().total_seconds() == 0
    assert mail.mail_from == "noreply@primaria.md"
    assert content(message.get_body(("plain",))) == rendered.body + "\n"
    assert content(message.get_body(("html",))) == "<p>Vă așteptăm</p>\n"


def test_recipients_of_one_content_share_the_part_not_the_headers(smtp, channel):
    rendered = Rendered(subject="Salut", body="Același text")
    first = channel.send(rendered, "a@example.md")
    second = channel.send(rendered, "b@example.md")

    mails = smtp.wait_for(2)
    assert [parsed(mail)["To"] for mail in mails] == ["a@example.md", "b@example.md"]
    assert first.provider_id != second.provider_id
    assert [content(parsed(mail)) for mail in mails] == ["Același text\n"] * 2
    changed = Rendered(subject="Salut", body="Alt text")
    channel.send(changed, "a@example.md")
    assert content(parsed(smtp.wait_for(3)[2])) == "Alt text\n"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Herald-Message-Id": "x\r\nBcc: victim@example.md"},
        {"Subject": "a second subject"},
    ],
)
def test_a_header_the_email_package_refuses_fails_the_message(smtp, channel, headers):
    rendered = Rendered(subject="Salut", body="Text", headers=headers)
    with pytest.raises(PermanentError) as raised:
        channel.send(rendered, "a@example.md")
    assert raised.value.reason == FailureReason.TEMPLATE_ERROR
    assert smtp.received == []


def test_a_subject_with_a_line_break_is_refused():
    with pytest.raises(PermanentError):
        compose(Rendered(subject="Salut\nBcc: victim@example.md", body="Text"), "a@example.md")


def test_a_non_ascii_address_goes_with_smtputf8(serve, channel):
    catcher = serve(MailCatcher(), enable_SMTPUTF8=True)
    channel.send(Rendered(subject="Salut", body="Text"), "ion@exămple.md")
    (mail,) = catcher.wait_for(1)
    assert mail.rcpt_tos == ["ion@exămple.md"]
    assert email.message_from_bytes(mail.raw, policy=policy.SMTPUTF8)["To"] == "ion@exămple.md"


def test_a_non_ascii_address_to_a_server_without_smtputf8_is_not_sent(serve, channel):
    catcher = serve(MailCatcher(), enable_SMTPUTF8=False)
    with pytest.raises(TransientError):
        channel.send(Rendered(subject="Salut", body="Text"), "ion@exămple.md")
    channel.send(Rendered(subject="Salut", body="Text"), "ion@example.md")
    assert [mail.rcpt_tos for mail in catcher.wait_for(1)] == [["ion@example.md"]]

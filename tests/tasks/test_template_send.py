"""Sending with a template: each recipient in their language, with their values, pinned to the
version current at acceptance, through a real worker to a real SMTP server."""

import pytest

from models.message import Message
from models.states import MessageState
from tests.factories import message, visit_reminder
from tests.support import wait_until

VISIT = "2026-12-01T09:00:00+02:00"


@pytest.fixture
def template(client, sender):
    response = client.post("/v1/templates", json=visit_reminder(), headers=sender.headers)
    assert response.status_code == 201
    return response.get_json()


def send(client, sender, **body):
    return client.post("/v1/notifications", json=body, headers=sender.headers)


def email(address, **extra):
    return {"type": "email", "value": address, **extra}


def test_each_recipient_gets_their_language_and_values(client, sender, template, smtp, worker):
    response = send(
        client,
        sender,
        template="visit-reminder",
        attributes={"visitDate": VISIT, "officerName": "Ana Rusu"},
        recipients=[
            email("ion@example.md"),
            email("ivan@example.md", language="ru"),
            email(
                "john@example.md",
                language="en",
                attributes={"visitDate": "2026-12-24T10:00:00+02:00"},
            ),
        ],
    )
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["template"] == {"id": template["id"], "code": "visit-reminder", "version": 1}
    assert [m["language"] for m in body["messages"]] == [None, "ru", "en"]

    mails = {mail.rcpt_tos[0]: mail.email for mail in smtp.wait_for(3)}
    assert mails["ion@example.md"]["Subject"] == "Vizită pe 1 decembrie 2026"
    assert "Ofițer: Ana Rusu." in mails["ion@example.md"].get_body(("plain",)).get_content()
    assert "<b>1 decembrie 2026</b>" in mails["ion@example.md"].get_body(("html",)).get_content()
    assert mails["ivan@example.md"]["Subject"] == "Визит 1 декабря 2026 г."
    assert mails["john@example.md"]["Subject"] == "Visit on December 24, 2026"


def test_attribute_values_are_escaped_in_html_bodies(client, sender, template, smtp, worker):
    send(
        client,
        sender,
        template="visit-reminder",
        attributes={"visitDate": VISIT, "officerName": '<img src=x onerror="alert(1)">'},
        recipients=[email("ion@example.md")],
    )
    (mail,) = smtp.wait_for(1)
    html = mail.email.get_body(("html",)).get_content()
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "<img" not in html


def test_a_template_edited_after_sending_does_not_change_what_was_sent(
    client, sender, template, smtp, queues
):
    from tests.support import running_worker

    accepted = send(
        client,
        sender,
        template="visit-reminder",
        attributes={"visitDate": VISIT},
        recipients=[email("ion@example.md", language="en")],
    )
    changed = visit_reminder()
    del changed["code"]
    changed["contents"][2]["subject"] = "CHANGED {{ visitDate }}"
    assert (
        client.put("/v1/templates/visit-reminder", json=changed, headers=sender.headers).status_code
        == 200
    )

    with running_worker(queues):
        (mail,) = smtp.wait_for(1)
    assert mail.email["Subject"] == "Visit on December 1, 2026"
    assert accepted.get_json()["template"]["version"] == 1


def test_missing_required_attributes_are_listed_per_recipient(client, sender, template):
    response = send(
        client,
        sender,
        template="visit-reminder",
        recipients=[
            email("a@example.md"),
            email("b@example.md", attributes={"visitDate": VISIT}),
            email("c@example.md"),
        ],
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "recipients": {
            "0": {"attributes": ["Missing required attributes: visitDate."]},
            "2": {"attributes": ["Missing required attributes: visitDate."]},
        }
    }
    assert Message.select().count() == 0


def test_unknown_template_and_template_plus_message(client, sender, template):
    unknown = send(client, sender, template="nope", recipients=[email("a@example.md")])
    both = send(
        client,
        sender,
        template="visit-reminder",
        message={"subject": "s", "body": "b"},
        recipients=[email("a@example.md")],
    )
    neither = send(client, sender, recipients=[email("a@example.md")])

    assert unknown.status_code == 400 and unknown.get_json()["errors"] == {
        "template": ["No such template."]
    }
    assert both.status_code == 400 and "template" in both.get_json()["errors"]
    assert neither.status_code == 400 and "message" in neither.get_json()["errors"]


def test_a_channel_without_content_is_named_at_accept_time(client, sender):
    body = visit_reminder(code="email-only")
    body["contents"] = [c for c in body["contents"] if c["channel"] == "email"]
    client.post("/v1/templates", json=body, headers=sender.headers)

    response = send(
        client,
        sender,
        template="email-only",
        attributes={"visitDate": VISIT},
        language="ru",
        recipients=[{"type": "user", "value": "u-1"}],
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "template": ["No content for channel 'inapp' in language 'ru'."]
    }


def test_another_senders_template_cannot_be_used(client, sender, other_sender, template):
    response = send(
        client,
        other_sender,
        template="visit-reminder",
        attributes={"visitDate": VISIT},
        recipients=[email("a@example.md")],
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"template": ["No such template."]}


def test_a_template_that_fails_to_render_fails_the_message_with_template_error(
    client, sender, template, worker
):
    # A value the date filter cannot parse passes acceptance (it is present) but not rendering.
    response = send(
        client,
        sender,
        template="visit-reminder",
        attributes={"visitDate": "next tuesday"},
        recipients=[{"type": "user", "value": "u-1"}],
    )
    message_id = response.get_json()["messages"][0]["id"]
    wait_until(lambda: message(message_id).state == MessageState.FAILED)
    assert message(message_id).failure_reason == "TEMPLATE_ERROR"
    assert "not an ISO date" in message(message_id).last_error


def counter_template(client, sender, body: str, example) -> None:
    """A template whose email body is ``body`` over one attribute ``n`` (its example given)."""
    template = visit_reminder(
        code="counter",
        attributes=[{"name": "n", "required": True, "example": example}],
        contents=[{"channel": "email", "language": "ro", "subject": "Counter", "body": body}],
    )
    response = client.post("/v1/templates", json=template, headers=sender.headers)
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize(
    ("body", "good", "bad", "problem"),
    [
        ("{{ 100 / n }}", 4, 0, "body: Cannot render: division by zero (line 1)"),
        ("{{ n | number }}", "12.5", "12,5", "body: '12,5' is not a number (line 1)"),
        ("Total:\n{{ n + 1 }}", 1, "abc", "body: Cannot render: can only concatenate str"),
    ],
)
def test_a_render_error_at_send_time_fails_in_one_attempt_and_is_not_resent(
    client, sender, smtp, worker, fast_retries, body, good, bad, problem
):
    from datetime import timedelta

    from models.base import utcnow
    from models.message import Attempt
    from scheduler.jobs import auto_resend
    from settings import settings

    counter_template(client, sender, body, good)
    response = send(
        client,
        sender,
        template="counter",
        recipients=[
            email("bad@example.md", attributes={"n": bad}),
            email("good@example.md", attributes={"n": good}),
        ],
    )
    assert response.status_code == 202, response.get_json()
    bad_id = response.get_json()["messages"][0]["id"]

    wait_until(lambda: message(bad_id).state == MessageState.FAILED)
    failed = message(bad_id)
    assert failed.failure_reason == "TEMPLATE_ERROR"
    assert failed.last_error.startswith(problem)
    assert failed.attempts == 1
    assert Attempt.select().where(Attempt.message == bad_id).count() == 1
    assert [mail.rcpt_tos for mail in smtp.wait_for(1)] == [["good@example.md"]]

    later = utcnow() + timedelta(seconds=settings.AUTO_RESEND_AFTER + 60)
    assert auto_resend(now=later) == {"resent": 0}
    assert message(bad_id).state == MessageState.FAILED


def test_a_recipient_without_a_language_gets_the_templates_default_language(
    client, sender, smtp, worker
):
    template = visit_reminder(code="english-first", defaultLanguage="en")
    assert client.post("/v1/templates", json=template, headers=sender.headers).status_code == 201

    response = send(
        client,
        sender,
        template="english-first",
        attributes={"visitDate": VISIT},
        recipients=[email("ion@example.md"), {"type": "user", "value": "u-1"}],
    )
    assert response.status_code == 202, response.get_json()
    (mail,) = smtp.wait_for(1)
    assert mail.email["Subject"] == "Visit on December 1, 2026"
    inapp_id = response.get_json()["messages"][1]["id"]
    wait_until(lambda: message(inapp_id).state == MessageState.UNREAD)
    assert message(inapp_id).body == "Vizită: 01.12.2026"  # no English row: any row serves

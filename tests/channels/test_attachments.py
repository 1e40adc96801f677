"""Email attachments: validated at accept time, stored once in the document store (never as
base64 in the database), attached by a real worker to every email the real SMTP server gets."""

import base64
import os

import pytest

from api.app import attachment_request_limit
from models.db import database
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from settings import settings
from tests.factories import email_notification, message
from tests.support import wait_until

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
ATTACHMENTS = [
    {"filename": "Înștiințare.pdf", "contentType": "application/pdf", "content": PDF},
    {"filename": "harta.png", "contentType": "image/png", "content": PNG},
]


def encoded(*attachments) -> list[dict]:
    return [a | {"content": base64.b64encode(a["content"]).decode()} for a in attachments]


def with_attachments(*attachments, recipients=("ion@example.md",)) -> dict:
    body = email_notification(*recipients)
    body["message"]["attachments"] = list(attachments)
    return body


def post(client, sender, body, **headers):
    return client.post("/v1/notifications", json=body, headers=sender.headers | headers)


def stored_text() -> str:
    """Every notification's content and idempotent response, as the database holds them."""
    rows = database.execute_sql(
        "SELECT n.content, i.response FROM notification n "
        "LEFT JOIN idempotency_record i ON i.notification_id = n.id"
    ).fetchall()
    return " ".join(str(value) for row in rows for value in row)


def test_every_email_carries_every_attachment(client, sender, smtp, worker, document_store):
    body = with_attachments(*encoded(*ATTACHMENTS), recipients=("a@example.md", "b@example.md"))
    posted = post(client, sender, body, **{"Idempotency-Key": "attachments-1"})
    assert posted.status_code == 202

    mails = smtp.wait_for(2)
    ids = [summary["id"] for summary in posted.get_json()["messages"]]
    wait_until(lambda: all(message(i).state == MessageState.SENT for i in ids))

    assert sorted(mail.rcpt_tos[0] for mail in mails) == ["a@example.md", "b@example.md"]
    for mail in mails:
        parts = list(mail.email.iter_attachments())
        assert [part.get_filename() for part in parts] == ["Înștiințare.pdf", "harta.png"]
        assert [part.get_content_type() for part in parts] == ["application/pdf", "image/png"]
        assert [part.get_content() for part in parts] == [PDF, PNG]
        assert mail.email.get_body(("plain",)).get_content().strip() == (
            "Vă așteptăm luni la ora 9:00."
        )


def test_attachments_are_stored_once_and_never_as_base64(
    client, sender, smtp, worker, document_store
):
    body = with_attachments(*encoded(*ATTACHMENTS), recipients=("a@example.md", "b@example.md"))
    posted = post(client, sender, body, **{"Idempotency-Key": "attachments-2"})
    replayed = post(client, sender, body, **{"Idempotency-Key": "attachments-2"})
    smtp.wait_for(2)

    assert replayed.get_json() == posted.get_json()

    references = posted.get_json()["message"]["attachments"]
    assert [(a["filename"], a["contentType"], a["size"]) for a in references] == [
        ("Înștiințare.pdf", "application/pdf", len(PDF)),
        ("harta.png", "image/png", len(PNG)),
    ]
    assert document_store.ids() == {a["documentId"] for a in references}
    assert [document_store.read(a["documentId"]) for a in references] == [PDF, PNG]
    content = Notification.get().content
    assert [a["document_id"] for a in content["attachments"]] == [
        a["documentId"] for a in references
    ]
    text = stored_text()
    for attachment in encoded(*ATTACHMENTS):
        assert attachment["content"][:64] not in text
    assert all(set(a) == {"filename", "contentType", "documentId", "size"} for a in references)


def test_other_channels_ignore_attachments(client, sender, worker, document_store):
    body = with_attachments(*encoded(ATTACHMENTS[0]))
    body["recipients"] = [{"type": "user", "value": "user-7"}]
    message_id = post(client, sender, body).get_json()["messages"][0]["id"]

    wait_until(lambda: message(message_id).state == MessageState.UNREAD)


def test_a_document_missing_at_send_time_fails_the_email(
    client, sender, smtp, queues, db, document_store
):
    from tests.support import running_worker

    message_id = post(client, sender, with_attachments(*encoded(*ATTACHMENTS))).get_json()[
        "messages"
    ][0]["id"]
    for name in document_store.files():
        os.remove(document_store.path_of(name))

    with running_worker(queues):
        wait_until(lambda: message(message_id).state == MessageState.FAILED)

    failed = message(message_id)
    assert failed.failure_reason == "TEMPLATE_ERROR"
    assert "Înștiințare.pdf" in failed.last_error
    assert failed.attempts == 1
    assert smtp.received == []


def test_attachments_larger_than_a_plain_request_are_accepted(
    client, sender, document_store, monkeypatch
):
    monkeypatch.setattr(settings, "MAX_ATTACHMENT_BYTES", 2 * 1024 * 1024)
    big = {"filename": "scan.pdf", "contentType": "application/pdf", "content": b"%" * 1_900_000}

    response = post(client, sender, with_attachments(*encoded(big)))

    assert response.status_code == 202
    assert [document_store.read(i) for i in document_store.ids()] == [big["content"]]


# --- refused at accept time: 400 naming the attachment, nothing stored -----------------------
@pytest.fixture
def nothing_stored(db, document_store):
    yield
    assert Notification.select().count() == 0
    assert Message.select().count() == 0
    assert document_store.files() == []


def errors_of(response) -> dict:
    assert response.status_code == 400, response.get_data(as_text=True)
    return response.get_json()["errors"]["message"]["attachments"]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"contentType": "application/x-msdownload"}, "contentType", "Must be one of:"),
        ({"content": "not base64!"}, "content", "Not valid base64."),
        ({"content": "QUJ"}, "content", "Not valid base64."),
        ({"filename": "../../etc/passwd"}, "filename", "Must be a file name"),
        ({"filename": "C:\\temp\\a.pdf"}, "filename", "Must be a file name"),
        ({"filename": ".."}, "filename", "Must be a file name"),
        ({"filename": "x" * 252 + ".pdf"}, "filename", "Length must be between 1 and 255."),
        ({"documentId": "0123456789abcdef0123456789abcdef"}, "documentId", "Unknown field."),
    ],
)
def test_a_bad_attachment_is_named_by_index_and_field(
    client, sender, nothing_stored, change, field, reason
):
    good = encoded(*ATTACHMENTS)
    response = post(client, sender, with_attachments(good[0], good[1] | change))

    errors = errors_of(response)
    assert list(errors) == ["1"]
    assert list(errors["1"]) == [field]
    assert errors["1"][field][0].startswith(reason)


def test_attachments_too_large_in_total(client, sender, nothing_stored, monkeypatch):
    monkeypatch.setattr(settings, "MAX_ATTACHMENT_BYTES", len(PDF) + len(PNG) - 1)
    errors = errors_of(post(client, sender, with_attachments(*encoded(*ATTACHMENTS))))
    assert errors == {
        "1": {
            "content": [f"Attachments may total at most {len(PDF) + len(PNG) - 1} bytes (decoded)."]
        }
    }


def test_at_most_ten_attachments(client, sender, nothing_stored):
    many = encoded(*[ATTACHMENTS[1] | {"filename": f"{n}.png"} for n in range(11)])
    assert errors_of(post(client, sender, with_attachments(*many))) == ["At most 10 attachments."]


def test_the_allowed_types_come_from_settings(client, sender, nothing_stored, monkeypatch):
    monkeypatch.setattr(settings, "ATTACHMENT_CONTENT_TYPES", "text/plain, text/csv")
    errors = errors_of(post(client, sender, with_attachments(*encoded(*ATTACHMENTS))))
    assert errors["0"] == {"contentType": ["Must be one of: text/plain, text/csv."]}


def test_a_request_over_the_attachment_limit_is_413(client, sender, nothing_stored, monkeypatch):
    monkeypatch.setattr(settings, "MAX_ATTACHMENT_BYTES", 1024 * 1024)
    limit = attachment_request_limit()
    big = {"filename": "a.txt", "contentType": "text/plain", "content": "A" * limit}

    response = post(client, sender, with_attachments(big))

    assert response.status_code == 413
    assert response.get_json()["code"] == 413

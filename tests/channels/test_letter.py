"""Letters: postal addresses at accept time, the PDF a real worker typesets and stores, and its
download by the sender that owns it."""

import io
import os
import re

import pytest
from pypdf import PdfReader

from channels.base import InvalidContent, InvalidDestination
from channels.letter import LetterChannel
from models.states import MessageState
from settings import settings
from tests.factories import email_notification, message
from tests.support import wait_until

ADDRESS = [
    "Ion Popescu",
    "str. Ștefan cel Mare și Sfânt 1, ap. 2",
    "MD-2001 Chișinău",
    "Republica Moldova",
]
SUBJECT = "Înștiințare privind programarea"
BODY = (
    "Stimate domnule Popescu,\n\n"
    "Vă așteptăm luni la ora 9:00, în biroul 12. Țineți actul de identitate la îndemână.\n"
    "Уважаемый господин Попеску, ждём вас в понедельник в 9:00."
)


def letter(*addresses, subject=SUBJECT, body=BODY) -> dict:
    message = {"body": body} | ({"subject": subject} if subject else {})
    return {
        "recipients": [{"type": "address", "value": value} for value in addresses or [ADDRESS]],
        "message": message,
    }


def post(client, sender, body):
    return client.post("/v1/notifications", json=body, headers=sender.headers)


def words(text: str) -> str:
    """Text with runs of whitespace made one space (PDF text extraction re-wraps lines)."""
    return re.sub(r"\s+", " ", text).strip()


def pdf_text(data: bytes) -> tuple[str, int]:
    """The text of every page without its "n / N" footer, and the number of pages."""
    reader = PdfReader(io.BytesIO(data))
    pages = len(reader.pages)
    texts = []
    for number, page in enumerate(reader.pages, 1):
        text = words(page.extract_text())
        assert text.endswith(f"{number} / {pages}")
        texts.append(text.removesuffix(f"{number} / {pages}"))
    return words(" ".join(texts)), pages


@pytest.fixture
def fast_letter_retries(monkeypatch):
    monkeypatch.setattr(settings.LETTER, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.LETTER, "MAX_BACKOFF_MS", 200)


# --- addresses -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (ADDRESS, "\n".join(ADDRESS)),
        ("  Ion Popescu \n\nstr. Ștefan cel Mare 1\r\nMD-2001 Chișinău\n", None),
        (["A", " B ", "C"], "A\nB\nC"),
        ([f"line {n}" for n in range(8)], "\n".join(f"line {n}" for n in range(8))),
    ],
)
def test_addresses_are_stored_as_lines(value, stored):
    expected = stored or "Ion Popescu\nstr. Ștefan cel Mare 1\nMD-2001 Chișinău"
    assert LetterChannel().parse_destination(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (["Ion Popescu", "Chișinău"], "A postal address needs at least 3 lines."),
        ("Ion Popescu\n\nChișinău", "A postal address needs at least 3 lines."),
        ([f"line {n}" for n in range(9)], "A postal address has at most 8 lines."),
        (["Ion", "", "Chișinău"], "Line 2 must be a non-empty string."),
        (["Ion", 7, "Chișinău"], "Line 2 must be a non-empty string."),
        (["Ion", "x" * 101, "Chișinău"], "Line 2 is longer than 100 characters."),
        (["Ion", "str.\tMare", "Chișinău"], "Line 2 must be printable text."),
        ({"line1": "Ion"}, "Must be a list of address lines or a string of lines."),
    ],
)
def test_unusable_addresses_are_refused(value, reason):
    with pytest.raises(InvalidDestination) as refused:
        LetterChannel().parse_destination(value)
    assert str(refused.value) == reason


def test_a_letter_body_has_a_limit():
    with pytest.raises(InvalidContent) as refused:
        LetterChannel().check_content({"body": "x" * 100_001})
    assert refused.value.field == "body"


def test_a_two_line_address_is_a_400_naming_the_recipient(client, sender, document_store):
    body = letter(ADDRESS, ["Ion Popescu", "Chișinău"])
    response = post(client, sender, body)

    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "recipients": {"1": {"value": ["A postal address needs at least 3 lines."]}}
    }
    assert document_store.files() == []


# --- through the API and a real worker -----------------------------------------------------
def test_a_letter_is_typeset_stored_and_downloaded(client, sender, worker, document_store):
    posted = post(client, sender, letter())
    assert posted.status_code == 202
    summary = posted.get_json()["messages"][0]
    assert summary["channel"] == "letter"
    assert summary["destination"] == "\n".join(ADDRESS)

    wait_until(lambda: message(summary["id"]).state == MessageState.SENT)

    status = client.get(f"/v1/messages/{summary['id']}", headers=sender.headers).get_json()
    document_id = status["details"]["documentId"]
    assert document_store.ids() == {document_id}
    assert status["attemptHistory"][0]["providerId"] == document_id

    response = client.get(f"/v1/messages/{summary['id']}/document", headers=sender.headers)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f"inline; filename=letter-{summary['id']}.pdf"
    )
    assert response.data == document_store.read(document_id)
    text, pages = pdf_text(response.data)
    assert pages == status["details"]["pages"] == 1
    for line in ADDRESS:
        assert line in text
    assert SUBJECT in text
    assert words(BODY) in text
    assert message(summary["id"]).sent_at.date().isoformat() in text


def test_a_long_letter_runs_over_several_pages(client, sender, worker, document_store):
    paragraph = "Vă rugăm să prezentați documentele originale la ghișeul nr. 3. " * 12
    body = "\n\n".join(f"{number}. {paragraph}" for number in range(1, 31))
    posted = post(client, sender, letter(body=body, subject=None))
    message_id = posted.get_json()["messages"][0]["id"]

    wait_until(lambda: message(message_id).state == MessageState.SENT)

    pdf = client.get(f"/v1/messages/{message_id}/document", headers=sender.headers).data
    text, pages = pdf_text(pdf)
    assert pages > 1
    assert message(message_id).details == {
        "documentId": message(message_id).provider_id,
        "pages": pages,
    }
    assert words(body) in text


def test_only_the_owning_sender_or_an_admin_gets_the_document(
    client, sender, other_sender, admin, worker, document_store
):
    message_id = post(client, sender, letter()).get_json()["messages"][0]["id"]
    wait_until(lambda: message(message_id).state == MessageState.SENT)
    url = f"/v1/messages/{message_id}/document"

    stranger = client.get(url, headers=other_sender.headers)
    assert stranger.status_code == 404
    assert stranger.get_json()["code"] == 404
    assert stranger.get_json()["message"]
    assert client.get(url, headers=admin.headers).status_code == 200
    assert client.get(url).status_code == 401


def test_a_message_without_a_document_is_404(client, sender, smtp, worker, document_store):
    message_id = post(client, sender, email_notification()).get_json()["messages"][0]["id"]
    wait_until(lambda: message(message_id).state == MessageState.SENT)

    response = client.get(f"/v1/messages/{message_id}/document", headers=sender.headers)
    unknown = client.get(
        "/v1/messages/0190a6d2-7c4e-7000-8000-000000000000/document", headers=sender.headers
    )

    for answer in (response, unknown):
        assert answer.status_code == 404
        assert answer.get_json()["status"] == "Not Found"


def test_a_document_gone_from_the_store_is_404(client, sender, worker, document_store):
    message_id = post(client, sender, letter()).get_json()["messages"][0]["id"]
    wait_until(lambda: message(message_id).state == MessageState.SENT)
    for name in document_store.files():
        os.remove(document_store.path_of(name))

    response = client.get(f"/v1/messages/{message_id}/document", headers=sender.headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_an_unwritable_store_is_retried_until_it_recovers(
    client, sender, worker, document_store, fast_letter_retries
):
    with open(document_store.root, "w") as file:  # a file where the store's directory should be
        file.write("")
    message_id = post(client, sender, letter()).get_json()["messages"][0]["id"]

    wait_until(lambda: message(message_id).state == MessageState.RETRYING)
    assert message(message_id).last_error.startswith("document store:")

    os.remove(document_store.root)
    wait_until(lambda: message(message_id).state == MessageState.SENT)
    assert message(message_id).attempts >= 2
    assert document_store.ids() == {message(message_id).provider_id}

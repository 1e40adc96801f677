"""Bad input is a 4xx naming the field, in the JSON error contract, and stores nothing."""

import json

import pytest

from api.app import attachment_request_limit
from models.message import Message
from models.notification import Notification
from settings import settings
from tests.factories import email_notification


@pytest.fixture(autouse=True)
def nothing_stored(db):
    yield
    assert Notification.select().count() == 0
    assert Message.select().count() == 0


def post(client, sender, body, **kwargs):
    return client.post("/v1/notifications", json=body, headers=sender.headers, **kwargs)


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    data = response.get_json()
    assert data["code"] == status
    assert isinstance(data["status"], str) and data["status"]
    assert isinstance(data["message"], str) and data["message"]
    return data


def test_missing_recipients(client, sender):
    body = email_notification()
    del body["recipients"]
    data = assert_error(post(client, sender, body), 400)
    assert data["errors"] == {"recipients": ["At least one recipient is required."]}


def test_empty_recipients(client, sender):
    data = assert_error(post(client, sender, email_notification() | {"recipients": []}), 400)
    assert "recipients" in data["errors"]


def test_invalid_email_names_the_recipient_index(client, sender):
    body = email_notification("ion@example.md", "not-an-email", "also bad@example.md")
    data = assert_error(post(client, sender, body), 400)
    assert set(data["errors"]["recipients"]) == {"1", "2"}
    assert data["errors"]["recipients"]["1"] == {"value": ["Not a valid email address."]}


def test_unknown_recipient_type(client, sender):
    body = email_notification() | {"recipients": [{"type": "pigeon", "value": "x"}]}
    data = assert_error(post(client, sender, body), 400)
    assert "type" in data["errors"]["recipients"]["0"]


def test_unknown_fields_are_rejected_at_every_level(client, sender):
    body = email_notification() | {"priority": "high"}
    body["message"]["colour"] = "red"
    data = assert_error(post(client, sender, body), 400)
    assert data["errors"]["priority"] == ["Unknown field."]
    assert data["errors"]["message"] == {"colour": ["Unknown field."]}


def test_email_needs_a_subject(client, sender):
    body = email_notification()
    del body["message"]["subject"]
    data = assert_error(post(client, sender, body), 400)
    assert data["errors"] == {"message": {"subject": ["Required for email recipients."]}}


def test_subject_with_line_breaks_is_rejected(client, sender):
    body = email_notification()
    body["message"]["subject"] = "Hello\r\nBcc: victim@example.md"
    data = assert_error(post(client, sender, body), 400)
    assert "subject" in data["errors"]["message"]


def test_a_request_over_the_limit_is_413(client, sender):
    """POST /v1/notifications may carry attachments: its limit is theirs in base64 plus 1 MiB."""
    body = email_notification()
    body["message"]["body"] = "x" * attachment_request_limit()
    assert_error(post(client, sender, body), 413)


def test_body_over_the_request_limit_is_400(client, sender):
    body = email_notification()
    body["message"]["body"] = "x" * settings.MAX_REQUEST_BYTES + "y"
    data = assert_error(post(client, sender, body), 400)
    assert data["errors"] == {"message": {"body": [f"At most {settings.MAX_REQUEST_BYTES} bytes."]}}


def test_more_recipients_than_allowed(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "MAX_RECIPIENTS_PER_REQUEST", 3)
    body = email_notification(*(f"p{i}@example.md" for i in range(4)))
    data = assert_error(post(client, sender, body), 400)
    assert data["errors"]["recipients"] == ["At most 3 recipients per request."]


def test_the_default_recipient_limit_is_ten_thousand():
    assert settings.MAX_RECIPIENTS_PER_REQUEST == 10000


def test_malformed_json(client, sender):
    response = client.post(
        "/v1/notifications",
        data='{"recipients": [',
        headers=sender.headers | {"Content-Type": "application/json"},
    )
    data = assert_error(response, 400)
    assert data["errors"] == {"json": ["Invalid JSON body."]}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client, sender, content_type):
    headers = dict(sender.headers)
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post(
        "/v1/notifications", data=json.dumps(email_notification()), headers=headers
    )
    assert_error(response, 415)


def test_wrong_field_types(client, sender):
    body = email_notification() | {"recipients": "ion@example.md", "reference": 7}
    data = assert_error(post(client, sender, body), 400)
    assert "recipients" in data["errors"]
    assert data["errors"]["reference"] == ["Not a valid string."]


def test_overlong_labels(client, sender):
    data = assert_error(post(client, sender, email_notification(event="E" * 101)), 400)
    assert "event" in data["errors"]


def post_raw(client, who, path, text):
    """POST ``text`` as the JSON body exactly as written (JSON escapes kept)."""
    headers = who.headers | {"Content-Type": "application/json"}
    return client.post(path, data=text.encode(), headers=headers)


LONE = ["Not valid Unicode: contains a lone surrogate (half of a UTF-16 pair)."]


def test_a_lone_surrogate_is_400_naming_the_field(client, sender):
    text = (
        '{"recipients": [{"type": "user", "value": "u-1\\ud800"}],'
        ' "message": {"body": "Bun\\udfff venit"}}'
    )
    data = assert_error(post_raw(client, sender, "/v1/notifications", text), 400)
    assert data["errors"] == {"recipients": {"0": {"value": LONE}}, "message": {"body": LONE}}


def test_a_lone_surrogate_in_a_key_is_400_naming_it_escaped(client, sender):
    text = (
        '{"recipients": [{"type": "user", "value": "u-1"}],'
        ' "message": {"body": "Bun venit", "data": {"ok": 1, "k\\ud800": 2}}}'
    )
    data = assert_error(post_raw(client, sender, "/v1/notifications", text), 400)
    message = "Not valid Unicode: this name contains a lone surrogate."
    assert data["errors"] == {"message": {"data": {"k\\ud800": [message]}}}


def test_an_escaped_surrogate_pair_is_valid(client, sender):
    text = (
        '{"recipients": [{"type": "user", "value": "u-1"}], "message": {"body": "\\ud83d\\ude00"}}'
    )
    response = post_raw(client, sender, "/v1/notifications", text)
    assert response.status_code == 202, response.get_json()
    assert Notification.get().content["body"] == "\U0001f600"
    Message.delete().execute()
    Notification.delete().execute()


def test_a_lone_surrogate_in_an_import_is_400_naming_the_row(client):
    from models.contact import Contact
    from tests.factories import idnp, make_sender

    registrar = make_sender("registry", permissions=["contacts:write"])
    text = f'[{{"idnp": "{idnp(1)}"}}, {{"idnp": "{idnp(2)}", "name": "Ion\\ud800"}}]'
    data = assert_error(post_raw(client, registrar, "/v1/contacts/import", text), 400)
    assert data["errors"] == {"1": {"name": LONE}}
    assert Contact.select().count() == 0


@pytest.mark.parametrize(
    "valid_till",
    [
        "2031-03-01T10:00:00+00:00",  # the same instant
        "2031-03-01T09:59:59+00:00",
        "2031-03-01T11:00:00+02:00",  # a later wall clock, an earlier instant
    ],
)
def test_valid_till_not_after_send_at_is_400(client, sender, valid_till):
    body = email_notification(sendAt="2031-03-01T10:00:00+00:00", validTill=valid_till)
    data = assert_error(post(client, sender, body), 400)
    assert data["errors"] == {"validTill": ["Must be later than sendAt."]}

"""One-click unsubscribe (RFC 8058): an email sent by a real worker to the real SMTP server
carries ``List-Unsubscribe`` with its link (and the ``mailto:`` address with BOUNCE_DOMAIN) and
``List-Unsubscribe-Post``; a POST to the link turns email off for the person and the service,
a GET shows a page and changes nothing, a forged or altered token changes nothing. On both
databases.

After a one-click POST the person's next email for that service fails UNSUBSCRIBED and is
never sent, while another service's still goes (by IDNP through fan-out, and for a direct
address outside the registry at accept)."""

from __future__ import annotations

import base64
import json
import os
import re
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from api.unsubscribe import MAX_BODY_BYTES
from channels.unsubscribe import (
    Target,
    link_token,
    mail_token,
    message_id_of,
    target_of,
)
from models.contact import upsert_contacts
from models.message import Message
from models.notification import Notification
from models.preference import ADDRESS, PERSON, Preference, opted_out, preferences_of
from models.states import MessageState
from settings import settings
from tests.factories import email_notification, idnp, visit_reminder
from tests.support import running_worker, settled, wait_until

ION = idnp(7)
BASE = "https://herald.example.md"
DOMAIN = "bounces.herald.example.md"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
LINK = re.compile(rf"<({re.escape(BASE)}/unsubscribe/[A-Za-z0-9_-]+)>")
MAILTO = re.compile(rf"<mailto:(unsubscribe\+[a-z2-7]{{40}}@{re.escape(DOMAIN)})>")


@pytest.fixture
def public(monkeypatch):
    """Herald is reached at BASE and receives mail at DOMAIN."""
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", BASE)
    monkeypatch.setattr(settings, "BOUNCE_DOMAIN", DOMAIN)


def to_ion(service: str | None = "permits", **extra) -> dict:
    """A notification to Ion by IDNP (his address is the registry's), for ``service``."""
    upsert_contacts(
        [{"idnp": ION, "name": "Ion", "channels": [{"type": "email", "address": "ion@example.md"}]}]
    )
    body = {
        "recipients": [{"type": "idnp", "value": ION}],
        "channels": ["email"],
        "message": {"subject": "Autorizație", "body": "Autorizația dvs. este gata."},
        **extra,
    }
    if service:
        body["serviceName"] = service
    return body


def sent(client, sender, smtp, body: dict, count: int = 1):
    """Submit ``body`` and wait until the worker sent it; the mails the SMTP server has."""
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    mails = smtp.wait_for(count, timeout=30)
    email = wait_until(lambda: Message.get_or_none(Message.channel == "email"))
    wait_until(settled(email.id, MessageState.SENT), timeout=30)
    return mails


def forged_token(target: Target) -> str:
    """A token made as Herald makes them, but under a key that is not Herald's."""
    plain = json.dumps([target.kind, target.subject, target.service, target.channel]).encode()
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(AESGCM.generate_key(256)).encrypt(nonce, plain, None)
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def link_path(mail) -> str:
    (link,) = LINK.findall(mail.email["List-Unsubscribe"])
    return urlsplit(link).path


def test_an_email_carries_both_headers_and_a_post_to_its_link_unsubscribes(
    client, sender, smtp, worker, public
):
    (mail,) = sent(client, sender, smtp, to_ion())

    header = mail.email["List-Unsubscribe"]
    assert re.fullmatch(rf"{LINK.pattern}, {MAILTO.pattern}", header), header
    assert mail.email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = link_path(mail)
    (mailto,) = MAILTO.findall(header)
    # as written: one URI a line, neither folded apart nor made encoded words
    raw = f"List-Unsubscribe: <{BASE}{path}>,\r\n <mailto:{mailto}>\r\n"
    assert raw.encode() in mail.raw
    assert opted_out([ION], "permits") == {}

    response = client.post(path, data=ONE_CLICK)  # form-encoded, as mail clients post it

    assert response.status_code == 200
    assert "permits" in response.get_data(as_text=True)
    assert preferences_of(ION) == {"channels": {}, "services": {"permits": {"email": False}}}
    assert opted_out([ION], "permits") == {ION: {"email"}}
    assert opted_out([ION], "housing") == {}  # another service's emails still go
    again = client.post(path, data=ONE_CLICK)
    assert again.status_code == 200
    assert Preference.select().count() == 1


def outcome(client, sender, body: dict) -> Message:
    """Submit ``body``; its email message once final (sent, or failed without a send)."""
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    notification_id = response.get_json()["id"]

    def final():
        return (
            Message.select()
            .where(
                (Message.notification == notification_id)
                & (Message.channel == "email")
                & Message.state.in_([MessageState.SENT, MessageState.FAILED])
            )
            .first()
        )

    return wait_until(final, timeout=30)


def test_after_one_click_the_next_email_of_that_service_is_not_sent(
    client, sender, smtp, worker, public
):
    (mail,) = sent(client, sender, smtp, to_ion())
    assert client.post(link_path(mail), data=ONE_CLICK).status_code == 200

    refused = outcome(client, sender, to_ion())
    other = outcome(client, sender, to_ion(service="housing"))

    assert (refused.state, refused.failure_reason) == (MessageState.FAILED, "UNSUBSCRIBED")
    assert other.state == MessageState.SENT
    assert [m.rcpt_tos for m in smtp.wait_for(2)] == [["ion@example.md"]] * 2  # nothing more


def test_after_one_click_a_direct_address_gets_no_more_email_of_that_service(
    client, sender, smtp, worker, public
):
    (mail,) = sent(
        client, sender, smtp, email_notification("maria@example.md", serviceName="permits")
    )
    assert client.post(link_path(mail), data=ONE_CLICK).status_code == 200

    refused = outcome(client, sender, email_notification("maria@example.md", serviceName="permits"))

    assert (refused.state, refused.failure_reason) == (MessageState.FAILED, "UNSUBSCRIBED")
    assert len(smtp.received) == 1


def test_a_multipart_post_unsubscribes_too(client, sender, smtp, worker, public):
    (mail,) = sent(client, sender, smtp, to_ion())

    response = client.post(link_path(mail), data=ONE_CLICK, content_type="multipart/form-data")

    assert response.status_code == 200
    assert opted_out([ION], "permits") == {ION: {"email"}}


def test_without_a_service_the_link_unsubscribes_from_every_service(
    client, sender, smtp, worker, public
):
    (mail,) = sent(client, sender, smtp, to_ion(service=None))

    assert client.post(link_path(mail), data=ONE_CLICK).status_code == 200

    assert preferences_of(ION) == {"channels": {"email": False}, "services": {}}


def test_a_direct_address_is_unsubscribed_as_an_address(client, sender, smtp, worker, public):
    body = email_notification("maria@example.md", serviceName="permits")
    (mail,) = sent(client, sender, smtp, body)

    assert client.post(link_path(mail), data=ONE_CLICK).status_code == 200

    subject = "email:maria@example.md"
    assert preferences_of(subject, ADDRESS) == {
        "channels": {},
        "services": {"permits": {"email": False}},
    }
    assert Preference.get().subject_kind == ADDRESS


def test_get_shows_a_page_with_a_button_and_changes_nothing(client, sender, smtp, worker, public):
    (mail,) = sent(client, sender, smtp, to_ion())

    response = client.get(link_path(mail), headers={"Accept-Language": "en"})

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "the service “permits”" in page
    assert '<form method="post">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert Preference.select().count() == 0
    romanian = client.get(link_path(mail) + "?lang=ro").get_data(as_text=True)
    assert "Dezabonare" in romanian and 'lang="ro"' in romanian


def test_a_post_without_one_click_or_too_large_changes_nothing(
    client, sender, smtp, worker, public
):
    (mail,) = sent(client, sender, smtp, to_ion())
    path = link_path(mail)

    missing = client.post(path, data={"other": "x"})
    wrong = client.post(path, data={"List-Unsubscribe": "yes"})
    large = client.post(path, data={**ONE_CLICK, "pad": "x" * MAX_BODY_BYTES})

    assert missing.status_code == 400 and "List-Unsubscribe=One-Click" in missing.text
    assert wrong.status_code == 400
    assert large.status_code == 413
    assert Preference.select().count() == 0


def test_a_forged_or_altered_token_is_refused_and_says_nothing(
    client, sender, smtp, worker, public
):
    (mail,) = sent(client, sender, smtp, to_ion())
    path = link_path(mail)
    token = path.rsplit("/", 1)[1]
    altered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    forged = forged_token(Target(PERSON, ION, "permits"))

    refusals = [
        client.post(f"/unsubscribe/{altered}", data=ONE_CLICK),
        client.get(f"/unsubscribe/{altered}"),
        client.post(f"/unsubscribe/{'x' * 2000}", data=ONE_CLICK),
        client.post("/unsubscribe/not-a-token!", data=ONE_CLICK),
        client.post(f"/unsubscribe/{forged}", data=ONE_CLICK),
    ]

    for response in refusals:
        assert response.status_code == 404, response.status_code
        page = response.get_data(as_text=True)
        assert "not valid" in page or "nu este valid" in page
        assert "permits" not in page and ION not in page
    assert Preference.select().count() == 0


def test_a_critical_email_has_no_unsubscribe_and_its_template_link_is_empty(
    client, sender, smtp, queues, public
):
    """``critical`` is set on the stored notification before a worker starts: accepting it
    through the API (with the ``send_critical`` grant) is the other helper's part."""
    template = visit_reminder()
    template["contents"][0]["body"] = "Vizită. [{{ unsubscribe_url }}]"
    assert client.post("/v1/templates", json=template, headers=sender.headers).status_code == 201
    body = to_ion(template="visit-reminder", attributes={"visitDate": "2026-12-01T09:00:00"})
    del body["message"]
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    Notification.update(critical=True).execute()

    with running_worker(queues):
        (mail,) = smtp.wait_for(1, timeout=30)

    assert mail.email["List-Unsubscribe"] is None
    assert mail.email["List-Unsubscribe-Post"] is None
    assert mail.email.get_body(("plain",)).get_content().strip() == "Vizită. []"


def test_a_template_places_the_same_link(client, sender, smtp, worker, public):
    template = visit_reminder()
    template["contents"][0]["body"] = "Vizită. Dezabonare: {{ unsubscribe_url }}"
    template["contents"][0]["html"] = '<p><a href="{{ unsubscribe_url }}">Dezabonare</a></p>'
    saved = client.post("/v1/templates", json=template, headers=sender.headers)
    assert saved.status_code == 201, saved.get_json()
    preview = client.post(
        "/v1/templates/visit-reminder/preview",
        json={"channel": "email", "attributes": {"visitDate": "2026-12-01T09:00:00"}},
        headers=sender.headers,
    )
    assert (
        preview.get_json()["body"] == "Vizită. Dezabonare: https://herald.example.md/unsubscribe/…"
    )
    body = to_ion(template="visit-reminder", attributes={"visitDate": "2026-12-01T09:00:00"})
    del body["message"]

    (mail,) = sent(client, sender, smtp, body)

    (link,) = LINK.findall(mail.email["List-Unsubscribe"])
    text = mail.email.get_body(("plain",)).get_content().strip()
    html = mail.email.get_body(("html",)).get_content()
    (placed,) = re.findall(r"Dezabonare: (\S+)", text)
    assert placed == link
    assert f'<a href="{placed}">' in html
    assert client.post(urlsplit(placed).path, data=ONE_CLICK).status_code == 200
    assert opted_out([ION], "permits") == {ION: {"email"}}


def test_without_a_public_base_url_only_the_mailto_is_offered(
    client, sender, smtp, worker, monkeypatch
):
    monkeypatch.setattr(settings, "BOUNCE_DOMAIN", DOMAIN)
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", "")

    (mail,) = sent(client, sender, smtp, to_ion())

    assert re.fullmatch(MAILTO.pattern, mail.email["List-Unsubscribe"])
    assert mail.email["List-Unsubscribe-Post"] is None


def test_with_neither_setting_no_header_is_sent(client, sender, smtp, worker, monkeypatch):
    monkeypatch.setattr(settings, "BOUNCE_DOMAIN", "")
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", "")

    (mail,) = sent(client, sender, smtp, to_ion())

    assert mail.email["List-Unsubscribe"] is None


# --- tokens ----------------------------------------------------------------------------------
TARGETS = st.builds(
    Target,
    kind=st.sampled_from([PERSON, ADDRESS]),
    subject=st.text(min_size=1, max_size=400),
    service=st.text(max_size=100),
)
LINK_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def tamperings(token: str, alphabet: str, data) -> str:
    """``token`` changed one way: a character replaced, inserted or dropped, or cut short."""
    how = data.draw(st.sampled_from(["replace", "insert", "drop", "cut"]))
    at = data.draw(st.integers(0, len(token) - 1))
    if how == "replace":
        new = data.draw(st.sampled_from([c for c in alphabet if c != token[at]]))
        return token[:at] + new + token[at + 1 :]
    if how == "insert":
        return token[:at] + data.draw(st.sampled_from(alphabet)) + token[at:]
    if how == "drop":
        return token[:at] + token[at + 1 :]
    return token[:at]


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=TARGETS, data=st.data())
def test_any_tampering_of_a_link_token_is_refused(db, target, data):
    token = link_token(target)
    assert target_of(token) == target

    assert target_of(tamperings(token, LINK_ALPHABET, data)) is None


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message_id=st.uuids(), data=st.data())
def test_any_tampering_of_a_mail_token_is_refused(db, message_id, data):
    token = mail_token(message_id)
    assert message_id_of(token) == message_id
    assert message_id_of(token.upper()) == message_id  # MTAs may change a local part's case

    tampered = tamperings(token, "abcdefghijklmnopqrstuvwxyz234567", data)

    assert message_id_of(tampered) is None
    assert message_id_of(tampered.upper()) is None

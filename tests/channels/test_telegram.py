"""Telegram: the API and a real worker against a Bot API speaking Telegram's shapes on 127.0.0.1,
and the adapter's error classes, escaping and limits."""

import logging

import pytest

from channels.base import DeadAddress, PermanentError, Rendered, TransientError
from channels.telegram import TelegramChannel, compose
from models.message import Message
from models.states import FailureReason, MessageState
from settings import settings
from tests.factories import message
from tests.fakes.http import Response
from tests.fakes.telegram import TOKEN, error
from tests.support import settled, wait_until


@pytest.fixture
def fast_retries(monkeypatch):
    """Telegram retries after tens of milliseconds instead of seconds."""
    monkeypatch.setattr(settings.TELEGRAM, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.TELEGRAM, "MAX_BACKOFF_MS", 200)


def notification(*chats, **content) -> dict:
    return {
        "recipients": [{"type": "telegram", "value": chat} for chat in chats or ["123456789"]],
        "message": {"subject": "Programare confirmată", "body": "Vă așteptăm luni."} | content,
    }


def post(client, sender, body) -> dict:
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def history(client, sender, message_id) -> dict:
    return client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()


# --- through the API and a worker ----------------------------------------------------------
def test_a_message_reaches_the_bot_api_with_user_text_escaped(client, sender, telegram, worker):
    body = notification(
        "123456789",
        subject="Dosar <b>nr. 7</b>",
        body='Salut <script>alert("x")</script> & bun venit',
        actionUrl="https://e.gov.md/dosare?id=7&lang=ro",
    )
    message_id = post(client, sender, body)["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    (request,) = telegram.requests
    assert request.method == "POST"
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.json() == {
        "chat_id": "123456789",
        "text": "<b>Dosar &lt;b&gt;nr. 7&lt;/b&gt;</b>\n"
        'Salut &lt;script&gt;alert("x")&lt;/script&gt; &amp; bun venit\n\n'
        '<a href="https://e.gov.md/dosare?id=7&amp;lang=ro">'
        "https://e.gov.md/dosare?id=7&amp;lang=ro</a>",
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }
    (shown,) = telegram.delivered
    assert shown.text == (
        "Dosar <b>nr. 7</b>\n"
        'Salut <script>alert("x")</script> & bun venit\n\n'
        "https://e.gov.md/dosare?id=7&lang=ro"
    )
    assert shown.bold == ["Dosar <b>nr. 7</b>"]
    assert shown.links == ["https://e.gov.md/dosare?id=7&lang=ro"]
    status = history(client, sender, message_id)
    assert status["destination"] == "123456789"
    assert status["attempts"] == 1
    assert status["attemptHistory"][0]["providerId"] == "1"
    assert status["details"] == {"chatId": 123456789}


def test_flood_control_is_waited_out_as_telegram_asks(
    client, sender, telegram, worker, fast_retries
):
    telegram.flood_wait(1)
    message_id = post(client, sender, notification())["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    assert len(telegram.requests) == 2
    first, second = telegram.arrivals
    assert second - first >= 1.0  # retry_after, not the 50 ms backoff
    status = history(client, sender, message_id)
    assert [a["outcome"] for a in status["attemptHistory"]] == ["transient", "sent"]
    assert "429" in status["attemptHistory"][0]["error"]


def test_a_server_error_is_retried_then_sent(client, sender, telegram, worker, fast_retries):
    telegram.script = [error(502, "Bad Gateway")]
    message_id = post(client, sender, notification())["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    assert len(telegram.requests) == 2
    assert len(telegram.delivered) == 1
    status = history(client, sender, message_id)
    assert [a["outcome"] for a in status["attemptHistory"]] == ["transient", "sent"]
    assert "502" in status["attemptHistory"][0]["error"]


def test_a_bad_token_is_retried_until_the_configuration_is_fixed(
    client, sender, telegram, worker, fast_retries, monkeypatch
):
    monkeypatch.setattr(settings.TELEGRAM, "MAX_RETRIES", 1000)
    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", "7000000001:wrong-token-for-this-bot")
    message_id = post(client, sender, notification())["messages"][0]["id"]
    wait_until(lambda: message(message_id).attempts >= 2)
    assert message(message_id).state in (MessageState.RETRYING, MessageState.SENDING)
    assert "401" in message(message_id).last_error
    assert "wrong-token" not in message(message_id).last_error

    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", TOKEN)
    wait_until(settled(message_id, MessageState.SENT))
    assert len(telegram.delivered) == 1


@pytest.mark.parametrize(
    ("setup", "reason", "reported"),
    [
        (lambda fake: fake.unknown_chats.add("555"), "INVALID_DESTINATION", "chat not found"),
        (
            lambda fake: fake.script.append(error(400, "Bad Request: message is too long")),
            "REJECTED_BY_PROVIDER",
            "message is too long",
        ),
    ],
)
def test_a_permanent_failure_fails_at_once_with_its_reason(
    client, sender, telegram, worker, fast_retries, setup, reason, reported
):
    setup(telegram)
    message_id = post(client, sender, notification("555"))["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.FAILED))

    failed = history(client, sender, message_id)
    assert failed["failureReason"] == reason
    assert failed["attempts"] == 1
    assert [a["outcome"] for a in failed["attemptHistory"]] == ["permanent"]
    assert "400" in failed["lastError"] and reported in failed["lastError"]
    assert telegram.delivered == []


def test_a_bot_blocked_by_its_user_is_a_dead_address(client, sender, telegram, worker):
    telegram.blocked_chats.add("424242")
    message_id = post(client, sender, notification("424242"))["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.FAILED))

    failed = history(client, sender, message_id)
    assert failed["failureReason"] == "DEAD_ADDRESS"
    assert [a["outcome"] for a in failed["attemptHistory"]] == ["dead_address"]
    assert "bot was blocked by the user" in failed["lastError"]
    assert len(telegram.requests) == 1


def test_the_rate_limit_applies_to_telegram(client, sender, telegram, worker, monkeypatch):
    monkeypatch.setattr(settings.TELEGRAM, "RATE_LIMIT_PER_SECOND", 5)
    chats = [str(100 + n) for n in range(15)]
    post(client, sender, notification(*chats))

    wait_until(lambda: Message.select().where(Message.state == MessageState.SENT).count() == 15)

    assert len(telegram.arrivals) == 15
    # 15 sends at 5 per one-second window need at least three windows: over a second apart.
    assert max(telegram.arrivals) - min(telegram.arrivals) >= 1.0


# --- accept time ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ["", "   ", "@abcd", "@" + "a" * 33, "@has-dash", "12 34", "chat", "1" * 65, True, 1.5],
)
def test_an_invalid_chat_is_a_400_naming_the_recipient(client, sender, telegram, value):
    body = notification("123456789")
    body["recipients"].append({"type": "telegram", "value": value})

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    assert response.status_code == 400
    errors = response.get_json()["errors"]["recipients"]
    assert list(errors) == ["1"]
    assert list(errors["1"]) == ["value"]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("123456789", "123456789"),
        (" -1001234567890 ", "-1001234567890"),
        (-1001234567890, "-1001234567890"),
        ("@herald_news", "@herald_news"),
    ],
)
def test_chat_ids_and_channel_usernames_are_accepted(client, sender, telegram, value, stored):
    posted = post(client, sender, notification(value))
    assert posted["messages"][0]["destination"] == stored


@pytest.mark.parametrize(
    ("content", "accepted"),
    [
        ({"subject": None, "body": "a" * 4096}, True),
        ({"subject": None, "body": "a" * 4097}, False),
        ({"subject": "s" * 96, "body": "a" * 3999}, True),  # 96 + newline + 3999
        ({"subject": "s" * 96, "body": "a" * 4000}, False),
        ({"subject": None, "body": "😀" * 2048}, True),  # two UTF-16 units each
        ({"subject": None, "body": "😀" * 2049}, False),
        ({"subject": None, "body": "a" * 4076, "actionUrl": "https://e.gov.md/x"}, True),
        ({"subject": None, "body": "a" * 4077, "actionUrl": "https://e.gov.md/x"}, False),
        ({"subject": None, "body": "  \n "}, False),
    ],
)
def test_content_that_cannot_fit_a_telegram_message_is_a_400(
    client, sender, telegram, content, accepted
):
    body = notification()
    body["message"] = {key: value for key, value in content.items() if value is not None}

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    if accepted:
        assert response.status_code == 202
    else:
        assert response.status_code == 400
        assert list(response.get_json()["errors"]["message"]) == ["body"]


# --- the adapter ---------------------------------------------------------------------------
HELLO = Rendered(subject=None, body="Salut")


@pytest.mark.parametrize(
    ("answer", "raised", "reason"),
    [
        (error(400, "Bad Request: chat not found"), PermanentError, "INVALID_DESTINATION"),
        (error(400, "Bad Request: PEER_ID_INVALID"), PermanentError, "INVALID_DESTINATION"),
        (
            error(400, "Bad Request: not enough rights to send text messages to the chat"),
            PermanentError,
            "INVALID_DESTINATION",
        ),
        (
            error(400, "Bad Request: can't parse entities: Unsupported start tag"),
            PermanentError,
            "REJECTED_BY_PROVIDER",
        ),
        (error(403, "Forbidden: user is deactivated"), DeadAddress, "DEAD_ADDRESS"),
        (error(403, "Forbidden: bot was kicked from the group chat"), DeadAddress, "DEAD_ADDRESS"),
        (error(401, "Unauthorized"), TransientError, None),
        (error(404, "Not Found"), TransientError, None),
        (error(500, "Internal Server Error"), TransientError, None),
        (
            Response(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
            TransientError,
            None,
        ),
    ],
)
def test_bot_api_failures_are_classified(telegram, answer, raised, reason):
    telegram.script = [answer]
    with pytest.raises(raised) as caught:
        TelegramChannel().send(HELLO, "123")
    assert type(caught.value) is raised
    if reason:
        assert caught.value.reason == FailureReason(reason)
    assert str(answer.status) in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_retry_after_comes_from_the_answers_parameters(telegram):
    telegram.script = [error(429, "Too Many Requests: retry after 7", retry_after=7)]
    with pytest.raises(TransientError) as caught:
        TelegramChannel().send(HELLO, "123")
    assert caught.value.retry_after == 7


def test_a_group_that_became_a_supergroup_names_its_new_chat(telegram):
    telegram.script = [
        error(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            migrate_to_chat_id=-1001234567890,
        )
    ]
    with pytest.raises(PermanentError) as caught:
        TelegramChannel().send(HELLO, "-4242")
    assert caught.value.reason == FailureReason.INVALID_DESTINATION
    assert "-1001234567890" in str(caught.value)


def test_a_timeout_is_transient_and_does_not_show_the_token(telegram, monkeypatch):
    monkeypatch.setattr(settings, "OUTBOUND_TIMEOUT_SECONDS", 0.2)
    telegram.delay = 1.0
    with pytest.raises(TransientError) as caught:
        TelegramChannel().send(HELLO, "123")
    assert "timed out" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_the_token_is_masked_in_request_logs(telegram, caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3")
    receipt = TelegramChannel().send(HELLO, "123")
    assert receipt.provider_id == "1"
    assert "/bot***/sendMessage" in caplog.text
    assert TOKEN not in caplog.text


def test_html_in_every_part_is_escaped_and_the_link_quote_too():
    text = compose(
        Rendered(subject="a & b", body="<i>x</i>", action_url='https://e.gov.md/?q="x"&y=<1>')
    )
    assert text == (
        "<b>a &amp; b</b>\n&lt;i&gt;x&lt;/i&gt;\n\n"
        '<a href="https://e.gov.md/?q=&quot;x&quot;&amp;y=&lt;1&gt;">'
        'https://e.gov.md/?q="x"&amp;y=&lt;1&gt;</a>'
    )
    assert compose(Rendered(subject=None, body="only")) == "only"


# --- templates -----------------------------------------------------------------------------
def telegram_template(html: str) -> dict:
    return {
        "code": "visit-telegram",
        "name": "Visit (Telegram)",
        "defaultLanguage": "ro",
        "attributes": [{"name": "visitDate", "required": True, "example": "2026-12-01"}],
        "contents": [
            {
                "channel": "telegram",
                "language": "ro",
                "body": "Vizită {{ visitDate | date }}",
                "html": html,
            },
            {"channel": "telegram", "language": "ru", "body": "Визит {{ visitDate | date }}"},
        ],
    }


def test_a_template_reaches_the_bot_api_in_each_language(client, sender, telegram, worker):
    created = client.post(
        "/v1/templates",
        json=telegram_template("Vizită <b>{{ visitDate | date }}</b>"),
        headers=sender.headers,
    )
    assert created.status_code == 201, created.get_json()
    body = {
        "template": "visit-telegram",
        "attributes": {"visitDate": "2026-12-01"},
        "recipients": [
            {"type": "telegram", "value": "111111111"},
            {"type": "telegram", "value": "222222222", "language": "ru"},
        ],
    }
    ids = [m["id"] for m in post(client, sender, body)["messages"]]
    for message_id in ids:
        wait_until(settled(message_id, MessageState.SENT))

    texts = {r.json()["chat_id"]: r.json()["text"] for r in telegram.requests}
    assert texts == {
        "111111111": "Vizită <b>1 decembrie 2026</b>",
        "222222222": "Визит 1 декабря 2026\u202fг.",
    }


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("<p>{{ visitDate }}</p>", "<p> is not allowed in Telegram HTML."),
        ('<a href="x" onclick="y">{{ visitDate }}</a>', "<a onclick=…> is not allowed."),
    ],
)
def test_template_html_for_telegram_is_limited_to_its_tags(client, sender, html, problem):
    response = client.post("/v1/templates", json=telegram_template(html), headers=sender.headers)
    assert response.status_code == 400
    assert response.get_json()["errors"]["contents"]["0"] == {"html": [problem]}

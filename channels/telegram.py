"""Telegram through the Bot API's ``sendMessage``, as HTML so user text is escaped, not parsed.

The bot token is part of the request path, so it never goes into an error message, and it is
masked in urllib3's request log lines.
"""

from __future__ import annotations

import functools
import logging
import re
from html.parser import HTMLParser
from typing import Any

from channel_table import TELEGRAM
from channels import http
from channels.base import (
    Channel,
    DeadAddress,
    InvalidContent,
    InvalidDestination,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
    check_text_length,
)
from models.states import FailureReason
from settings import settings

#: Telegram's limit on a message's text after entity parsing (counted in UTF-16 code units).
MAX_TEXT_LENGTH = 4096
MAX_DESTINATION_LENGTH = 64

_CHAT_ID = re.compile(r"-?[0-9]{1,20}")
_USERNAME = re.compile(r"@[A-Za-z0-9_]{5,32}")

#: Documented 400 descriptions that blame the chat rather than the message (lower case).
DESTINATION_ERRORS = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "chat_id is empty",
    "upgraded to a supergroup",
    "chat_write_forbidden",
    "not enough rights",
    "have no rights",
    "need administrator rights",
)


class TelegramChannel(Channel):
    row = TELEGRAM
    required_settings = ("TELEGRAM_BOT_TOKEN",)

    def parse_destination(self, value: Any) -> str:
        """A chat id (an integer, negative for groups) or a public ``@channelusername``."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        chat = super().parse_destination(value)
        if len(chat) > MAX_DESTINATION_LENGTH or not (
            _CHAT_ID.fullmatch(chat) or _USERNAME.fullmatch(chat)
        ):
            raise InvalidDestination(
                "Must be a numeric chat id (negative for groups) or @channelusername "
                "(5 to 32 letters, digits or underscores)."
            )
        return chat

    def check_content(self, content: dict[str, Any]) -> None:
        shown = visible_text(content.get("subject"), content["body"], content.get("action_url"))
        check_text_length(shown, MAX_TEXT_LENGTH, "Telegram", utf16_length)

    def check_template(self, content: dict[str, Any]) -> None:
        """A Telegram row's ``html`` is sent as Telegram HTML: only the tags Telegram allows."""
        self.check_content(content)
        if content.get("html") and (problem := html_problem(content["html"])):
            raise InvalidContent("html", problem)

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        self.require_configured()
        hide_bot_token()
        payload = {
            "chat_id": destination,
            "text": compose(rendered),
            "parse_mode": "HTML",
            "disable_web_page_preview": True,
        }
        url = (
            f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage"
        )
        response = http.call("POST", url, json=payload)
        answer = http.json_object(response)
        if response.status_code == 200 and answer.get("ok") is True:
            return receipt(answer.get("result"))
        raise classify(answer, response)

    def close(self) -> None:
        http.close_session()


def receipt(result: Any) -> Receipt:
    """The sent message's id (unique within its chat) and, in ``details``, the chat's id."""
    result = result if isinstance(result, dict) else {}
    chat = result.get("chat") if isinstance(result.get("chat"), dict) else {}
    message_id = result.get("message_id")
    return Receipt(
        provider_id=None if message_id is None else str(message_id),
        details={"chatId": chat["id"]} if "id" in chat else {},
    )


def compose(rendered: Rendered) -> str:
    """The message as Telegram HTML: bold subject line, body, then the action link. An ``html``
    part made only of Telegram's tags (a template's Telegram row) is sent instead of the body."""
    parts = []
    if rendered.subject:
        parts.append(f"<b>{escape(rendered.subject)}</b>\n")
    if rendered.html and html_problem(rendered.html) is None:
        parts.append(rendered.html)
    else:
        parts.append(escape(rendered.body))
    if rendered.action_url:
        url = escape(rendered.action_url).replace('"', "&quot;")
        parts.append(f'\n\n<a href="{url}">{escape(rendered.action_url)}</a>')
    return "".join(parts)


#: Telegram's HTML: these tags, with these attributes only.
ALLOWED_TAGS = {
    "b": set(), "strong": set(), "i": set(), "em": set(), "u": set(), "ins": set(),
    "s": set(), "strike": set(), "del": set(), "code": {"class"}, "pre": set(),
    "a": {"href"}, "span": {"class"}, "tg-spoiler": set(), "blockquote": {"expandable"},
}  # fmt: skip


class _TagCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        allowed = ALLOWED_TAGS.get(tag)
        if allowed is None:
            self.problem = self.problem or f"<{tag}> is not allowed in Telegram HTML."
        elif extra := {name for name, _ in attrs} - allowed:
            self.problem = self.problem or f"<{tag} {sorted(extra)[0]}=…> is not allowed."


def html_problem(html: str) -> str | None:
    """Why ``html`` is not Telegram HTML (a tag or attribute Telegram rejects), or None."""
    checker = _TagCheck()
    checker.feed(html)
    checker.close()
    return checker.problem


def visible_text(subject: str | None, body: str, action_url: str | None) -> str:
    """What the recipient sees of :func:`compose`'s HTML: the text Telegram's limit applies to."""
    text = f"{subject}\n{body}" if subject else body
    return f"{text}\n\n{action_url}" if action_url else text


def escape(text: str) -> str:
    """Escape the three characters Telegram's HTML parser treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def classify(answer: dict[str, Any], response: http.Response) -> Exception:
    """The delivery error for a Bot API failure, from its error code and documented description."""
    status = answer.get("error_code")
    if not isinstance(status, int):
        status = response.status_code
    description = redact(str(answer.get("description") or http.snippet(response)))
    parameters = answer.get("parameters")
    if not isinstance(parameters, dict):
        parameters = {}
    message = f"Telegram answered {status}: {description}"
    if "migrate_to_chat_id" in parameters:
        message += f" (the group is now chat {parameters['migrate_to_chat_id']})"
    if status == 429:
        retry_after = parameters.get("retry_after")
        if not isinstance(retry_after, int | float):
            retry_after = http.retry_after(response)
        return TransientError(message, retry_after=retry_after)
    if status == 403:
        return DeadAddress(message)
    if status == 400:
        lowered = description.lower()
        if any(phrase in lowered for phrase in DESTINATION_ERRORS):
            return PermanentError(FailureReason.INVALID_DESTINATION, message)
        return PermanentError(FailureReason.REJECTED_BY_PROVIDER, message)
    if status in (401, 404) or status in http.TRANSIENT_STATUSES or status >= 500:
        return TransientError(message, retry_after=http.retry_after(response))
    if 200 <= status < 300:
        return TransientError(f"Telegram answered {status} without a result: {description}")
    return PermanentError(FailureReason.REJECTED_BY_PROVIDER, message)


def redact(text: str) -> str:
    """``text`` with the bot token masked."""
    token = settings.TELEGRAM_BOT_TOKEN
    return text.replace(token, "***") if token else text


class HideBotToken(logging.Filter):
    """Masks the bot token in log records (urllib3 logs request paths, which carry it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        token = settings.TELEGRAM_BOT_TOKEN
        if token:
            text = record.getMessage()
            if token in text:
                record.msg, record.args = redact(text), None
        return True


@functools.cache
def hide_bot_token() -> None:
    """Install :class:`HideBotToken` on urllib3's request log, once per process: before the
    first request that carries the token, not at import."""
    logging.getLogger("urllib3.connectionpool").addFilter(HideBotToken())

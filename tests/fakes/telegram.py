"""A Telegram Bot API on 127.0.0.1: ``POST /bot<token>/sendMessage`` answered the way Telegram
does — the token checked, the body's shape checked, the HTML parsed (only ``<b>`` and
``<a href>``), the 4096-character limit applied — with chats that do not exist, chats that
blocked the bot, and flood control."""

from __future__ import annotations

import itertools
import threading
import time
from html.parser import HTMLParser

from tests.fakes.http import FakeProvider, Request, Response

FIELDS = {"chat_id", "text", "parse_mode", "disable_web_page_preview"}
ALLOWED_TAGS = {"b": set(), "a": {"href"}}


#: The bot token tests configure (the fake checks it in the request path).
TOKEN = "7000000001:AAHerald-test_token0123456789abcdefgh"


def error(code: int, description: str, **parameters) -> Response:
    body = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Response(code, body)


class EntityParser(HTMLParser):
    """Telegram's HTML parse mode, as far as the adapter uses it: the visible text, the links,
    and the first markup Telegram would refuse."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.links: list[str] = []
        self.bold: list[str] = []
        self.problem: str | None = None
        self.open_tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag not in ALLOWED_TAGS or {name for name, _ in attrs} - ALLOWED_TAGS[tag]:
            self.problem = self.problem or f'Unsupported start tag "{tag}"'
            return
        self.open_tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        if tag == "b":
            self.bold.append("")

    def handle_endtag(self, tag) -> None:
        if not self.open_tags or self.open_tags[-1] != tag:
            self.problem = self.problem or f'Unmatched end tag "{tag}"'
            return
        self.open_tags.pop()

    def handle_data(self, data) -> None:
        self.text += data
        if "b" in self.open_tags:
            self.bold[-1] += data


class TelegramFake(FakeProvider):
    """The Bot API's ``sendMessage``. ``unknown_chats`` answer 400 "chat not found",
    ``blocked_chats`` 403 "bot was blocked by the user"; :meth:`flood_wait` turns on flood
    control. ``arrivals`` are the monotonic times of the requests :meth:`respond` answered;
    ``delivered`` what each accepted message showed (visible text, bold parts, links);
    ``delay`` (seconds) holds every answer back, to make callers time out."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.unknown_chats: set[str] = set()
        self.blocked_chats: set[str] = set()
        self.arrivals: list[float] = []
        self.delivered: list[EntityParser] = []
        self.delay = 0.0
        self._flood_until = 0.0
        self._message_ids = itertools.count(1)
        self._lock = threading.Lock()

    def flood_wait(self, seconds: int) -> None:
        """Answer 429 with ``retry_after`` to every request for the next ``seconds``."""
        self._flood_until = time.monotonic() + seconds

    def respond(self, request: Request) -> Response:
        now = time.monotonic()
        with self._lock:
            self.arrivals.append(now)
        time.sleep(self.delay)
        method = request.path.removeprefix(f"/bot{self.token}/")
        if method == request.path:
            return error(401, "Unauthorized")
        if request.method != "POST" or method != "sendMessage":
            return error(404, "Not Found")
        if now < self._flood_until:
            wait = max(1, round(self._flood_until - now))
            return error(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        return self._send_message(request)

    def _send_message(self, request: Request) -> Response:
        if request.headers.get("Content-Type") != "application/json":
            return error(400, "Bad Request: expected a JSON body")
        body = request.json()
        if set(body) != FIELDS or body["parse_mode"] != "HTML":
            return error(400, f"Bad Request: unexpected fields {sorted(body)}")
        if body["disable_web_page_preview"] is not True:
            return error(400, "Bad Request: link previews must be off")
        chat = str(body["chat_id"])
        if chat in self.unknown_chats:
            return error(400, "Bad Request: chat not found")
        if chat in self.blocked_chats:
            return error(403, "Forbidden: bot was blocked by the user")
        parsed = EntityParser()
        parsed.feed(body["text"])
        parsed.close()
        if parsed.problem or parsed.open_tags:
            problem = parsed.problem or f'Unclosed start tag "{parsed.open_tags[-1]}"'
            return error(400, f"Bad Request: can't parse entities: {problem}")
        if not parsed.text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(parsed.text.encode("utf-16-le")) // 2 > 4096:
            return error(400, "Bad Request: message is too long")
        with self._lock:
            self.delivered.append(parsed)
        return Response(200, {"ok": True, "result": self._message(chat, parsed.text)})

    def _message(self, chat: str, text: str) -> dict:
        chat_id = int(chat) if chat.lstrip("-").isdigit() else -1001000000000
        return {
            "message_id": next(self._message_ids),
            "from": {"id": 7000000001, "is_bot": True, "first_name": "Herald"},
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "channel"},
            "date": int(time.time()),
            "text": text,
        }

"""A Viber REST Bot API on 127.0.0.1: ``POST /send_message`` answered the way Viber does — HTTP
200 with a ``status`` in the JSON — checking the ``X-Viber-Auth-Token`` header and the body's
shape, with receivers that are not on Viber or have unsubscribed; ``POST /set_webhook`` as
Viber does it (a signed ``webhook`` event posted to the URL first, which must answer 200);
and the callbacks Viber posts to a bot's webhook, signed."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time

import requests

from tests.fakes.http import FakeProvider, Request, Response

REQUIRED = {"receiver", "min_api_version", "sender", "type", "text"}


def status(code: int, message: str) -> Response:
    return Response(200, {"status": code, "status_message": message})


class ViberFake(FakeProvider):
    """Viber's ``send_message``. Receivers in ``unregistered`` answer status 5
    (receiverNotRegistered), those in ``unsubscribed`` status 6 (receiverNotSubscribed)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.unregistered: set[str] = set()
        self.unsubscribed: set[str] = set()
        self._tokens = itertools.count(5_491_000_000_000_000_001)
        self.message_tokens: list[int] = []  # the message_token of each message sent

    def respond(self, request: Request) -> Response:
        if request.method != "POST" or request.path not in ("/send_message", "/set_webhook"):
            return Response(404, b"Not Found", {"Content-Type": "text/plain"})
        headers = {name.lower(): value for name, value in request.headers.items()}
        if headers.get("x-viber-auth-token") != self.token:
            return status(2, "invalidAuthToken")
        if request.path == "/set_webhook":
            return self.set_webhook(request.json())
        body = request.json()
        problem = shape_problem(body)
        if problem:
            return status(3, f"badData: {problem}")
        if body["receiver"] in self.unregistered:
            return status(5, "receiverNotRegistered")
        if body["receiver"] in self.unsubscribed:
            return status(6, "receiverNotSubscribed")
        self.message_tokens.append(next(self._tokens))
        return Response(
            200,
            {
                "status": 0,
                "status_message": "ok",
                "message_token": self.message_tokens[-1],
                "chat_hostname": "SN-CHAT-05_",
                "billing_status": 1,
            },
        )

    def set_webhook(self, body) -> Response:
        """Viber's set_webhook: the URL gets a signed ``webhook`` event and must answer 200
        (else status 1, invalidUrl); the answer lists the event types subscribed."""
        kinds = body.get("event_types") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return status(3, "badData: url is required")
        if kinds is not None and not (isinstance(kinds, list) and set(kinds) <= set(SUBSCRIBABLE)):
            return status(3, f"badData: event_types must be among {SUBSCRIBABLE}")
        check = event("webhook", message_token=next(self._tokens))
        try:
            answer = requests.post(
                body["url"],
                data=check,
                headers=signed_headers(self.token, check),
                timeout=10,
            )
        except requests.RequestException as error:
            return status(1, f"invalidUrl: {error}")
        if answer.status_code != 200:
            return status(1, f"invalidUrl: the webhook answered {answer.status_code}")
        return Response(
            200,
            {
                "status": 0,
                "status_message": "ok",
                "chat_hostname": "SN-CHAT-05_",
                "event_types": kinds if kinds is not None else SUBSCRIBABLE,
            },
        )


#: The event types set_webhook may subscribe to (``webhook`` itself always comes).
SUBSCRIBABLE = ["delivered", "seen", "failed", "subscribed", "unsubscribed", "conversation_started"]


def event(kind: str, timestamp_ms: int | None = None, **fields) -> bytes:
    """The body Viber posts to the bot's webhook for an event of ``kind``."""
    payload = {
        "event": kind,
        "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "chat_hostname": "SN-CHAT-05_",
        **fields,
    }
    return json.dumps(payload).encode()


def content_signature(token: str, body: bytes) -> str:
    """X-Viber-Content-Signature as Viber sends it: the hex HMAC-SHA256 of the raw body,
    keyed with the bot's auth token."""
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(token: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Viber-Content-Signature": content_signature(token, body),
    }


def shape_problem(body) -> str | None:
    """What is wrong with a text message's ``send_message`` body, if anything."""
    if not isinstance(body, dict) or set(body) != REQUIRED:
        return f"expected fields {sorted(REQUIRED)}"
    sender = body["sender"]
    if not isinstance(sender, dict) or not sender.get("name") or set(sender) - {"name", "avatar"}:
        return "sender must have a name and optionally an avatar"
    if len(sender["name"]) > 28:
        return "sender name longer than 28 characters"
    if body["type"] != "text" or body["min_api_version"] != 1:
        return "expected a text message with min_api_version 1"
    if not isinstance(body["text"], str) or not body["text"] or len(body["text"]) > 7000:
        return "text must have 1 to 7000 characters"
    return None

"""A Viber REST Bot API on 127.0.0.1: ``POST /send_message`` answered the way Viber does — HTTP
200 with a ``status`` in the JSON — checking the ``X-Viber-Auth-Token`` header and the body's
shape, with receivers that are not on Viber or have unsubscribed."""

from __future__ import annotations

import itertools

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

    def respond(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/send_message":
            return Response(404, b"Not Found", {"Content-Type": "text/plain"})
        headers = {name.lower(): value for name, value in request.headers.items()}
        if headers.get("x-viber-auth-token") != self.token:
            return status(2, "invalidAuthToken")
        body = request.json()
        problem = shape_problem(body)
        if problem:
            return status(3, f"badData: {problem}")
        if body["receiver"] in self.unregistered:
            return status(5, "receiverNotRegistered")
        if body["receiver"] in self.unsubscribed:
            return status(6, "receiverNotSubscribed")
        return Response(
            200,
            {
                "status": 0,
                "status_message": "ok",
                "message_token": next(self._tokens),
                "chat_hostname": "SN-CHAT-05_",
                "billing_status": 1,
            },
        )


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

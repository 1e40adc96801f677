"""Viber through the REST Bot API's ``send_message``.

viberbot builds the text message; the call itself goes through
:mod:`channels.http`, because viberbot's own sender has a fixed base URL in ``Api``, no timeout,
puts the token in the body, logs the whole payload (token included) on errors, and reports a
non-zero status only as a formatted ``Exception`` that would have to be string-matched.
"""

from __future__ import annotations

from typing import Any

import requests
from viberbot.api.consts import BOT_API_ENDPOINT
from viberbot.api.messages.text_message import TextMessage

from channel_table import VIBER
from channels import http
from channels.base import (
    Channel,
    DeadAddress,
    InvalidDestination,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
    check_text_length,
)
from models.states import FailureReason
from settings import settings

#: Viber's limit on a text message, in characters.
MAX_TEXT_LENGTH = 7000
MAX_DESTINATION_LENGTH = 100
#: Viber shows at most this many characters of the sender's name.
MAX_SENDER_NAME_LENGTH = 28

#: Viber REST API statuses (``status`` in the JSON answer, which comes with HTTP 200).
OK = 0
INVALID_AUTH_TOKEN = 2
DEAD_STATUSES = frozenset({5, 6})  # receiverNotRegistered, receiverNotSubscribed
INVALID_DESTINATION_STATUSES = frozenset({11})  # receiverNoSuitableDevice
TRANSIENT_STATUSES = frozenset({12})  # tooManyRequests


class ViberChannel(Channel):
    row = VIBER
    required_settings = ("VIBER_AUTH_TOKEN",)

    def parse_destination(self, value: Any) -> str:
        """A Viber user id, as the bot received it from Viber's callbacks."""
        user = super().parse_destination(value)
        if (
            len(user) > MAX_DESTINATION_LENGTH
            or not user.isprintable()
            or any(char.isspace() for char in user)
        ):
            raise InvalidDestination(
                f"Must be a Viber user id of at most {MAX_DESTINATION_LENGTH} characters "
                "without spaces."
            )
        return user

    def check_content(self, content: dict[str, Any]) -> None:
        text = compose_text(content.get("subject"), content["body"], content.get("action_url"))
        check_text_length(text, MAX_TEXT_LENGTH, "Viber")

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        self.require_configured()
        url = f"{settings.VIBER_API_URL.rstrip('/')}/{BOT_API_ENDPOINT.SEND_MESSAGE}"
        response = http.call(
            "POST",
            url,
            json=payload(rendered, destination),
            headers={"X-Viber-Auth-Token": settings.VIBER_AUTH_TOKEN},
        )
        http.raise_for_status(response)
        answer = _json(response)
        if answer.get("status") == OK:
            return receipt(answer)
        raise classify(answer)

    def close(self) -> None:
        http.close_session()


def payload(rendered: Rendered, destination: str) -> dict[str, Any]:
    """The ``send_message`` body: viberbot's text message plus receiver and sender."""
    text = compose_text(rendered.subject, rendered.body, rendered.action_url)
    message = TextMessage(text=text, min_api_version=1)
    sender = {"name": settings.VIBER_SENDER_NAME[:MAX_SENDER_NAME_LENGTH]}
    if settings.VIBER_SENDER_AVATAR:
        sender["avatar"] = settings.VIBER_SENDER_AVATAR
    return {"receiver": destination, "sender": sender, **message.to_dict()}


def compose_text(subject: str | None, body: str, action_url: str | None) -> str:
    """Subject, a blank line, the body, and the action link on a line of its own."""
    text = f"{subject}\n\n{body}" if subject else body
    return f"{text}\n{action_url}" if action_url else text


def receipt(answer: dict[str, Any]) -> Receipt:
    """The message token as provider id; Viber's billing status, when given, in ``details``."""
    token = answer.get("message_token")
    details = {}
    if "billing_status" in answer:
        details["billingStatus"] = answer["billing_status"]
    return Receipt(provider_id=None if token is None else str(token), details=details)


def classify(answer: dict[str, Any]) -> Exception:
    """The delivery error for a non-zero Viber status.

    5/6 (not on Viber, unsubscribed) are dead addresses; 11 (no device that can receive bot
    messages) is an invalid destination; 12 (rate control) and 2 (bad auth token: our
    configuration, not the message) are retried; anything else — the account blocked (7), not
    found (8), suspended (9), bad data (3) … — is rejected by the provider.
    """
    status = answer.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        return TransientError(f"Viber answered without a status: {str(answer)[:300]}")
    message = f"Viber status {status}: {str(answer.get('status_message', ''))[:300]}"
    if status in DEAD_STATUSES:
        return DeadAddress(message)
    if status in INVALID_DESTINATION_STATUSES:
        return PermanentError(FailureReason.INVALID_DESTINATION, message)
    if status in TRANSIENT_STATUSES or status == INVALID_AUTH_TOKEN:
        return TransientError(message)
    return PermanentError(FailureReason.REJECTED_BY_PROVIDER, message)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {"unparsed": http.snippet(response)}
    return answer if isinstance(answer, dict) else {"unparsed": str(answer)[:300]}

"""Viber through the REST Bot API's ``send_message``.

viberbot builds the text message; the call itself goes through
:mod:`channels.http`, because viberbot's own sender has a fixed base URL in ``Api``, no timeout,
puts the token in the body, logs the whole payload (token included) on errors, and reports a
non-zero status only as a formatted ``Exception`` that would have to be string-matched.

Viber posts delivery events (delivered, seen, failed) and unsubscriptions to the bot's
webhook, which ``herald viber set-webhook`` points at Herald (:func:`set_webhook`), signed with
the auth token (:func:`event_signature_valid`); :data:`EVENT_STATUSES` reads them. An event
names a message by the ``message_token`` its send answered, Herald's provider id.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from viberbot.api.consts import BOT_API_ENDPOINT
from viberbot.api.event_type import EventType
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
from models.receipts import ReceiptStatus
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

#: Where on Herald Viber posts the bot's events.
EVENTS_PATH = "/v1/providers/viber/events"
#: Viber's delivery events, as receipts.
EVENT_STATUSES = {
    EventType.DELIVERED: ReceiptStatus.DELIVERED,
    EventType.SEEN: ReceiptStatus.READ,
    EventType.FAILED: ReceiptStatus.FAILED,
}
#: The events the webhook asks Viber for (``webhook``, its check, always comes).
WEBHOOK_EVENT_TYPES = [*EVENT_STATUSES, EventType.UNSUBSCRIBED]


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


def event_signature(auth_token: str, body: bytes) -> str:
    """The ``X-Viber-Content-Signature`` Viber sends with ``body``: the hex HMAC-SHA256 of the
    raw body, keyed with the bot's auth token."""
    return hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()


def event_signature_valid(auth_token: str, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is Viber's for ``body``, compared in constant time."""
    if not auth_token or not signature:
        return False
    return hmac.compare_digest(event_signature(auth_token, body).encode(), signature.encode())


def set_webhook(url: str) -> list[str]:
    """Point the bot's webhook at ``url`` for :data:`WEBHOOK_EVENT_TYPES` (Viber first posts a
    signed ``webhook`` event there and needs it answered 200); the event types Viber confirms.
    Raises a :class:`DeliveryError` as a send would: TransientError for an unreachable API,
    PermanentError for a refusal (status 1: the URL is invalid or did not answer)."""
    response = http.call(
        "POST",
        f"{settings.VIBER_API_URL.rstrip('/')}/{BOT_API_ENDPOINT.SET_WEBHOOK}",
        json={"url": url, "event_types": WEBHOOK_EVENT_TYPES, "send_name": False},
        headers={"X-Viber-Auth-Token": settings.VIBER_AUTH_TOKEN},
    )
    http.raise_for_status(response)
    answer = _json(response)
    if answer.get("status") != OK:
        raise classify(answer)
    confirmed = answer.get("event_types")
    return [str(kind) for kind in confirmed] if isinstance(confirmed, list) else []


def _json(response: http.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {"unparsed": http.snippet(response)}
    return answer if isinstance(answer, dict) else {"unparsed": str(answer)[:300]}

"""Delivery callbacks: tell a sender's ``callback_url`` when one of its messages is sent,
delivered or failed, with a signed POST (see ``channels.signing``).

A callback never holds up delivery: ``deliver`` enqueues a job on the ``callbacks`` queue after
the outcome is committed, and that job reads the message and the sender's URL and secret when it
runs. Retries (5xx, 408, 425, 429, timeouts, unreachable) use Dramatiq's retry middleware with
``CALLBACK_MAX_RETRIES`` / ``CALLBACK_MIN_BACKOFF_MS`` / ``CALLBACK_MAX_BACKOFF_MS`` and honour
Retry-After; any other answer is logged and dropped. Callbacks are at-least-once while the broker
is up (receivers dedupe on ``messageId`` + ``state``); one whose enqueue finds the broker down is
logged and lost, since the database keeps no record of callbacks owed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import dramatiq

import settings
from channels import http
from channels.base import PermanentError, TransientError
from channels.urlguard import UnsafeURL, check_url
from channels.webhook import MESSAGE_ID_HEADER, post_signed
from models.message import Message
from models.notification import Notification
from models.sender import Sender
from models.states import MessageState

logger = logging.getLogger(__name__)

#: The states a sender is told about.
ANNOUNCED = frozenset({MessageState.SENT, MessageState.DELIVERED, MessageState.FAILED})


def announce(message: Message, state: str, failure_reason: str | None = None) -> None:
    """Enqueue a callback for ``message`` having reached ``state``, if its sender wants them.

    Call it after the state change is committed. Never raises: a broker failure is logged.
    """
    if state not in ANNOUNCED or not message.sender.callback_url:
        return
    try:
        callback_actor.send_with_options(
            args=(str(message.id), str(state), failure_reason and str(failure_reason)),
            min_backoff=settings.CALLBACK_MIN_BACKOFF_MS,
            max_backoff=settings.CALLBACK_MAX_BACKOFF_MS,
        )
    except Exception:
        logger.warning("message %s: broker unavailable, %s callback lost", message.id, state)


def deliver_callback(message_id: str, state: str, failure_reason: str | None = None) -> None:
    """POST the callback for ``message_id`` having reached ``state`` to its sender's URL."""
    message = _message_with_sender(message_id)
    if message is None or not message.sender.callback_url:
        logger.info(
            "message %s: no callback URL (any more); %s callback dropped", message_id, state
        )
        return
    url, secret = message.sender.callback_url, message.sender.callback_secret
    body = json.dumps(callback_payload(message, state, failure_reason), separators=(",", ":"))
    try:
        check_url(url)
        response = post_signed(url, body.encode(), secret, {MESSAGE_ID_HEADER: message_id})
        http.raise_for_status(response)
    except TransientError as error:
        logger.info("message %s: %s callback to retry: %s", message_id, state, error)
        delay = None if error.retry_after is None else int(error.retry_after * 1000)
        raise dramatiq.Retry(str(error), delay=delay) from None
    except (PermanentError, UnsafeURL) as error:
        logger.warning("message %s: %s callback given up: %s", message_id, state, error)


def callback_payload(message: Message, state: str, failure_reason: str | None) -> dict[str, Any]:
    """The JSON object a callback carries. Keys are always present (null when unset)."""
    return {
        "messageId": str(message.id),
        "notificationId": str(message.notification.id),
        "reference": message.notification.reference,
        "channel": message.channel,
        "destination": message.destination,
        "state": state,
        "failureReason": failure_reason,
        "sentAt": _iso(message.sent_at),
        "deliveredAt": _iso(message.delivered_at),
    }


def retry_when(retries: int, error: BaseException) -> bool:
    """Dramatiq's retry predicate: retry what the callback asked to retry, up to the limit."""
    return isinstance(error, dramatiq.Retry) and retries < settings.CALLBACK_MAX_RETRIES


def _message_with_sender(message_id: str) -> Message | None:
    return (
        Message.select(
            Message,
            Notification.id,
            Notification.reference,
            Sender.id,
            Sender.callback_url,
            Sender.callback_secret,
        )
        .join(Notification)
        .switch(Message)
        .join(Sender)
        .where(Message.id == message_id)
        .first()
    )


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


#: Dramatiq's retries drive callbacks: nothing about them is kept in the database.
callback_actor = dramatiq.actor(
    deliver_callback,
    actor_name="deliver_callback",
    queue_name="callbacks",
    retry_when=retry_when,
    time_limit=int(settings.OUTBOUND_TIMEOUT_SECONDS * 3 * 1000),
)

"""Delivery callbacks: tell a sender's ``callback_url`` when one of its messages is sent,
delivered or failed, with a POST signed with the sender's callback secret, which signs nothing
else (see ``channels.signing``; ``webhook-id`` is the callback's id, the same on every retry).

A callback goes through the same outbox as messages: the callback owed is a row
(``models.callback``), stored in the transaction of the outcome that causes it, then a job is
enqueued on the ``callbacks`` queue. If the broker is down, or the job is lost, the scheduler's
replay job enqueues it again. The job reads the message and the sender's URL and secret when it
runs, and removes the row once the callback is delivered or given up. Retries (5xx, 408, 425,
429, timeouts, unreachable) are Dramatiq's retry middleware redelivering the job, after
``CALLBACK_MIN_BACKOFF_MS`` doubling up to ``CALLBACK_MAX_BACKOFF_MS`` or the receiver's
Retry-After, up to ``CALLBACK_MAX_RETRIES``; any other answer is logged and dropped. A callback
never holds up delivery. Callbacks are at least once (receivers dedupe on ``messageId`` +
``state``); a job holds its row while it posts, so a duplicated job posts nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.common import compute_backoff

from channels import http
from channels.base import PermanentError, TransientError
from channels.urlguard import UnsafeURL, check_url
from channels.webhook import MESSAGE_ID_HEADER, post_signed
from models.base import utcnow
from models.callback import Callback, forget_callback, postpone_callback, take_callback
from models.message import Message
from models.notification import Notification
from models.privacy import destination_as_shown
from models.sender import Sender
from settings import settings
from tasks import metrics
from tasks.broker import BROKER_ERRORS, breaker, enqueue_many
from tasks.logs import log_context

logger = logging.getLogger(__name__)

#: How long one callback job may run (Dramatiq's time limit), and holds its row meanwhile.
LEASE_SECONDS = settings.OUTBOUND_TIMEOUT_SECONDS * 3


def enqueue_callbacks(callback_ids: list, force: bool = False) -> int:
    """Enqueue a job for each stored callback; how many went out. A broker failure is logged:
    the rows wait for the replay job. Nothing is tried while the broker breaker is open, unless
    ``force`` (the replay job)."""
    if not callback_ids:
        return 0
    if not force and breaker.skips():
        logger.debug("broker breaker open: %d callbacks wait for the replay job", len(callback_ids))
        return 0
    jobs = [callback_actor.message(str(callback_id)) for callback_id in callback_ids]
    try:
        with breaker.watch():
            enqueue_many(callback_actor.broker, jobs)
    except BROKER_ERRORS as error:
        logger.warning(
            "broker unavailable (%r): %d callbacks wait for the replay job", error, len(jobs)
        )
        return 0
    return len(jobs)


def deliver_callback(callback_id: str) -> None:
    """POST the callback stored as ``callback_id`` to its sender's URL, if it is still owed."""
    callback = take_callback(callback_id, LEASE_SECONDS)
    if callback is None:
        logger.debug("callback %s: delivered, given up or held by another job", callback_id)
        return
    with log_context(message_id=callback.message_id, attempt=callback.attempts):
        message = _message_with_sender(callback.message_id)
        if message is None or not message.sender.callback_url:
            logger.info("callback %s: no callback URL (any more); dropped", callback_id)
            forget_callback(callback)
            metrics.callback("dropped")
            return
        with log_context(
            notification_id=message.notification_id,
            channel=message.channel,
            sender=message.sender_id,
        ):
            _deliver(message, callback)


def _deliver(message: Message, callback: Callback) -> None:
    if callback.attempts > 1 + settings.CALLBACK.MAX_RETRIES:  # its jobs died or were lost
        _give_up(callback, "no attempts left")
        return
    try:
        _post(message, callback)
    except TransientError as error:
        _retry_or_give_up(callback, error)
    except (PermanentError, UnsafeURL) as error:
        _give_up(callback, error)
    else:
        forget_callback(callback)
        metrics.callback("delivered")


def _post(message: Message, callback: Callback) -> None:
    url, secret = message.sender.callback_url, message.sender.callback_secret
    assert url, "deliver_callback drops the callbacks of senders without a URL"
    payload = callback_payload(message, callback.state, callback.failure_reason)
    body = json.dumps(payload, separators=(",", ":"))
    target = check_url(url)
    secrets = (secret,) if secret else ()
    response = post_signed(
        target, body.encode(), secrets, str(callback.id), {MESSAGE_ID_HEADER: str(message.id)}
    )
    http.raise_for_status(response)


def _retry_or_give_up(callback: Callback, error: TransientError) -> None:
    """Have Dramatiq deliver the job again after a backoff (or the receiver's Retry-After),
    or give up past CALLBACK_MAX_RETRIES."""
    if callback.attempts > settings.CALLBACK.MAX_RETRIES:
        _give_up(callback, f"retries exhausted: {error}")
        return
    if error.retry_after is not None:
        delay_ms = int(error.retry_after * 1000)
    else:
        _, delay_ms = compute_backoff(
            callback.attempts - 1,
            factor=settings.CALLBACK.MIN_BACKOFF_MS,
            max_backoff=settings.CALLBACK.MAX_BACKOFF_MS,
        )
    postpone_callback(callback, utcnow() + timedelta(milliseconds=delay_ms))
    metrics.callback("retried")
    logger.info("message %s: %s callback to retry: %s", callback.message_id, callback.state, error)
    raise dramatiq.Retry(str(error), delay=delay_ms) from None


def _give_up(callback: Callback, why) -> None:
    logger.warning("message %s: %s callback given up: %s", callback.message_id, callback.state, why)
    forget_callback(callback)
    metrics.callback("given_up")


def callback_payload(message: Message, state: str, failure_reason: str | None) -> dict[str, Any]:
    """The JSON object a callback carries. Keys are always present (null when unset). It goes
    to the message's sender, so the destination is shown as that sender may see it (an address
    found in the contact registry masked without ``contacts:read``; see ``models.privacy``)."""
    return {
        "messageId": str(message.id),
        "notificationId": str(message.notification.id),
        "reference": message.notification.reference,
        "channel": message.channel,
        "destination": destination_as_shown(message.sender, message),
        "state": state,
        "failureReason": failure_reason,
        "sentAt": _iso(message.sent_at),
        "deliveredAt": _iso(message.delivered_at),
        "readAt": _iso(message.read_at),
    }


def retry_when(retries: int, error: BaseException) -> bool:
    """Dramatiq's retry predicate: retry what the callback asked to retry, up to the limit
    (the row's own count, which replays do not reset, decides first)."""
    return isinstance(error, dramatiq.Retry) and retries < settings.CALLBACK.MAX_RETRIES


def _message_with_sender(message_id: str) -> Message | None:
    return (
        Message.select(
            Message,
            Notification.id,
            Notification.reference,
            Sender.id,
            Sender.callback_url,
            Sender.callback_secret,
            Sender.is_admin,
            Sender.permissions,
        )
        .join(Notification)
        .switch(Message)
        .join(Sender)
        .where(Message.id == message_id)
        .first()
    )


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


#: The callbacks queue's actor; Dramatiq's retry middleware redelivers it for retries.
callback_actor = dramatiq.actor(
    actor_name="deliver_callback",
    queue_name="callbacks",
    retry_when=retry_when,
    time_limit=int(LEASE_SECONDS * 1000),
)(deliver_callback)

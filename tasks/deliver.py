"""The ``deliver`` job: claim one message, hand it to its channel, record how it went.

There is one actor per channel (``deliver_email``, …), each on the queue named after its
channel, so operators can dedicate workers with ``dramatiq tasks --queues email``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from datetime import timedelta

import dramatiq
from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

import settings
from channels import REGISTRY, get_channel
from channels.base import Channel, DeadAddress, PermanentError, TransientError, channel_setting
from models.base import utcnow
from models.contact import deactivate_channel, quiet_hours_of, quiet_until
from models.message import (
    Message,
    claim_message,
    end_chain,
    finish_attempt,
    next_in_chain,
    unclaim,
)
from models.states import AttemptOutcome, FailureReason, MessageState
from tasks.broker import enqueue_many, redis_client
from tasks.callbacks import announce
from tasks.render import render

logger = logging.getLogger(__name__)

#: In-app messages are inbox entries: they never wait for quiet hours.
INAPP = "inapp"

#: Jobs per Redis pipeline when enqueueing many.
ENQUEUE_BATCH = 1000


def deliver(message_id: str, channel_name: str | None = None) -> None:
    """Deliver one message, if it is still ours to deliver.

    ``channel_name`` lets a rate-limited channel defer the job before touching the database.
    """
    if channel_name and not rate_allows(get_channel(channel_name)):
        enqueue([(message_id, channel_name)], delay_ms=random.randint(200, 1000), quiet=True)
        return
    message = claim_message(message_id, settings.DELIVERY_LEASE_SECONDS)
    if message is None:
        logger.debug("message %s: nothing to claim", message_id)
        return
    if not still_wanted(message):
        return
    channel = get_channel(message.channel)
    started_at = utcnow()
    try:
        rendered = render(message)
        receipt = channel.send(rendered, message.destination)
    except TransientError as error:
        retry_or_fail(channel, message, started_at, str(error), error.retry_after)
    except DeadAddress as error:
        _fail(message, started_at, AttemptOutcome.DEAD_ADDRESS, error.reason, str(error))
    except PermanentError as error:
        _fail(message, started_at, AttemptOutcome.PERMANENT, error.reason, str(error))
    except Exception as error:  # an adapter bug or an unforeseen library error
        logger.exception("message %s: unexpected error from %s", message_id, channel.name)
        retry_or_fail(channel, message, started_at, f"unexpected error: {error!r}", None)
    else:
        state = receipt.state or MessageState.SENT
        if finish_attempt(
            message,
            AttemptOutcome.SENT,
            started_at=started_at,
            state=state,
            provider_id=receipt.provider_id,
            details=receipt.details,
            rendered=(rendered.subject, rendered.body),
        ):
            settled(message, state)


def still_wanted(message: Message) -> bool:
    """Before sending a claimed message: past its notification's ``valid_till`` it expires
    (in-app) or fails with EXPIRED (push); inside its contact's quiet hours a non-urgent push
    goes back to ``scheduled`` until they end. Returns whether to send it now."""
    now = utcnow()
    notification = message.notification
    inapp = message.channel == INAPP
    if notification.valid_till and notification.valid_till <= now:
        if inapp:
            unclaim(message, MessageState.EXPIRED, due_at=None)
        elif unclaim(
            message, MessageState.FAILED, failure_reason=FailureReason.EXPIRED, due_at=None
        ):
            announce(message, MessageState.FAILED, FailureReason.EXPIRED)
        return False
    if inapp or notification.urgent or not message.contact_id:
        return True
    until = quiet_until(quiet_hours_of(message.contact_id), now)
    if until is None:
        return True
    logger.info("message %s: quiet hours until %s", message.id, until.isoformat())
    unclaim(message, MessageState.SCHEDULED, due_at=until)
    return False


def _fail(message, started_at, outcome, reason, error) -> None:
    logger.info("message %s failed: %s: %s", message.id, reason, error)
    if finish_attempt(
        message,
        outcome,
        started_at=started_at,
        state=MessageState.FAILED,
        failure_reason=reason,
        error=error,
    ):
        settled(message, MessageState.FAILED, reason, error)


def settled(message: Message, state: str, reason: str | None = None, error: str = "") -> None:
    """What follows a final outcome: the sender's callback; for a failure, a dead address
    switched off in the contact registry and the next channel of a fallback chain queued; for
    a success, the rest of the chain cancelled."""
    announce(message, state, reason)
    if state != MessageState.FAILED:
        if message.fallback_rank is not None:
            end_chain(message)
        return
    if reason == FailureReason.DEAD_ADDRESS and message.contact_id:
        recipient_type = get_channel(message.channel).recipient_type
        deactivate_channel(message.contact_id, recipient_type, message.destination, error)
    if message.fallback_rank is not None and (follow := next_in_chain(message)):
        enqueue([follow], quiet=True)


def retry_or_fail(
    channel: Channel, message: Message, started_at, error: str, retry_after: float | None
) -> None:
    """Schedule the next attempt with backoff, or fail with RETRIES_EXHAUSTED past the limit."""
    if message.attempts > channel_setting(channel, "MAX_RETRIES"):
        _fail(message, started_at, AttemptOutcome.TRANSIENT, FailureReason.RETRIES_EXHAUSTED, error)
        return
    delay_ms = retry_delay_ms(
        message.attempts,
        channel_setting(channel, "MIN_BACKOFF_MS"),
        channel_setting(channel, "MAX_BACKOFF_MS"),
        retry_after,
    )
    due_at = utcnow() + timedelta(milliseconds=delay_ms)
    recorded = finish_attempt(
        message,
        AttemptOutcome.TRANSIENT,
        started_at=started_at,
        state=MessageState.RETRYING,
        error=error,
        due_at=due_at,
    )
    if recorded:
        logger.info(
            "message %s: retry %d in %d ms: %s", message.id, message.attempts, delay_ms, error
        )
        enqueue([(str(message.id), channel.name)], delay_ms=delay_ms, quiet=True)


_limiters: dict[str, WindowRateLimiter] = {}


def rate_allows(channel: Channel) -> bool:
    """Take a slot in the channel's rate window, shared by all workers through Redis: a rate of
    0.2/s is 1 send per 5 s window, 2.5/s is 5 per 2 s (``settings.rate_window``)."""
    rate = channel_setting(channel, "RATE_LIMIT_PER_SECOND")
    if not rate:
        return True
    limit, window = settings.rate_window(rate)
    limiter = _limiters.get(channel.name)
    if limiter is None or (limiter.limit, limiter.window) != (limit, window):
        backend = RedisBackend(client=redis_client())
        key = f"herald:rate:{channel.name}"
        limiter = WindowRateLimiter(backend, key, limit=limit, window=window)
        _limiters[channel.name] = limiter
    with limiter.acquire(raise_on_failure=False) as acquired:
        return acquired


def retry_delay_ms(attempt: int, min_ms: int, max_ms: int, retry_after: float | None) -> int:
    """Exponential backoff with jitter; a provider's Retry-After wins when it is given."""
    if retry_after is not None:
        return max(0, int(retry_after * 1000))
    ceiling = min(max_ms, min_ms * 2 ** (attempt - 1))
    return int(random.uniform(ceiling / 2, ceiling))


#: One actor per channel; Dramatiq's own retries are off because the database drives retries.
ACTORS: dict[str, dramatiq.Actor] = {
    name: dramatiq.actor(
        deliver,
        actor_name=f"deliver_{name}",
        queue_name=name,
        max_retries=0,
        time_limit=settings.DELIVERY_LEASE_SECONDS * 1000,
    )
    for name in REGISTRY
}


def enqueue(
    items: Iterable[tuple[str, str]], delay_ms: int | None = None, quiet: bool = False
) -> int:
    """Enqueue a ``deliver`` job for each (message id, channel); return how many went out.

    With ``quiet``, a broker failure is logged rather than raised: the messages stay in the
    database and the scheduler's replay job enqueues them once the broker is back.
    """
    items = list(items)
    try:
        if delay_ms is None and len(items) > 1:
            for start in range(0, len(items), ENQUEUE_BATCH):
                batch = items[start : start + ENQUEUE_BATCH]
                jobs = [ACTORS[c].message(str(message_id), c) for message_id, c in batch]
                enqueue_many(dramatiq.get_broker(), jobs)
        else:
            for message_id, channel in items:
                ACTORS[channel].send_with_options(args=(str(message_id), channel), delay=delay_ms)
    except Exception:
        if not quiet:
            raise
        logger.warning("broker unavailable: %d messages wait for the replay job", len(items))
        return 0
    return len(items)

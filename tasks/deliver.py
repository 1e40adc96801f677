"""The ``deliver`` job: claim one message, hand it to its channel, record how it went.

There is one actor per channel (``deliver_email``, …), each on the queue named after its
channel, so operators can dedicate workers with ``dramatiq tasks.worker --queues email``.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from time import perf_counter
from uuid import UUID

import dramatiq
from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from channel_table import CHANNELS, INAPP, WEBHOOK
from channels import get_channel
from channels.base import (
    Channel,
    DeadAddress,
    PermanentError,
    Receipt,
    Rendered,
    TransientError,
)
from models.base import utcnow
from models.callback import owed_callback
from models.contact import quiet_hours_of, quiet_until
from models.db import write_transaction
from models.fallback_chain import end_chain, next_in_chain
from models.message import (
    Message,
    claim_message,
    finish_attempt,
    peek_message,
    unclaim,
)
from models.notification import notification_deleted
from models.states import AttemptOutcome, FailureReason, MessageState
from models.webhook_endpoint import endpoint_signing_secrets
from settings import settings
from tasks import metrics
from tasks.broker import BROKER_ERRORS, breaker, enqueue_many, redis_client
from tasks.callbacks import enqueue_callbacks
from tasks.errors import TaskError
from tasks.logs import log_context
from tasks.receipts import switch_off_address
from templating.render import render

logger = logging.getLogger(__name__)

#: Jobs per Redis pipeline when enqueueing many.
ENQUEUE_BATCH = 1000


def deliver(message_id: str, channel_name: str | None = None) -> None:
    """Deliver one message, if it is still ours to deliver.

    ``channel_name`` lets a rate-limited channel defer the job before touching the database,
    and an in-app message skip the claim (:func:`_store_unclaimed`). However a claimed send
    ends (the provider's answer, an error, an interrupt such as Dramatiq's time limit), an
    attempt is recorded and the message leaves ``sending``; an interrupt is raised again once
    it is recorded.
    """
    with log_context(message_id=message_id, channel=channel_name):
        if channel_name and not rate_allows(get_channel(channel_name)):
            enqueue([(message_id, channel_name)], delay_ms=random.randint(200, 1000), quiet=True)
            return
        if channel_name == INAPP.name and _store_unclaimed(message_id):
            return
        message = claim_message(message_id, settings.DELIVERY_LEASE_SECONDS)
        if message is None:
            logger.debug("message %s: nothing to claim", message_id)
            return
        with _message_context(message):
            if still_wanted(message):
                _send(message)


def _message_context(message: Message):
    return log_context(
        notification_id=message.notification_id,
        channel=message.channel,
        attempt=message.attempts,
        sender=message.sender_id,
    )


def _store_unclaimed(message_id: str) -> bool:
    """Deliver an in-app message, whose send is only its outcome's write, with one commit: read
    unclaimed, rendered, then claimed and recorded in one statement (fenced on the attempt count
    read). Nothing is written before it: a worker that dies first leaves the message queued for
    the replay job. Returns False when the message takes the claiming path instead: not in-app,
    its notification deleted or expired, or its render failing (recorded there)."""
    message = peek_message(message_id)
    if message is None:
        logger.debug("message %s: nothing to claim", message_id)
        return True
    valid_till = message.notification.valid_till
    if message.channel != INAPP.name or (valid_till and valid_till <= utcnow()):
        return False
    with _message_context(message):
        if notification_deleted(message.notification_id):
            return False
        started_at = utcnow()
        try:
            rendered = render(message)
        except Exception:  # recorded by the claiming path, which renders again
            return False
        receipt = _provider_call(get_channel(INAPP.name), rendered, message.destination)
        _until_recorded(sent, message, started_at, rendered, receipt, False)
    return True


def _send(message: Message) -> None:
    """Render and send a claimed message, and record how it went (see :func:`deliver`)."""
    channel = get_channel(message.channel)
    started_at = utcnow()
    try:
        rendered = _signed_by_endpoint(message, render(message))
        receipt = _provider_call(channel, rendered, message.destination)
    except Exception as error:  # the job's boundary: any failure is recorded (send_failed)
        _until_recorded(send_failed, channel, message, started_at, error)
    except BaseException as interrupt:
        _until_recorded(send_failed, channel, message, started_at, interrupt)
        raise
    else:
        _until_recorded(sent, message, started_at, rendered, receipt)


def _signed_by_endpoint(message: Message, rendered: Rendered) -> Rendered:
    """``rendered`` with the secrets of the sender's webhook endpoint at the destination, for a
    webhook to a registered endpoint (others are signed with the sender's webhook secret)."""
    if message.channel != WEBHOOK.name or not isinstance(message.destination, str):
        return rendered
    endpoint_secrets = endpoint_signing_secrets(message.sender_id, message.destination)
    return replace(rendered, endpoint_secrets=endpoint_secrets) if endpoint_secrets else rendered


def _provider_call(channel: Channel, rendered: Rendered, destination) -> Receipt:
    """``channel.send``, timed (``herald_send_duration_seconds``) however it ends."""
    started = perf_counter()
    try:
        return channel.send(rendered, destination)
    finally:
        metrics.send_took(channel.name, perf_counter() - started)


def _until_recorded(record, *args) -> None:
    """Run ``record(*args)``; if an interrupt lands in it, run it once more, then let the
    interrupt go on. A second run is harmless: if the first one's outcome was committed, the
    fence in ``finish_attempt`` refuses the second."""
    try:
        record(*args)
    except Exception:
        raise
    except BaseException:
        record(*args)
        raise


def sent(
    message: Message, started_at, rendered: Rendered, receipt: Receipt, claimed: bool = True
) -> None:
    """Record a send the provider accepted, with what was sent; then what follows it. Not
    ``claimed``: the message is claimed by the same statement (see :func:`_store_unclaimed`)."""
    state = receipt.state or MessageState.SENT
    if _record(
        message,
        AttemptOutcome.SENT,
        state,
        started_at=started_at,
        provider_id=receipt.provider_id,
        details=receipt.details,
        rendered=(rendered.subject, rendered.body),
        claimed=claimed,
    ):
        logger.info("message %s: %s", message.id, state)
        metrics.sent_after_accept(message.channel, message.created_at)


def send_failed(channel: Channel, message: Message, started_at, error: BaseException) -> None:
    """Record a send that ended in ``error``: as its adapter classified it; retried when it is
    an unforeseen error or an interrupt (see :func:`interrupted`)."""
    if isinstance(error, TransientError):
        retry_or_fail(channel, message, started_at, str(error), error.retry_after)
    elif isinstance(error, DeadAddress):
        _fail(message, started_at, AttemptOutcome.DEAD_ADDRESS, error.reason, str(error))
    elif isinstance(error, PermanentError):
        _fail(message, started_at, AttemptOutcome.PERMANENT, error.reason, str(error))
    elif isinstance(error, Exception):  # an adapter bug or an unforeseen library error
        logger.error(
            "message %s: unexpected error from %s", message.id, channel.name, exc_info=error
        )
        retry_or_fail(channel, message, started_at, f"unexpected error: {error!r}", None)
    else:
        interrupted(channel, message, started_at, error)


def interrupted(channel: Channel, message: Message, started_at, interrupt: BaseException) -> None:
    """Record a send cut short by an interrupt (Dramatiq's time limit on a render or provider
    call that did not finish, a shutdown) as a transient failure, and close this thread's
    connection of the channel, left mid-call.

    Transient, because whether the provider took the message is unknown and a provider that
    hangs is most often one having an outage, which a later attempt may get through; and the
    retry limit bounds it: a message whose send never finishes ends RETRIES_EXHAUSTED instead
    of coming back to ``sending`` with every lease.
    """
    name = type(interrupt).__name__
    logger.warning("message %s: interrupted (%s) while sending", message.id, name)
    retry_or_fail(channel, message, started_at, f"interrupted ({name}) before the send ended", None)
    channel.close()


def still_wanted(message: Message) -> bool:
    """Before sending a claimed message: if its notification was deleted (read now, not from
    this process's cache: a delete cancels only the messages no worker had claimed yet) it
    ends ``cancelled``; past the notification's ``valid_till`` it expires (in-app) or fails
    with EXPIRED (push); inside its contact's quiet hours a non-urgent push goes back to
    ``scheduled`` until they end. Returns whether to send it now."""
    if notification_deleted(message.notification_id):
        logger.info("message %s: its notification was deleted", message.id)
        unclaim(message, MessageState.CANCELLED, due_at=None)
        return False
    now = utcnow()
    notification = message.notification
    inapp = message.channel == INAPP.name  # an inbox entry: it never waits for quiet hours
    if notification.valid_till and notification.valid_till <= now:
        if inapp:
            unclaim(message, MessageState.EXPIRED, due_at=None)
        else:
            _expire(message)
        return False
    if inapp or notification.urgent or not message.contact_id:
        return True
    until = quiet_until(quiet_hours_of(message.contact_id), now)
    if until is None:
        return True
    logger.info("message %s: quiet hours until %s", message.id, until.isoformat())
    unclaim(message, MessageState.SCHEDULED, due_at=until)
    return False


def _expire(message: Message) -> None:
    """Fail a claimed push message that is past its ``valid_till`` with EXPIRED, and store the
    callback it owes in the same transaction; enqueue it once committed."""
    owed = owed_callback(message, MessageState.FAILED, FailureReason.EXPIRED)
    with write_transaction():
        expired = unclaim(
            message, MessageState.FAILED, failure_reason=FailureReason.EXPIRED, due_at=None
        )
        if expired and owed:
            owed.store()
    if expired and owed:
        enqueue_callbacks([owed.id])


def _record(message: Message, outcome: AttemptOutcome, state: MessageState, **attempt) -> bool:
    """Record the attempt (:func:`finish_attempt`) and, in the same transaction, the callback
    the outcome owes the sender, the switch-off of an address its provider reported dead and,
    for a success, the cancelling of the rest of its fallback chain (so a crash cannot keep the
    one without the other); enqueue that callback once committed.
    Returns whether the attempt was recorded (False: fenced out)."""
    owed = owed_callback(message, state, attempt.get("failure_reason"))
    work: list[Callable[[], object]] = [owed.store] if owed else []
    if attempt.get("failure_reason") == FailureReason.DEAD_ADDRESS and message.contact_id:
        work.append(functools.partial(switch_off_address, message, attempt.get("error")))
    if outcome == AttemptOutcome.SENT and message.fallback_rank is not None:
        work.append(functools.partial(end_chain, message))  # the rest of its chain is not needed
    recorded = finish_attempt(
        message, outcome, state=state, also=_together(work) if work else None, **attempt
    )
    if recorded:
        metrics.delivery(message.channel, outcome, attempt.get("failure_reason"))
    if recorded and owed:
        enqueue_callbacks([owed.id])
    return recorded


def _together(work: Sequence[Callable[[], object]]) -> Callable[[], None]:
    def run() -> None:
        for step in work:
            step()

    return run


def _fail(message, started_at, outcome, reason, error) -> None:
    logger.info("message %s failed: %s: %s", message.id, reason, error)
    if _record(
        message,
        outcome,
        MessageState.FAILED,
        started_at=started_at,
        failure_reason=reason,
        error=error,
    ):
        _fall_back(message)


def _fall_back(message: Message) -> None:
    """After a failure (its callback and any switch-off of a dead address are committed with
    it): the next channel of its fallback chain queued. A success ends its chain in the
    transaction that records it (:func:`_record`)."""
    if message.fallback_rank is not None and (follow := next_in_chain(message)):
        enqueue([follow], quiet=True)


def retry_or_fail(
    channel: Channel, message: Message, started_at, error: str, retry_after: float | None
) -> None:
    """Schedule the next attempt with backoff, or fail with RETRIES_EXHAUSTED past the limit."""
    retries = settings.channel(channel.settings_prefix)
    if message.attempts > retries.MAX_RETRIES:
        _fail(message, started_at, AttemptOutcome.TRANSIENT, FailureReason.RETRIES_EXHAUSTED, error)
        return
    delay_ms = retry_delay_ms(
        message.attempts, retries.MIN_BACKOFF_MS, retries.MAX_BACKOFF_MS, retry_after
    )
    due_at = utcnow() + timedelta(milliseconds=delay_ms)
    recorded = _record(
        message,
        AttemptOutcome.TRANSIENT,
        MessageState.RETRYING,
        started_at=started_at,
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
    0.2/s is 1 send per 5 s window, 2.5/s is 5 per 2 s (``ChannelSettings.rate_window``)."""
    rate = settings.channel(channel.settings_prefix)
    if not rate.RATE_LIMIT_PER_SECOND:
        return True
    limit, window = rate.rate_window()
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
    row.name: dramatiq.actor(
        actor_name=f"deliver_{row.name}",
        queue_name=row.queue,
        max_retries=0,
        time_limit=settings.DELIVERY_LEASE_SECONDS * 1000,
    )(deliver)
    for row in CHANNELS
}


class UnknownChannel(TaskError, LookupError):
    """A message names a channel Herald has no ``deliver`` actor for: bad data or a bug, never
    a broker outage."""


def enqueue(
    items: Iterable[tuple[str | UUID, str]],
    delay_ms: int | None = None,
    quiet: bool = False,
    rejected: list[tuple[str, str, Exception]] | None = None,
) -> int:
    """Enqueue a ``deliver`` job for each (message id, channel); return how many went out.

    With ``quiet``, a broker failure (:data:`~tasks.broker.BROKER_ERRORS`) is logged rather than
    raised, and nothing is tried while the :data:`~tasks.broker.breaker` is open: the messages
    stay in the database and the scheduler's replay job enqueues them once the broker is back.
    Without it (the replay job) the broker is always tried. An item whose job cannot be built
    (:class:`UnknownChannel`, or any other error of that row) raises before anything is
    enqueued, or, given a ``rejected`` list, is appended to it as (message id, channel, error)
    and skipped, so the other items still go.
    """
    jobs = _deliver_jobs(items, rejected)
    if not jobs:
        return 0
    if quiet and breaker.skips():
        logger.debug("broker breaker open: %d messages wait for the replay job", len(jobs))
        return 0
    broker, sent = dramatiq.get_broker(), 0
    try:
        with breaker.watch():
            if delay_ms is None and len(jobs) > 1:
                for start in range(0, len(jobs), ENQUEUE_BATCH):
                    batch = jobs[start : start + ENQUEUE_BATCH]
                    enqueue_many(broker, batch)
                    sent += len(batch)
            else:
                for job in jobs:
                    broker.enqueue(job, delay=delay_ms)
                    sent += 1
    except BROKER_ERRORS:
        if not quiet:
            raise
        waiting = len(jobs) - sent
        logger.warning("broker unavailable: %d messages wait for the replay job", waiting)
    return sent


def _deliver_jobs(
    items: Iterable[tuple[str | UUID, str]], rejected: list[tuple[str, str, Exception]] | None
) -> list[dramatiq.Message]:
    jobs = []
    for message_id, channel in items:
        try:
            actor = ACTORS.get(channel)
            if actor is None:
                raise UnknownChannel(f"no deliver actor for channel {channel!r}")
            jobs.append(actor.message(str(message_id), channel))
        except Exception as error:  # one row's boundary: it must not hold up the others
            if rejected is None:
                raise
            rejected.append((str(message_id), channel, error))
    return jobs

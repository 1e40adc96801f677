"""Receipts, from whichever process takes them in (the web process's provider endpoints, the
bounce receiver): applied to the message (``models.receipts``), then what follows a change —
the sender's callback enqueued, an undeliverable address switched off in the contact
registry."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from channels import get_channel
from models.base import utcnow
from models.contact import deactivate_channel
from models.early_receipt import drop_expired_early, forget_early, keep_early, matched_early
from models.message import Message
from models.receipts import (
    MAX_RECEIPT_ERROR,
    ReceiptOutcome,
    ReceiptStatus,
    apply_receipt,
    message_by_id,
    message_for_provider_id,
)
from models.states import FailureReason
from settings import settings
from tasks import metrics
from tasks.callbacks import enqueue_callbacks
from tasks.logs import log_context

logger = logging.getLogger(__name__)


def receipt_for_provider_id(
    channel: str,
    provider_id: str,
    status: ReceiptStatus,
    *,
    at: datetime | None = None,
    failure_reason: FailureReason | None = None,
    error: str | None = None,
) -> ReceiptOutcome | None:
    """Apply a receipt for the message ``channel``'s provider knows as ``provider_id``; None
    when no message is known by it (never sent by Herald, or purged after retention). A
    failure switches the contact's address off when its reason is DEAD_ADDRESS only: a
    provider's other failures (carrier filtering, the account's own limits) say nothing
    against the address."""
    message = message_for_provider_id(channel, provider_id)
    if message is None:
        # perhaps sooner than the worker recorded the send: kept, and applied once it has
        at = at or utcnow()
        kept = keep_early(channel, provider_id, status, at, failure_reason, _cut(error))
        logger.info(
            "%s %s receipt for a provider id not known yet (kept: %s)", channel, status, kept
        )
        metrics.receipt(channel, status, "kept_early" if kept else "unknown_message")
        return None
    switch_off = failure_reason == FailureReason.DEAD_ADDRESS
    return _applied(message, status, at, failure_reason, error, switch_off)


def apply_early_receipts(now: datetime, batch: int = 500) -> dict[str, int]:
    """Apply the kept receipts whose message now carries their provider id, in arrival order,
    and drop those that found none within EARLY_RECEIPT_TTL_SECONDS (the scheduler's job)."""
    applied = 0
    while matched := matched_early(batch):
        for receipt, message in matched:
            reason = receipt.failure_reason
            switch_off = reason == FailureReason.DEAD_ADDRESS
            status = ReceiptStatus(receipt.status)
            _applied(message, status, receipt.at, reason, receipt.error, switch_off)
        applied += forget_early([receipt.id for receipt, _ in matched])
    expired = drop_expired_early(now - timedelta(seconds=settings.EARLY_RECEIPT_TTL_SECONDS))
    if expired:
        logger.info("%d early receipts found no message and were dropped", expired)
    return {"applied": applied, "expired": expired}


def _cut(error: str | None) -> str | None:
    return error[:MAX_RECEIPT_ERROR] if error else None


def receipt_for_message(
    message_id,
    status: ReceiptStatus,
    *,
    at: datetime | None = None,
    failure_reason: FailureReason | None = None,
    error: str | None = None,
    switch_off: bool = True,
) -> ReceiptOutcome | None:
    """Apply a receipt for the message with this id (an email bounce names it by its return
    path); None when there is no such message. A failure switches the contact's address off
    unless ``switch_off`` is False (DESIGN "Receipts": a hard bounce does)."""
    message = message_by_id(message_id)
    if message is None:
        return None
    return _applied(message, status, at, failure_reason, error, switch_off)


def _applied(
    message: Message, status, at, failure_reason, error, switch_off: bool
) -> ReceiptOutcome:
    fields = {
        "message_id": message.id,
        "notification_id": message.notification_id,
        "channel": message.channel,
        "sender": message.sender_id,
    }
    with log_context(**fields):
        outcome = _apply(message, status, at, failure_reason, error, switch_off)
    metrics.receipt(message.channel, status, "applied" if outcome.changed else "unchanged")
    return outcome


def _apply(message: Message, status, at, failure_reason, error, switch_off: bool) -> ReceiptOutcome:
    also = None
    if status == ReceiptStatus.FAILED and switch_off and message.contact_id:
        also = functools.partial(switch_off_address, message, error)
    outcome = apply_receipt(
        message, status, at=at, failure_reason=failure_reason, error=error, also=also
    )
    if not outcome.changed:
        return outcome
    logger.info("message %s: %s receipt, now %s", message.id, status, outcome.state)
    if outcome.callback_id:
        enqueue_callbacks([outcome.callback_id])
    return outcome


def switch_off_address(message: Message, error: str | None) -> None:
    """The address of ``message`` its provider reported undeliverable, switched off in the
    contact registry (called inside the transaction that records the failure or receipt)."""
    assert message.contact_id is not None
    recipient_type = get_channel(message.channel).recipient_type
    reason = error or f"{message.channel} provider reported it undeliverable"
    deactivate_channel(message.contact_id, recipient_type, message.destination, reason)

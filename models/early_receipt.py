"""Receipts that came before their send was recorded.

A provider may report on a message faster than the worker commits the send (the id the
provider answered is stored with the outcome): Twilio's ``sent`` and ``delivered`` callbacks,
or WhatsApp's first status, can reach the web process while the message is still ``sending``
without a provider id. Such a receipt is kept here and applied by the scheduler once a message
carries that provider id, in the order the receipts arrived, as if it had come after the send.
A receipt that finds no message within ``EARLY_RECEIPT_TTL_SECONDS`` (another system's message
on the same provider account, or one purged after retention, which has no provider id left) is
dropped: it names no person and is kept no longer than that.
"""

from __future__ import annotations

from datetime import datetime

from peewee import AutoField, CharField, TextField

from models.base import BaseModel, UTCDateTimeField, utcnow
from models.message import Message
from models.sender import Sender

#: Longest provider id kept (Twilio SIDs are 34 characters, WhatsApp wamids about 60).
MAX_PROVIDER_ID = 200


class EarlyReceipt(BaseModel):
    id = AutoField()  # arrival order
    channel = CharField(max_length=20)
    provider_id = CharField(max_length=MAX_PROVIDER_ID)
    status = CharField(max_length=12)
    at = UTCDateTimeField(help_text="when the provider says it happened")
    failure_reason = CharField(max_length=40, null=True)
    error = TextField(null=True)
    received_at = UTCDateTimeField(default=utcnow)
    message: Message  # set by matched_early's join

    class Meta:
        indexes = (
            (("channel", "provider_id"), False),
            (("received_at",), False),
        )


def keep_early(
    channel: str,
    provider_id: str,
    status: str,
    at: datetime,
    failure_reason: str | None,
    error: str | None,
) -> bool:
    """Keep a receipt no message answers to yet; False when its provider id is too long to
    be one Herald stored."""
    if len(provider_id) > MAX_PROVIDER_ID:
        return False
    EarlyReceipt.create(
        channel=channel,
        provider_id=provider_id,
        status=status,
        at=at,
        failure_reason=failure_reason,
        error=error,
    )
    return True


def matched_early(limit: int) -> list[tuple[EarlyReceipt, Message]]:
    """Up to ``limit`` kept receipts whose message now carries their provider id, each with
    its message (and the message's sender, whose callback settings a change needs), in
    arrival order."""
    query = (
        EarlyReceipt.select(EarlyReceipt, Message, Sender)
        .join(
            Message,
            on=(
                (Message.channel == EarlyReceipt.channel)
                & (Message.provider_id == EarlyReceipt.provider_id)
            ),
            attr="message",
        )
        .join(Sender, on=(Message.sender == Sender.id))
        .order_by(EarlyReceipt.id)
        .limit(limit)
    )
    return [(receipt, receipt.message) for receipt in query]


def forget_early(ids: list[int]) -> int:
    if not ids:
        return 0
    return EarlyReceipt.delete().where(EarlyReceipt.id.in_(ids)).execute()


def drop_expired_early(before: datetime) -> int:
    """Drop the kept receipts that found no message by ``before``; how many."""
    return EarlyReceipt.delete().where(EarlyReceipt.received_at < before).execute()

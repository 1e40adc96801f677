"""A provider's receipt that comes before the worker recorded the send is kept and applied once
the send is recorded, as if it had come after; one that finds no message in time is dropped."""

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.base import utcnow
from models.callback import Callback
from models.contact import Contact, ContactChannel, create_contact
from models.early_receipt import EarlyReceipt
from models.message import Message, finish_attempt
from models.receipts import ReceiptStatus
from models.sender import Sender
from models.states import AttemptOutcome, FailureReason, MessageState
from scheduler import jobs
from settings import settings as herald_settings
from tasks.receipts import receipt_for_provider_id
from tests.factories import make_sender, stored_message
from tests.models.test_receipts import RECEIPTS, START, expected


def sending_message(**columns) -> Message:
    """A message a worker is sending: claimed, its provider id not recorded yet."""
    sender = make_sender(f"s-{uuid.uuid4().hex}").sender
    Sender.update(callback_url="http://127.0.0.1:9/cb").where(Sender.id == sender.id).execute()
    row = {"channel": "sms", "destination": "+37369000001", "state": "sending", "attempts": 1}
    return stored_message(sender, **{**row, **columns})


def record_sent(message: Message, provider_id: str) -> None:
    """What the worker records once the provider took the message (the real code path)."""
    assert finish_attempt(
        Message.get_by_id(message.id),
        AttemptOutcome.SENT,
        started_at=utcnow(),
        state=MessageState.SENT,
        provider_id=provider_id,
    )


def post(message: Message, provider_id: str, status, seconds=0, reason=None) -> None:
    receipt_for_provider_id(
        message.channel,
        provider_id,
        status,
        at=START + timedelta(seconds=seconds),
        failure_reason=reason if status == ReceiptStatus.FAILED else None,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(receipts=RECEIPTS, early=st.integers(min_value=0, max_value=8))
def test_receipts_before_the_send_end_as_if_they_came_after(db, queues, receipts, early):
    message, provider_id = sending_message(), f"SM{uuid.uuid4().hex}"
    for status, seconds, reason in receipts[:early]:
        post(message, provider_id, status, seconds, reason)
    assert Message.get_by_id(message.id).state == MessageState.SENDING  # nothing moved it
    record_sent(message, provider_id)
    jobs.early_receipts()
    for status, seconds, reason in receipts[early:]:
        post(message, provider_id, status, seconds, reason)

    model = expected(receipts)
    after = Message.get_by_id(message.id)
    assert (after.state, after.delivered_at, after.read_at, after.failure_reason) == (
        model["state"],
        model["delivered_at"],
        model["read_at"],
        model["reason"],
    )
    assert Callback.select().where(Callback.message == message.id).count() == model["changes"]
    assert not EarlyReceipt.select().where(EarlyReceipt.provider_id == provider_id).exists()


def test_a_dead_address_reported_early_is_switched_off_with_the_failure(db, queues):
    create_contact(
        {"idnp": "2001234567891", "channels": [{"type": "phone", "address": "+37369000002"}]}
    )
    contact = Contact.get(Contact.idnp == "2001234567891")
    message = sending_message(
        contact=contact.id, recipient_key=contact.idnp, destination="+37369000002"
    )
    post(message, "SM-dead", ReceiptStatus.FAILED, reason=FailureReason.DEAD_ADDRESS)
    record_sent(message, "SM-dead")
    assert jobs.early_receipts() == {"applied": 1, "expired": 0}

    assert Message.get_by_id(message.id).state == MessageState.FAILED
    channel = ContactChannel.get(ContactChannel.address == "+37369000002")
    assert channel.active is False


def test_a_receipt_no_message_answers_to_in_time_is_dropped(db, queues):
    message = sending_message()
    post(message, "SM-never", ReceiptStatus.DELIVERED)
    assert jobs.early_receipts() == {"applied": 0, "expired": 0}  # kept, within its time
    later = utcnow() + timedelta(seconds=herald_settings.EARLY_RECEIPT_TTL_SECONDS + 1)
    assert jobs.early_receipts(later) == {"applied": 0, "expired": 1}
    record_sent(message, "SM-never")  # too late: the receipt is gone
    jobs.early_receipts()
    assert Message.get_by_id(message.id).state == MessageState.SENT


def test_a_purged_message_is_never_reached_by_an_early_receipt(db, queues):
    purged = stored_message(
        make_sender("purged-sender").sender, channel="sms", provider_id=None, destination=""
    )
    post(purged, "SM-gone", ReceiptStatus.FAILED, reason=FailureReason.DEAD_ADDRESS)
    assert jobs.early_receipts() == {"applied": 0, "expired": 0}
    assert Message.get_by_id(purged.id).state == MessageState.SENT
    assert EarlyReceipt.select().count() == 1  # dropped with the others once its time is up

"""Receipts move a message only forward, whatever their order and however often they come:
checked against a model of the rules for random sequences, on both databases."""

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.base import utcnow
from models.callback import Callback
from models.message import Message
from models.receipts import (
    ReceiptStatus,
    apply_receipt,
    message_by_id,
    message_for_provider_id,
)
from models.sender import Sender
from models.states import FailureReason, MessageState
from tests.factories import make_sender, stored_message

START = utcnow().replace(microsecond=0)
RECEIPTS = st.lists(
    st.tuples(
        st.sampled_from(list(ReceiptStatus)),
        st.integers(min_value=0, max_value=600),  # seconds after START the provider reports
        st.sampled_from([FailureReason.DEAD_ADDRESS, FailureReason.REJECTED_BY_PROVIDER]),
    ),
    max_size=8,
)


def sent_message(state=MessageState.SENT, provider_id=None, callbacks=True) -> Message:
    sender = make_sender(f"s-{uuid.uuid4().hex}").sender
    if callbacks:
        Sender.update(callback_url="http://127.0.0.1:9/cb").where(Sender.id == sender.id).execute()
    return stored_message(sender, state=state, provider_id=provider_id or uuid.uuid4().hex)


def expected(receipts) -> dict:
    """The rules, as a fold: the first failure is final; delivered and read times are the
    first reported; each change owes one callback."""
    model = {"state": "sent", "delivered_at": None, "read_at": None, "reason": None, "changes": 0}
    for status, seconds, reason in receipts:
        at = START + timedelta(seconds=seconds)
        if model["state"] == "failed":
            continue
        if status == ReceiptStatus.FAILED:
            model.update(state="failed", reason=reason, changes=model["changes"] + 1)
        elif status in (ReceiptStatus.DELIVERED, ReceiptStatus.READ):
            moved = model["state"] == "sent"
            gains_read = status == ReceiptStatus.READ and model["read_at"] is None
            if moved or gains_read:
                model["changes"] += 1
            model["state"] = "delivered"
            model["delivered_at"] = model["delivered_at"] or at
            if status == ReceiptStatus.READ:
                model["read_at"] = model["read_at"] or at
    return model


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(receipts=RECEIPTS)
def test_any_sequence_of_receipts_ends_as_the_rules_say(db, receipts):
    message = sent_message()
    changes = 0
    for status, seconds, reason in receipts:
        loaded = message_for_provider_id(message.channel, message.provider_id)
        outcome = apply_receipt(
            loaded, status, at=START + timedelta(seconds=seconds), failure_reason=reason
        )
        changes += outcome.changed
        assert (outcome.callback_id is not None) == outcome.changed
    model = expected(receipts)
    after = Message.get_by_id(message.id)
    assert after.state == model["state"]
    assert after.delivered_at == model["delivered_at"]
    assert after.read_at == model["read_at"]
    assert after.failure_reason == model["reason"]
    assert changes == model["changes"]
    assert Callback.select().where(Callback.message == message.id).count() == changes


def test_a_message_not_yet_sent_is_not_moved_by_a_receipt(db):
    for state in (MessageState.QUEUED, MessageState.SENDING, MessageState.RETRYING):
        message = sent_message(state=state)
        for status in ReceiptStatus:
            outcome = apply_receipt(message_by_id(message.id), status, error="x")
            assert not outcome.changed and outcome.state == state
        assert Message.get_by_id(message.id).state == state


def test_a_transient_failure_is_recorded_without_moving_the_message(db):
    message = sent_message()
    outcome = apply_receipt(
        message_by_id(message.id), ReceiptStatus.TRANSIENT, error="4.2.2 mailbox full"
    )
    after = Message.get_by_id(message.id)
    assert not outcome.changed
    assert (after.state, after.last_error) == (MessageState.SENT, "4.2.2 mailbox full")


def test_no_callback_is_stored_for_a_sender_that_wants_none(db):
    message = sent_message(callbacks=False)
    outcome = apply_receipt(message_by_id(message.id), ReceiptStatus.DELIVERED)
    assert outcome.changed and outcome.callback_id is None
    assert Callback.select().count() == 0


def test_receipts_find_only_their_channel_s_message(db):
    message = sent_message(provider_id="SM123")
    assert message_for_provider_id("sms", "SM123") is None
    assert message_for_provider_id("email", "SM123").id == message.id
    assert message_for_provider_id("email", "SM124") is None

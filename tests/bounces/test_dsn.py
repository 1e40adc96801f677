"""Reading delivery status notifications (RFC 3464) and what each status (RFC 3463) means for
the message."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounces.dsn import DEAD_ADDRESS_STATUSES, DeliveryReport, delivery_report
from models.receipts import MAX_RECEIPT_ERROR, ReceiptStatus
from models.states import FailureReason
from tests.bounces.conftest import dsn

TO = "bounces+aaaa@bounces.herald.example.md"


def test_a_postfix_bounce_for_an_unknown_user_is_a_dead_address():
    report = delivery_report(dsn(TO))
    assert (report.action, report.status) == ("failed", "5.1.1")
    assert report.receipt == (ReceiptStatus.FAILED, FailureReason.DEAD_ADDRESS)
    assert report.error == (
        "5.1.1 smtp; 550 5.1.1 <ion@example.md>: Recipient address rejected: User unknown in "
        "local recipient table"
    )


@pytest.mark.parametrize("status", sorted(DEAD_ADDRESS_STATUSES))
def test_statuses_that_say_the_address_is_gone(status):
    assert delivery_report(dsn(TO, status=status)).receipt == (
        ReceiptStatus.FAILED,
        FailureReason.DEAD_ADDRESS,
    )


@pytest.mark.parametrize(
    ("status", "diagnostic"),
    [
        ("5.7.1", "smtp; 550 5.7.1 Message rejected as spam"),
        ("5.2.2", "smtp; 552 5.2.2 Mailbox full"),
        ("5.3.4", "smtp; 552 5.3.4 Message too big for system"),
        ("4.4.7", None),  # the reporting MTA gave up: failed, though the last try was 4xx
        ("5.0.0", None),
    ],
)
def test_other_permanent_failures_are_rejected_by_provider(status, diagnostic):
    report = delivery_report(dsn(TO, status=status, diagnostic=diagnostic))
    assert report.receipt == (ReceiptStatus.FAILED, FailureReason.REJECTED_BY_PROVIDER)
    assert report.error.startswith(status)


def test_a_delay_is_transient():
    report = delivery_report(
        dsn(TO, action="delayed", status="4.2.2", diagnostic="smtp; 452 4.2.2 Over quota")
    )
    assert report.receipt == (ReceiptStatus.TRANSIENT, None)
    assert report.error == "4.2.2 smtp; 452 4.2.2 Over quota"


def test_a_success_report_is_delivered_and_a_relay_says_nothing():
    delivered = delivery_report(dsn(TO, action="delivered", status="2.0.0", diagnostic=None))
    assert delivered.receipt == (ReceiptStatus.DELIVERED, None)
    relayed = delivery_report(dsn(TO, action="relayed", status="2.0.0", diagnostic=None))
    assert relayed is not None and relayed.receipt is None


def test_the_status_is_read_past_its_comment_and_a_folded_diagnostic_is_one_line():
    raw = dsn(TO, status="5.1.1 (bad destination mailbox address)").replace(
        b"Recipient address rejected: ", b"Recipient address\r\n    rejected: "
    )
    report = delivery_report(raw)
    assert report.status == "5.1.1"
    assert "Recipient address rejected: User unknown" in report.error


def test_the_most_serious_recipient_block_is_the_report():
    raw = dsn(TO).replace(
        b"Final-Recipient:",
        b"Final-Recipient: rfc822; other@example.md\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
        b"\r\nFinal-Recipient:",
    )
    assert delivery_report(raw).action == "failed"


def test_a_long_diagnostic_is_bounded():
    report = delivery_report(dsn(TO, diagnostic="smtp; 550 " + "x" * 5000))
    assert len(report.error) == MAX_RECEIPT_ERROR


@pytest.mark.parametrize(
    "raw",
    [
        b"From: ion@example.md\r\nSubject: Re: Programare\r\n\r\nMultumesc!\r\n",
        dsn(TO).replace(b"report-type=delivery-status", b"report-type=disposition-notification"),
        dsn(TO).replace(b"Final-Recipient: rfc822; ion@example.md\r\n", b""),  # no recipient
        dsn(TO).replace(b"multipart/report", b"multipart/mixed"),
        b"",
        b"\xff\xfe\x00garbage",
    ],
    ids=["reply", "read receipt", "no recipient block", "not a report", "empty", "binary"],
)
def test_what_is_not_a_delivery_report(raw):
    assert delivery_report(raw) is None


@given(raw=st.binary(max_size=2000))
def test_no_bytes_make_the_reader_fail(raw):
    assert delivery_report(raw) is None or isinstance(delivery_report(raw), DeliveryReport)


FIELD_TEXT = st.text(
    st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=600
)


@given(action=FIELD_TEXT, status=FIELD_TEXT, diagnostic=FIELD_TEXT)
def test_any_field_values_give_a_bounded_report(action, status, diagnostic):
    report = delivery_report(dsn(TO, action=action, status=status, diagnostic=diagnostic or None))
    if report is not None:
        assert len(report.error) <= MAX_RECEIPT_ERROR
        assert report.receipt is None or report.receipt[0] in ReceiptStatus

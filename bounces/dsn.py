"""Delivery status notifications (RFC 3464) read with the standard library's email parser, and
what each says about the message in Herald's words (``ReceiptStatus``).

A DSN is a ``multipart/report; report-type=delivery-status`` whose ``message/delivery-status``
part holds one block of per-message fields (``Reporting-MTA``, …) and a block of per-recipient
fields for each recipient reported on: ``Final-Recipient``, ``Action`` (failed, delayed,
delivered, relayed, expanded), ``Status`` (an RFC 3463 code, class.subject.detail) and
``Diagnostic-Code`` (the remote server's reply). A return path belongs to one message to one
recipient, so the most serious recipient block is the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes
from email.errors import MessageError
from email.message import Message

from models.receipts import MAX_RECEIPT_ERROR, ReceiptStatus
from models.states import FailureReason

#: RFC 3463 codes that say the address itself is gone, not this message refused: the message
#: fails with DEAD_ADDRESS (any other permanent failure: REJECTED_BY_PROVIDER). 5.1.1 bad
#: destination mailbox (no such user), 5.1.2 bad destination system (no such domain), 5.1.3 bad
#: mailbox address syntax, 5.1.6 mailbox has moved, 5.1.10 the domain has a null MX (RFC 7505:
#: accepts no mail), 5.2.1 mailbox disabled.
DEAD_ADDRESS_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"})
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
#: Recipient blocks by how much they say: a failure outranks a delay, which outranks success.
_SEVERITY = {"failed": 3, "delayed": 2, "delivered": 1}


@dataclass(frozen=True)
class DeliveryReport:
    """One recipient's fields of a DSN: ``action`` lowercased, ``status`` as ``5.1.1`` (empty
    when missing or malformed), ``diagnostic`` the Diagnostic-Code on one line (or None)."""

    action: str
    status: str
    diagnostic: str | None = None

    @property
    def receipt(self) -> tuple[ReceiptStatus, FailureReason | None] | None:
        """What the report means for the message; None when nothing (relayed to a system that
        sends no reports, expanded to a list). ``Action`` decides, the status class where the
        action is missing or unknown: failed or 5.x.x is permanent, delayed or 4.x.x transient
        (the reporting MTA keeps trying), delivered or 2.x.x delivered."""
        kind = {"failed": "5", "delayed": "4", "delivered": "2"}.get(self.action, self.status[:1])
        if kind == "5":
            dead = self.status in DEAD_ADDRESS_STATUSES
            return ReceiptStatus.FAILED, (
                FailureReason.DEAD_ADDRESS if dead else FailureReason.REJECTED_BY_PROVIDER
            )
        if kind == "4":
            return ReceiptStatus.TRANSIENT, None
        if kind == "2" and self.action in ("delivered", ""):
            return ReceiptStatus.DELIVERED, None
        return None

    @property
    def error(self) -> str:
        """The text the message keeps: the status and the remote server's reply, bounded."""
        text = " ".join(part for part in (self.status, self.diagnostic) if part)
        return (text or f"delivery report: {self.action}")[:MAX_RECEIPT_ERROR]


def delivery_report(raw: bytes) -> DeliveryReport | None:
    """The report of the DSN ``raw``; None when it is not one (any other mail, a DSN without a
    recipient block, a malformed one)."""
    try:
        email = message_from_bytes(raw)
        if email.get_content_type() != "multipart/report":
            return None
        if str(email.get_param("report-type", "")).lower() != "delivery-status":
            return None
        reports = [
            _report(block)
            for part in _parts(email)
            if part.get_content_type() == "message/delivery-status"
            for block in _parts(part)[1:]  # after the per-message fields
            if block.get("Final-Recipient")
        ]
    except (MessageError, LookupError, TypeError, ValueError):
        return None
    if not reports:
        return None
    return max(reports, key=lambda report: _SEVERITY.get(report.action, 0))


def _parts(email: Message) -> list[Message]:
    """A multipart's parts, or a delivery-status part's blocks of fields (the parser reads each
    as a message of headers)."""
    payload = email.get_payload()
    if not isinstance(payload, list):
        return []
    return [part for part in payload if isinstance(part, Message)]


def _report(block: Message) -> DeliveryReport:
    status = _STATUS.search(_field(block, "Status") or "")
    diagnostic = _field(block, "Diagnostic-Code")
    return DeliveryReport(
        action=(_field(block, "Action") or "").lower(),
        status=".".join(status.groups()) if status else "",
        diagnostic=diagnostic[:MAX_RECEIPT_ERROR] if diagnostic else None,
    )


def _field(block: Message, name: str) -> str | None:
    """A field's value on one line (folded lines joined), or None."""
    value = block.get(name)
    if value is None:
        return None
    return " ".join(str(value).split()) or None

"""The inbound SMTP server (aiosmtpd) that takes delivery reports for Herald's return paths,
and unsubscribe requests at ``unsubscribe+<token>@BOUNCE_DOMAIN`` (:mod:`bounces.unsubscribe`).

The dialogue refuses what cannot be a report for one of Herald's messages or an unsubscribe: a
recipient that is neither (550 at RCPT), a second recipient in one transaction (452: the
sending MTA sends it in the next), DATA over BOUNCE_MAX_MESSAGE_BYTES (552). What it does
take is answered 250 whatever it turns out to be, so that no MTA retries it for days: a mail
that is not a DSN, or whose token does not verify (forged, altered, a message purged since),
is dropped and counted. Only a database failure answers 451, to have the report sent again.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import peewee
from aiosmtpd.controller import Controller

from bounces.dsn import delivery_report
from bounces.metrics import BOUNCES, REFUSED
from bounces.unsubscribe import take_unsubscribe
from channels.return_path import message_id_of, token_in
from channels.unsubscribe import mail_token_in
from models.receipts import ReceiptStatus
from settings import settings
from tasks.receipts import receipt_for_message

logger = logging.getLogger(__name__)


def take_report(address: str, raw: bytes) -> str:
    """Apply the mail ``raw`` sent to the return path ``address``; its outcome (one of
    ``bounces.metrics.OUTCOMES``), counted. Logs the message id and status, never an address
    or the remote server's text."""
    message_id = message_id_of(token_in(address) or "")
    report = delivery_report(raw) if message_id else None
    receipt = report.receipt if report else None
    if message_id is None:
        outcome = "dropped_unknown_token"
    elif report is None:
        outcome = "dropped_not_dsn"
    elif receipt is None:
        outcome = "ignored"
    else:
        status, reason = receipt
        applied = receipt_for_message(message_id, status, failure_reason=reason, error=report.error)
        if applied is None:
            outcome = "dropped_unknown_token"
        elif status == ReceiptStatus.TRANSIENT:
            outcome = "transient"
        else:
            outcome = status.value if applied.changed else "unchanged"
    logger.info(
        "delivery report for message %s: %s %s → %s",
        message_id or "(none)",
        report.action if report else "-",
        report.status if report else "-",
        outcome,
    )
    BOUNCES.labels(outcome).inc()
    return outcome


class BounceHandler:
    """aiosmtpd's handler: checks recipients, then takes each report in a thread of its own
    (the database work blocks)."""

    def __init__(self, threads: int = 4) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="bounces")

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        if token_in(address) is None and mail_token_in(address) is None:
            REFUSED.labels("recipient").inc()
            return "550 5.1.1 Not a return path of this server"
        if envelope.rcpt_tos:
            REFUSED.labels("too_many_recipients").inc()
            return "452 4.5.3 One return path per message"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        loop = asyncio.get_running_loop()
        raw = envelope.original_content or envelope.content or b""
        address = envelope.rcpt_tos[0]
        try:
            if mail_token_in(address) is not None:
                await loop.run_in_executor(self._executor, take_unsubscribe, address)
            else:
                await loop.run_in_executor(self._executor, take_report, address, raw)
        except peewee.PeeweeException:
            logger.exception("delivery report not applied: the database failed")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 Report taken"

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class BounceReceiver(Controller):
    """The receiver on ``host:port`` in a thread of its own: ``start()``, ``stop()``."""

    def __init__(self, host: str, port: int) -> None:
        self.bounce_handler = BounceHandler()
        super().__init__(
            self.bounce_handler,
            hostname=host,
            port=port,
            server_hostname=settings.BOUNCE_DOMAIN or "localhost",
            data_size_limit=settings.BOUNCE_MAX_MESSAGE_BYTES,
            decode_data=False,
        )

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert)
        self.bounce_handler.close()

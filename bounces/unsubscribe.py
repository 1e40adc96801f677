"""Unsubscribing by email: a mail to ``unsubscribe+<token>@BOUNCE_DOMAIN`` (the ``mailto:`` of an
email's ``List-Unsubscribe``, :mod:`channels.unsubscribe`) turns email off for the person and
the service of the message the token names, as the one-click link does. What the mail says
does not matter (NotifyBC's unsubscribe by email works the same way)."""

from __future__ import annotations

import logging

from bounces.metrics import UNSUBSCRIBES
from channels.unsubscribe import mail_token_in, message_id_of, target_for
from models.message import Message
from models.notification import Notification
from models.preference import opt_out

logger = logging.getLogger(__name__)


def take_unsubscribe(address: str) -> str:
    """Apply a mail sent to the unsubscribe address ``address``; its outcome (one of
    ``bounces.metrics.UNSUBSCRIBE_OUTCOMES``), counted. Logs the message id, never the person."""
    message_id = message_id_of(mail_token_in(address) or "")
    message = None
    if message_id is not None:
        message = (
            Message.select(Message, Notification)
            .join(Notification)
            .where(Message.id == message_id)
            .first()
        )
    target = target_for(message) if message is not None else None
    if target is None:
        outcome = "dropped_unknown_token"  # forged, altered, or its message purged since
    elif opt_out(target.subject, target.channel, target.service, target.kind):
        outcome = "unsubscribed"
    else:
        outcome = "unchanged"
    logger.info("unsubscribe by email for message %s: %s", message_id or "(none)", outcome)
    UNSUBSCRIBES.labels(outcome).inc()
    return outcome

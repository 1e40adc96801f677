"""Firing reminders: each due occurrence becomes one notification through the same path as the
API (``submit_notification``), linked to its reminder and occurrence time.

The notification's unique (reminder, occurrence) key is what makes an occurrence fire at most
once: a second scheduler, a retry after a crash, or a clock that jumped back all hit the key
and only move the reminder on. The reminder is moved on after the notification is committed,
so a crash in between fires nothing twice and loses nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from marshmallow import ValidationError
from peewee import IntegrityError

from models.reminder import Reminder, advance, due_reminders
from tasks.requests import NotificationCreateSchema
from tasks.submit import InvalidSubmission, submit_notification

logger = logging.getLogger(__name__)


def fire_occurrence(reminder: Reminder, now: datetime) -> str:
    """Fire the reminder's next occurrence; return ``fired``, ``duplicate`` or ``invalid``."""
    occurrence = reminder.next_at
    outcome = "fired"
    try:
        data = NotificationCreateSchema().load(reminder.request)
        data.update(reminder_id=reminder.id, occurrence_at=occurrence)
        submit_notification(reminder.sender, data)
    except IntegrityError:
        outcome = "duplicate"
    except (ValidationError, InvalidSubmission) as error:
        logger.warning("reminder %s at %s: not sent: %s", reminder.id, occurrence, error)
        outcome = "invalid"
    # A duplicate fired too, in a run that died before moving the reminder on: it counts once,
    # for whichever run wins the compare-and-set in ``advance``.
    advance(reminder, occurrence, now, fired=outcome != "invalid")
    return outcome


def fire_reminders(now: datetime, limit: int) -> dict[str, int]:
    """Fire every due occurrence, oldest first (several per reminder if the scheduler was
    down: none is lost). Each pass moves every reminder it saw past an occurrence."""
    counts = {"fired": 0, "duplicate": 0, "invalid": 0}
    while due := due_reminders(now, limit):
        for reminder in due:
            counts[fire_occurrence(reminder, now)] += 1
    return counts

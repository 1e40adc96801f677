"""The scheduler's jobs. Each takes ``now`` so tests can run it at any moment."""

from __future__ import annotations

import logging
from datetime import datetime

import settings
from models.base import utcnow
from models.message import release_stuck
from tasks.deliver import enqueue

logger = logging.getLogger(__name__)


def replay(now: datetime | None = None) -> int:
    """Re-enqueue stuck messages: queued or retrying but overdue (lost job, broker down at
    accept time) and sending past an expired lease (the worker died). Returns how many."""
    now = now or utcnow()
    total = 0
    while True:
        batch = release_stuck(now, settings.REPLAY_AFTER_SECONDS, settings.REPLAY_BATCH_SIZE)
        if not batch:
            break
        enqueue(batch)
        total += len(batch)
        if len(batch) < settings.REPLAY_BATCH_SIZE:
            break
    if total:
        logger.info("replay: re-enqueued %d stuck messages", total)
    return total

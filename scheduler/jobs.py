"""The scheduler's jobs. Each takes ``now`` so tests can run it at any moment."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import settings
from models.base import utcnow
from models.message import release_stuck
from models.notification import stalled_fanouts
from tasks.deliver import enqueue
from tasks.fanout import fanout_actor

logger = logging.getLogger(__name__)


def replay(now: datetime | None = None) -> int:
    """Re-enqueue stuck work: messages queued or retrying but overdue (lost job, broker down at
    accept time), messages sending past an expired lease (the worker died), and fan-outs that
    have not moved for a while. Returns how many messages and fan-outs."""
    now = now or utcnow()
    total = replay_fanouts(now)
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


def replay_fanouts(now: datetime) -> int:
    """Restart fan-outs whose last chunk is older than REPLAY_AFTER_SECONDS."""
    stalled = stalled_fanouts(now - timedelta(seconds=settings.REPLAY_AFTER_SECONDS))
    for notification_id in stalled:
        fanout_actor.send(notification_id)
    if stalled:
        logger.info("replay: restarted %d stalled fan-outs", len(stalled))
    return len(stalled)

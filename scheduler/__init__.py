"""The scheduler process (``python -m scheduler``): periodic jobs under a Redis leader lock."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC

from apscheduler.schedulers.blocking import BlockingScheduler

import settings
from scheduler import jobs
from scheduler.leader import LeaderLock

logger = logging.getLogger(__name__)


def as_leader(lock: LeaderLock, job: Callable[[], object]) -> Callable[[], None]:
    """Run ``job`` only while this process holds the leader lock, and log how it went."""

    def run() -> None:
        if not lock.hold():
            return
        started = time.monotonic()
        try:
            result = job()
        except Exception:
            logger.exception("job %s failed", job.__name__)
            return
        logger.debug("job %s: %r in %.3fs", job.__name__, result, time.monotonic() - started)

    run.__name__ = job.__name__
    return run


def build_scheduler(lock: LeaderLock) -> BlockingScheduler:
    scheduler = BlockingScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    renew_every = max(1.0, settings.LEADER_LOCK_TTL_SECONDS / 3)
    scheduler.add_job(lock.hold, "interval", seconds=renew_every, id="leadership")
    scheduler.add_job(
        as_leader(lock, jobs.replay),
        "interval",
        seconds=settings.REPLAY_INTERVAL_SECONDS,
        id="replay",
    )
    return scheduler


def main() -> None:
    logging.basicConfig(
        level=settings.LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from models.db import open_database

    open_database()
    import tasks  # noqa: F401  (binds the broker the jobs enqueue to)
    from tasks.broker import redis_client

    lock = LeaderLock(redis_client(), settings.LEADER_LOCK_TTL_SECONDS)
    scheduler = build_scheduler(lock)

    def stop(signum, frame):
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    lock.hold()
    logger.info("scheduler started (%s)", "leader" if lock.is_leader else "standby")
    try:
        scheduler.start()
    finally:
        lock.release()
        logger.info("scheduler stopped")

"""The scheduler process (``python -m scheduler``): periodic jobs under a Redis leader lock."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, timedelta

import redis
from apscheduler.schedulers.blocking import BlockingScheduler

from models.base import utcnow
from models.db import open_database
from models.runs import record_run
from scheduler import jobs
from scheduler.leader import LeaderLock
from scheduler.metrics import sample_message_states, start_metrics_server
from settings import settings
from tasks import bind_broker, metrics
from tasks.broker import redis_client
from tasks.logs import setup_logging

logger = logging.getLogger(__name__)


def as_leader(
    lock: LeaderLock,
    job: Callable[[], object],
    interval: float | None = None,
    runs: redis.Redis | None = None,
) -> Callable[[], None]:
    """Run ``job`` only while this process holds the leader lock, log how it went, and with
    ``runs`` (a Redis client) record the run for ``GET /v1/admin/scheduler``."""

    def run() -> None:
        if not lock.hold():
            return
        started_at, started = utcnow(), time.monotonic()
        result, error = None, None
        try:
            result = job()
        except Exception as failure:
            logger.exception("job %s failed", job.__name__)
            error = repr(failure)
        duration = time.monotonic() - started
        metrics.job_ran(job.__name__, error is not None, duration, result)
        logger.debug("job %s: %r in %.3fs", job.__name__, result, duration)
        if runs is not None:
            following = started_at + timedelta(seconds=interval) if interval else None
            with contextlib.suppress(redis.RedisError):
                record_run(runs, job.__name__, started_at, duration, result, following, error)

    run.__name__ = job.__name__
    return run


#: The leader's jobs and the setting naming each one's interval in seconds.
JOBS = (
    (jobs.replay, "REPLAY_INTERVAL_SECONDS"),
    (jobs.early_receipts, "REPLAY_INTERVAL_SECONDS"),
    (jobs.send_scheduled, "SCHEDULE_INTERVAL_SECONDS"),
    (jobs.expire_lapsed, "SCHEDULE_INTERVAL_SECONDS"),
    (jobs.auto_resend, "HOUSEKEEPING_INTERVAL_SECONDS"),
    (jobs.purge, "HOUSEKEEPING_INTERVAL_SECONDS"),
    (jobs.forget_expired, "HOUSEKEEPING_INTERVAL_SECONDS"),
)


def build_scheduler(lock: LeaderLock, runs: redis.Redis | None = None) -> BlockingScheduler:
    scheduler = BlockingScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    renew_every = max(1.0, settings.LEADER_LOCK_TTL_SECONDS / 3)
    scheduler.add_job(lock.hold, "interval", seconds=renew_every, id="leadership")
    for job, interval_setting in JOBS:
        interval = getattr(settings, interval_setting)
        scheduler.add_job(
            as_leader(lock, job, interval, runs), "interval", seconds=interval, id=job.__name__
        )
    if metrics.collecting():  # the sample of messages by state, for herald_messages
        job, interval = sample_message_states, settings.METRICS_SAMPLE_SECONDS
        scheduler.add_job(
            as_leader(lock, job, interval, runs), "interval", seconds=interval, id=job.__name__
        )
    return scheduler


def main() -> None:
    setup_logging()
    if settings.LOG_LEVEL != "DEBUG":
        # APScheduler logs every run of every job; the jobs log what they did themselves.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    metrics_server = start_metrics_server()
    open_database()
    bind_broker()  # the broker the jobs enqueue to
    lock = LeaderLock(redis_client(), settings.LEADER_LOCK_TTL_SECONDS)
    scheduler = build_scheduler(lock, redis_client())

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
        if metrics_server is not None:
            metrics_server.shutdown()
        logger.info("scheduler stopped")

"""The scheduler's metrics: served on ``SCHEDULER_METRICS_PORT`` (a thread of the scheduler
process), and the leader's sample of messages by state.

A sample is one bounded count per not-final state (``SELECT count(*) FROM (SELECT id FROM message
WHERE state = ? LIMIT METRICS_COUNT_CAP)``, an index range of at most that many entries), taken
every ``METRICS_SAMPLE_SECONDS`` by the leader only; ``herald_messages`` reports the last sample
(``herald_messages_sampled_timestamp_seconds`` says when), never a count per scrape. Final states
grow without bound: their flow is ``herald_deliveries_total``, on the worker.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from models.message import Message
from models.states import MessageState
from settings import settings
from tasks import metrics

logger = logging.getLogger(__name__)

#: The states sampled: those a message leaves by itself (a backlog when they grow).
SAMPLED_STATES = (
    MessageState.SCHEDULED,
    MessageState.QUEUED,
    MessageState.SENDING,
    MessageState.RETRYING,
    MessageState.HELD,
)


def sample_message_states(now: datetime | None = None) -> dict[str, int]:
    """Count the messages of each :data:`SAMPLED_STATES` (at most ``METRICS_COUNT_CAP`` each)
    into ``herald_messages``; the counts."""
    cap = settings.METRICS_COUNT_CAP
    counts = {
        str(state): Message.select(Message.id).where(Message.state == state).limit(cap).count()
        for state in SAMPLED_STATES
    }
    metrics.sampled(counts)
    return counts


def start_metrics_server() -> WSGIServer | None:
    """Collect this process's metrics and serve them on ``SCHEDULER_METRICS_PORT`` from a
    daemon thread; None (nothing collected) with ``METRICS=false`` or port 0, and None (an error
    logged; collected, not served) when the port cannot be had. One process: its own registry,
    whatever multiprocess directory the environment names for others."""
    if not settings.METRICS or not settings.SCHEDULER_METRICS_PORT:
        return None
    os.environ.pop(metrics.MULTIPROC_ENV, None)
    metrics.setup_metrics(scheduler=True)
    try:
        server = metrics.metrics_server(settings.SCHEDULER_METRICS_PORT, metrics.scrape_registry)
    except OSError as error:  # a port taken (another scheduler on this host) stops no job
        logger.error(
            "scheduler metrics: cannot listen on port %d (%s); no metrics are served",
            settings.SCHEDULER_METRICS_PORT,
            error,
        )
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("scheduler metrics on port %d", settings.SCHEDULER_METRICS_PORT)
    return server

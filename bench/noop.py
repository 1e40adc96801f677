"""The baseline for bench/engine.py: Herald's broker (``tasks.broker.create_broker``, with its
middleware, bound to the same database) and one actor that does nothing but count itself.

    dramatiq bench.noop:setup --processes 2 --threads 8
"""

from __future__ import annotations

import dramatiq

from models.db import open_database
from tasks.broker import create_broker, use_broker

ACTOR_NAME = QUEUE_NAME = "bench_noop"
#: Redis key the actor increments: how bench/engine.py sees completions.
DONE_KEY = "herald-bench:noop:done"


def noop(number: int) -> None:
    """Nothing but one INCR, the least a worker can do and still be seen to have done it."""
    dramatiq.get_broker().client.incr(DONE_KEY)


def declare(broker: dramatiq.Broker) -> dramatiq.Actor:
    """The no-op actor on ``broker`` (retries off, as Herald's ``deliver`` actors have)."""
    return dramatiq.actor(
        noop, actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, max_retries=0, broker=broker
    )


def setup() -> None:
    """What ``dramatiq bench.noop:setup`` calls: the database and broker exactly as
    ``dramatiq tasks.worker`` binds them (tasks/worker.py), then the one actor."""
    open_database()
    broker = create_broker()
    use_broker(broker, [])
    declare(broker)

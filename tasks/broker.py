"""Broker and Redis connections: Redis by default, RabbitMQ when ``BROKER_URL`` is ``amqp://``."""

from __future__ import annotations

from uuid import uuid4

import dramatiq
import pika.exceptions
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from redis.backoff import NoBackoff
from redis.retry import Retry

import settings
from models.db import database, is_sqlite

NOT_CONFIGURED = (
    "No broker configured: set REDIS_URL (or BROKER_URL), e.g. redis://127.0.0.1:6379/0. "
    "`herald run` starts an embedded Redis for development."
)


class BrokerNotConfigured(SystemExit):
    pass


#: What a broker raises when it cannot take a message (down, hung, refusing the connection).
#: Only these mean "the outbox row waits for the replay job"; anything else is a bug and
#: propagates.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    dramatiq.errors.BrokerConnectionError,
    redis.RedisError,
    pika.exceptions.AMQPError,
    OSError,
)


def redis_client(url: str | None = None) -> redis.Redis:
    """A Redis client that fails fast (``BROKER_TIMEOUT_SECONDS``) when Redis is down."""
    url = url or settings.REDIS_URL or settings.broker_url()
    if not url:
        raise BrokerNotConfigured(NOT_CONFIGURED)
    timeout = settings.BROKER_TIMEOUT_SECONDS
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 1)
    )


class DatabaseConnections(dramatiq.Middleware):
    """Gives each message a database connection; pooled ones go back to the pool after it."""

    def before_process_message(self, broker, message):
        database.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not is_sqlite() and not database.is_closed():
            database.close()

    after_skip_message = after_process_message


def create_broker(url: str | None = None) -> dramatiq.Broker:
    """A broker for ``url`` (default: the configured one), with Herald's middleware."""
    url = url or settings.broker_url()
    if not url:
        raise BrokerNotConfigured(NOT_CONFIGURED)
    if url.startswith(("amqp://", "amqps://")):
        broker = RabbitmqBroker(url=url)
    else:
        broker = RedisBroker(client=redis_client(url))
    broker.add_middleware(DatabaseConnections())
    return broker


def use_broker(broker: dramatiq.Broker, actors: list[dramatiq.Actor]) -> None:
    """Make ``broker`` the global broker and move ``actors`` onto it."""
    dramatiq.set_broker(broker)
    for actor in actors:
        actor.broker = broker
        broker.declare_actor(actor)


def enqueue_many(broker: dramatiq.Broker, messages: list[dramatiq.Message]) -> None:
    """Enqueue ``messages`` (none delayed) in as few round trips as the broker allows.

    On Redis, one pipeline carries them all: Dramatiq's dispatch script for the first message
    of each queue (the producer's heartbeat and the broker's maintenance, as
    ``RedisBroker.enqueue`` does), then, for the rest, what that script does per message, as
    one ``HSET`` and one ``RPUSH`` per queue — running the script once per message cost more
    than building the messages. Same middleware hooks as ``RedisBroker.enqueue``. This leans on
    Dramatiq 2's Redis broker layout (``<namespace>:<queue>`` list, ``.msgs`` hash), hence the
    version bound in setup.cfg. Other brokers get a loop.
    """
    if not isinstance(broker, RedisBroker):
        for message in messages:
            broker.enqueue(message)
        return
    by_queue: dict[str, list[tuple[str, bytes]]] = {}
    enqueued = []
    for message in messages:
        message = message.copy(options={"redis_message_id": str(uuid4())})
        broker.emit_before("enqueue", message, None)
        by_queue.setdefault(message.queue_name, []).append(
            (message.options["redis_message_id"], message.encode())
        )
        enqueued.append(message)
    dispatch, keys = broker.scripts["dispatch"], [broker.namespace]
    with broker.client.pipeline(transaction=False) as pipeline:
        for queue_name, jobs in by_queue.items():
            (first_id, first_data), rest = jobs[0], jobs[1:]
            args = [
                "enqueue",
                current_millis(),
                queue_name,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                broker._should_do_maintenance("enqueue"),
                broker._max_unpack_size(),
                first_id,
                first_data,
            ]
            dispatch(keys=keys, args=args, client=pipeline)
            if rest:
                queue_key = f"{broker.namespace}:{queue_name}"
                pipeline.hset(f"{queue_key}.msgs", mapping=dict(rest))
                pipeline.rpush(queue_key, *(job_id for job_id, _ in rest))
        pipeline.execute()
    for message in enqueued:
        broker.emit_after("enqueue", message, None)


def ping(broker: dramatiq.Broker) -> None:
    """Raise if the broker cannot be reached."""
    if isinstance(broker, RedisBroker):
        broker.client.ping()
    else:
        broker.connection  # noqa: B018  (opens, or raises)

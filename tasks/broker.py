"""Broker and Redis connections: Redis by default, RabbitMQ when ``BROKER_URL`` is ``amqp://``."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic
from urllib.parse import parse_qs, urlparse

import dramatiq
import pika
import pika.exceptions
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis
from dramatiq.encoder import JSONEncoder
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from redis.backoff import NoBackoff
from redis.retry import Retry

from models.base import dashed
from models.db import database, is_sqlite
from settings import settings
from tasks.errors import TaskError

logger = logging.getLogger(__name__)

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
    AMQPConnectorException,  # pika's connection set-up timed out (a hung RabbitMQ)
    OSError,
)


def redis_client(url: str | None = None) -> redis.Redis:
    """A Redis client that fails fast (``BROKER_TIMEOUT_SECONDS``) when Redis is down or hung.

    A command whose connection turns out broken (Redis restarted) is tried once more on a new
    one; a command that timed out is not: on a hung server that would double the wait.
    """
    url = url or settings.REDIS_URL or settings.broker_url()
    if not url:
        raise BrokerNotConfigured(NOT_CONFIGURED)
    timeout = settings.BROKER_TIMEOUT_SECONDS
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    )


#: pika's connection parameters that bound how long a down, hung or blocked RabbitMQ holds a
#: caller: connecting, the whole AMQP handshake, a publish the server holds back.
RABBITMQ_TIMEOUTS = ("socket_timeout", "stack_timeout", "blocked_connection_timeout")


def _rabbitmq_broker(url: str) -> RabbitmqBroker:
    """Dramatiq's RabbitMQ broker for ``url`` (several separated by ``;``), each of whose
    :data:`RABBITMQ_TIMEOUTS` is ``BROKER_TIMEOUT_SECONDS`` unless that URL sets it."""
    broker = RabbitmqBroker(url=url)
    parameters = broker.parameters if isinstance(broker.parameters, list) else [broker.parameters]
    for each, each_url in zip(parameters, url.split(";"), strict=True):
        given = parse_qs(urlparse(each_url).query)
        for name in RABBITMQ_TIMEOUTS:
            if name not in given:
                setattr(each, name, settings.BROKER_TIMEOUT_SECONDS)
    return broker


class DatabaseConnections(dramatiq.Middleware):
    """Gives each message a database connection; pooled ones go back to the pool after it."""

    def before_process_message(self, broker, message):
        database.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not is_sqlite() and not database.is_closed():
            database.close()

    after_skip_message = after_process_message


class ClosesBreaker(dramatiq.Middleware):
    """A worker that has just received a message knows the broker answers: the breaker closes
    (the enqueues of that job, such as a fan-out's, are not left to the replay job)."""

    def before_process_message(self, broker, message):
        breaker.close()


def create_broker(url: str | None = None) -> dramatiq.Broker:
    """A broker for ``url`` (default: the configured one), with Herald's middleware."""
    url = url or settings.broker_url()
    if not url:
        raise BrokerNotConfigured(NOT_CONFIGURED)
    broker: dramatiq.Broker
    if url.startswith(("amqp://", "amqps://")):
        broker = _rabbitmq_broker(url)
    else:
        broker = RedisBroker(client=redis_client(url))
    broker.add_middleware(DatabaseConnections())
    broker.add_middleware(ClosesBreaker())
    return broker


def use_broker(broker: dramatiq.Broker, actors: list[dramatiq.Actor]) -> None:
    """Make ``broker`` the global broker and move ``actors`` onto it (the breaker starts
    closed: what it knew was about the previous broker)."""
    dramatiq.set_broker(broker)
    breaker.reset()
    for actor in actors:
        actor.broker = broker
        broker.declare_actor(actor)


class BrokerNotBound(TaskError, RuntimeError):
    """A message was sent before the process's entry point bound a broker (:func:`use_broker`):
    a bug in that entry point, never an outage."""


class UnboundBroker(StubBroker):
    """What Herald's actors are declared on when their modules are imported: connects nowhere
    and refuses every message (:class:`BrokerNotBound`), so that a process that never bound
    the real broker fails loudly instead of keeping messages in memory."""

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        raise BrokerNotBound(f"no broker bound to send {message.actor_name}: call use_broker")


#: The placeholder broker: the global one until an entry point binds another, so that
#: ``dramatiq.actor`` at import (and ``dramatiq.get_broker()``) never builds Dramatiq's default
#: RabbitMQ broker.
PLACEHOLDER = UnboundBroker()
if dramatiq.broker.global_broker is None:
    dramatiq.set_broker(PLACEHOLDER)


def broker_bound() -> bool:
    """Whether this process has bound its broker (:func:`use_broker`)."""
    return dramatiq.get_broker() is not PLACEHOLDER


def enqueue_many(broker: dramatiq.Broker, messages: list[dramatiq.Message]) -> None:
    """Enqueue ``messages`` (none delayed) in as few round trips as the broker allows.

    On Redis, one pipeline carries them all: Dramatiq's dispatch script for the first message
    of each queue (the producer's heartbeat and the broker's maintenance, as
    ``RedisBroker.enqueue`` does), then, for the rest, what that script does per message, as
    one ``HSET`` and one ``RPUSH`` per queue — running the script once per message cost more
    than building the messages. Same middleware hooks as ``RedisBroker.enqueue``; when no
    middleware has an enqueue hook, the messages are encoded from a template per queue and
    actor (:class:`_Encoder`), which is what Dramatiq's JSON encoder would write, at a third
    of the cost. This leans on Dramatiq 2's Redis broker layout (``<namespace>:<queue>`` list,
    ``.msgs`` hash), hence the version bound in setup.cfg. Other brokers get a loop.
    """
    if not isinstance(broker, RedisBroker):
        for message in messages:
            broker.enqueue(message)
        return
    hooked = _has_enqueue_hooks(broker)
    encoder = None if hooked else _Encoder.for_encoder(dramatiq.get_encoder())
    by_queue: dict[str, list[tuple[str, bytes]]] = {}
    enqueued = []
    redis_ids = _redis_message_ids(len(messages))
    for message, redis_id in zip(messages, redis_ids, strict=True):
        if encoder is not None and (data := encoder.encode(message, redis_id)) is not None:
            by_queue.setdefault(message.queue_name, []).append((redis_id, data))
            continue
        message = message.copy(options={"redis_message_id": redis_id})
        broker.emit_before("enqueue", message, None)
        by_queue.setdefault(message.queue_name, []).append((redis_id, message.encode()))
        enqueued.append(message)
    _push(broker, by_queue)
    for message in enqueued:
        broker.emit_after("enqueue", message, None)


def _push(broker: RedisBroker, by_queue: dict[str, list[tuple[str, bytes]]]) -> None:
    """One pipeline: the dispatch script for each queue's first job, HSET + RPUSH for the rest."""
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


def _has_enqueue_hooks(broker: dramatiq.Broker) -> bool:
    """Whether any of the broker's middleware does something before or after an enqueue."""
    base = dramatiq.Middleware
    return any(
        type(m).before_enqueue is not base.before_enqueue
        or type(m).after_enqueue is not base.after_enqueue
        for m in broker.middleware
    )


def _redis_message_ids(count: int) -> list[str]:
    """``count`` random ids in UUID form (what ``RedisBroker.enqueue`` gives each job), drawn
    at once."""
    digits = os.urandom(16 * count).hex()
    return [dashed(digits[32 * n : 32 * n + 32]) for n in range(count)]


class _Encoder:
    """Dramatiq's JSON encoding of a message without kwargs or options, from a template per
    (queue, actor): only the arguments, ids and timestamp are encoded per message. Its output
    decodes to the same message as ``Message.encode`` after ``copy(options={"redis_message_id":
    …})`` (tests/tasks/test_broker.py compares them)."""

    _json = json.JSONEncoder(separators=(",", ":")).encode

    def __init__(self) -> None:
        self._heads: dict[tuple[str, str], str] = {}

    @classmethod
    def for_encoder(cls, encoder) -> _Encoder | None:
        """An encoder when Dramatiq's is its JSON one (a custom one gets the slow path)."""
        return cls() if type(encoder) is JSONEncoder else None

    def encode(self, message: dramatiq.Message, redis_id: str) -> bytes | None:
        """The message's bytes, or None when it has kwargs or options (encode it generally)."""
        if message.kwargs or message.options:
            return None
        key = (message.queue_name, message.actor_name)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = (
                f'{{"queue_name":{self._json(key[0])},"actor_name":{self._json(key[1])},"args":'
            )
        return (
            f'{head}{self._json(message.args)},"kwargs":{{}},"options":{{"redis_message_id":'
            f'"{redis_id}"}},"message_id":{self._json(message.message_id)},'
            f'"message_timestamp":{int(message.message_timestamp)}}}'
        ).encode()


def ping(broker: dramatiq.Broker) -> None:
    """Raise if the broker cannot be reached (RabbitMQ: on a connection of its own, closed
    after, so that no thread keeps one for a ping)."""
    if isinstance(broker, RedisBroker):
        broker.client.ping()
    elif isinstance(broker, RabbitmqBroker):
        pika.BlockingConnection(broker.parameters).close()
    else:
        raise TypeError(f"a {type(broker).__name__} connects nowhere to ping")


class CircuitBreaker:
    """Whether this process should skip enqueues for a while, because the broker just failed.

    An enqueue that the replay job also does (after accepting a notification, a retry, a
    fan-out start, a callback: their rows wait in the database) asks :meth:`skips` first. A
    broker error in any enqueue that :meth:`watch` wraps opens the breaker for
    ``BROKER_BREAKER_SECONDS``; until then those enqueues are skipped at once, instead of each
    waiting out ``BROKER_TIMEOUT_SECONDS`` on a hung broker. The first one asked after that
    starts a ping in the background (``probe``), one at a time: it answers, the breaker closes;
    it fails, the breaker stays open another period. A watched enqueue that succeeds, such as
    the replay job's, which never skips, closes it too. Per process; threads share it.
    """

    def __init__(self, probe: Callable[[], None]) -> None:
        self._probe = probe
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._probing = False
        self._epoch = 0  # which broker the state is about; a ping of an older one is ignored

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def skips(self) -> bool:
        """True while open: leave the work to the replay job (and ping if the period is over)."""
        if self._open_until is None:
            return False
        with self._lock:
            if self._open_until is None:
                return False
            if monotonic() >= self._open_until and not self._probing:
                self._probing = True
                threading.Thread(
                    target=self._run_probe, args=(self._epoch,), name="broker-probe", daemon=True
                ).start()
        return True

    def trip(self, error: BaseException) -> None:
        """Open (or keep open) for another ``BROKER_BREAKER_SECONDS`` after ``error``."""
        if settings.BROKER_BREAKER_SECONDS <= 0:
            return
        with self._lock:
            opening = self._open_until is None
            self._open_until = monotonic() + settings.BROKER_BREAKER_SECONDS
        if opening:
            logger.warning(
                "broker unavailable (%r): enqueues are skipped for %g s at a time until it "
                "answers; the replay job sends what waits",
                error,
                settings.BROKER_BREAKER_SECONDS,
            )

    def close(self) -> None:
        """The broker answered: enqueue again."""
        if self._open_until is None:
            return
        with self._lock:
            closing, self._open_until = self._open_until is not None, None
        if closing:
            logger.info("broker answers again: enqueueing resumes")

    def reset(self) -> None:
        """Another broker is in use: closed, and a ping under way no longer counts."""
        with self._lock:
            self._epoch += 1
            self._open_until, self._probing = None, False

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Around an enqueue: a broker error trips the breaker (and propagates); success
        closes it."""
        try:
            yield
        except BROKER_ERRORS as error:
            self.trip(error)
            raise
        self.close()

    def _run_probe(self, epoch: int) -> None:
        """The probe thread: ping, then close the breaker or keep it open. It is the thread's
        boundary: a ping that cannot run at all (a bug) is logged with its traceback and
        counts as a failure, so that ``_probing`` is cleared and later pings still run."""
        failure: BaseException | None = None
        try:
            self._probe()
        except BROKER_ERRORS as error:
            failure = error
        except Exception as error:  # the thread's boundary (see above)
            logger.exception("broker ping failed")
            failure = error
        with self._lock:
            current = epoch == self._epoch
            if current:
                self._probing = False
        if current and failure:
            self.trip(failure)
        elif current:
            self.close()


#: This process's breaker, for its global broker.
breaker = CircuitBreaker(lambda: ping(dramatiq.get_broker()))

"""The running parts the invariant test drives: the broker under test (which it can take down),
an in-process worker (which it can restart), a ``dramatiq tasks.worker`` subprocess (which it kills),
and :func:`settle`, which waits until every queue is drained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker

import tasks
from dev.embedded_redis import EmbeddedRedis, free_port
from tasks.broker import create_broker, use_broker
from tests.invariants.clock import DRAMATIQ_ON_CLOCK
from tests.support import running_worker

ROOT = Path(__file__).resolve().parents[2]
ACTORS = list(tasks.ACTORS.values())
QUEUES = sorted({actor.queue_name for actor in ACTORS})
#: How long the queues may take to drain after a step, and a subprocess to reach DATA.
SETTLE_SECONDS = 60
PROCESS_SECONDS = 60


@dataclass
class BrokerUnderTest:
    """The broker every part uses. On Redis it runs on a Redis of its own (``server``), so an
    outage is that server stopped and started empty; RabbitMQ is shared and keeps its durable
    queues across a restart, so there an outage is the broker unreachable (a closed port)."""

    kind: str
    url: str
    broker: dramatiq.Broker
    server: EmbeddedRedis | None = None

    @contextmanager
    def outage(self) -> Iterator[None]:
        """While the block runs, nobody can enqueue: the API and workers see the broker down."""
        if self.server is not None:
            self.server.stop()
            try:
                yield
            finally:
                self.server.start()
            return
        unreachable = create_broker(f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
        use_broker(unreachable, ACTORS)
        try:
            yield
        finally:
            use_broker(self.broker, ACTORS)
            unreachable.close()

    def waiting(self) -> int:
        """Jobs not yet finished on every queue, delayed ones included (on Redis, with those
        this process's worker took and has not acked; not those a killed worker held)."""
        if not isinstance(self.broker, RedisBroker):
            return sum(sum(self.broker.get_queue_message_counts(q)[:2]) for q in QUEUES)
        namespace, acks = self.broker.namespace, f"{self.broker.namespace}:__acks__"
        with self.broker.client.pipeline(transaction=False) as pipeline:
            for queue in (name for q in QUEUES for name in (q, f"{q}.DQ")):
                pipeline.llen(f"{namespace}:{queue}")
                pipeline.scard(f"{acks}.{self.broker.broker_id}.{queue}")
            return sum(pipeline.execute())

    def flush(self) -> None:
        if isinstance(self.broker, RedisBroker):
            self.broker.client.flushdb()


class WorkerUnderTest:
    """An in-process Dramatiq worker (``tests.support.running_worker``) that can be restarted
    and paused."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        self._stack = ExitStack()
        self.worker: dramatiq.Worker | None = None

    def start(self, threads: int = 2) -> None:
        self.worker = self._stack.enter_context(running_worker(self.broker, threads=threads))

    def stop(self) -> None:
        self._stack.close()
        self.worker = None

    def restart(self, threads: int) -> None:
        self.stop()
        self.start(threads)

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.worker.pause()
        try:
            yield
        finally:
            self.worker.resume()


def settle(broker: BrokerUnderTest, worker: WorkerUnderTest) -> None:
    """Wait until no job waits on any queue and the worker has finished what it took (delayed
    retries included). A RabbitMQ count leaves out the jobs a consumer has taken but not yet
    handed to a worker thread, so there it must be seen three times in a row."""
    deadline = time.monotonic() + SETTLE_SECONDS
    needed = 1 if isinstance(broker.broker, RedisBroker) else 3
    quiet = 0
    while quiet < needed:
        worker.worker.join()
        quiet = quiet + 1 if broker.waiting() == 0 else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"the queues did not drain within {SETTLE_SECONDS}s")
        time.sleep(0.02)
    worker.worker.join()


def kill_worker_process(
    broker: BrokerUnderTest,
    env: dict[str, str],
    instant: str,
    reached_data: Callable[[float], bool],
    nudge: Callable[[], None],
) -> None:
    """Start ``dramatiq tasks.worker`` (Herald's clock standing at ``instant``), wait until it
    is inside an SMTP transaction (``reached_data(timeout)``), and SIGKILL it there. ``nudge``
    enqueues its work again now and then (a shared RabbitMQ may hand a job to another
    consumer)."""
    process = subprocess.Popen(
        [sys.executable, "-c", DRAMATIQ_ON_CLOCK, instant],
        cwd=ROOT,
        env={**os.environ, **env, "BROKER_URL": broker.url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + PROCESS_SECONDS
        while not reached_data(5):
            assert process.poll() is None, "the dramatiq tasks.worker subprocess exited"
            assert time.monotonic() < deadline, "the subprocess never reached DATA"
            nudge()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

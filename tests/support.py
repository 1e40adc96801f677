"""Test helpers: a scriptable SMTP server and polling."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from dev.mailcatcher import MailCatcher


class ScriptedMailServer(MailCatcher):
    """The dev mail catcher, plus scripted refusals: ``data_replies`` are answered to DATA in
    turn before accepting; ``rcpt_replies`` answer RCPT TO for the given addresses."""

    def __init__(self) -> None:
        super().__init__()
        self.data_replies: list[str] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_commands = 0
        self.sessions: set = set()  # client (host, port) per connection

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        self.sessions.add(session.peer)
        if self.data_replies:
            return self.data_replies.pop(0)
        return await super().handle_DATA(server, session, envelope)


def started_with_output(command, **popen) -> tuple[subprocess.Popen, list[str], threading.Thread]:
    """Start ``command`` in a session of its own, its stdout and stderr read into a list of
    lines (as they come, by the daemon thread returned: join it once the process ended to have
    them all) that a test can poll."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **popen,
    )
    output: list[str] = []
    reader = threading.Thread(
        target=lambda: output.extend(line.decode(errors="replace") for line in process.stdout),
        daemon=True,
    )
    reader.start()
    return process, output, reader


def stopped_group(
    process: subprocess.Popen, reader: threading.Thread, signum=signal.SIGTERM
) -> int:
    """Stop the process group ``started_with_output`` started with ``signum`` (SIGKILL if it has
    not exited within 30 seconds); its exit status, once the last of its output is read."""
    os.killpg(process.pid, signum)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait(10)
    finally:
        reader.join(5)


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@contextmanager
def running_worker(broker: dramatiq.Broker, threads: int = 2) -> Iterator[dramatiq.Worker]:
    """A real Dramatiq worker consuming from ``broker`` for the duration of the block."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        # A stopped worker leaves its middleware on the broker; tests start many workers.
        broker.middleware[:] = [
            m for m in broker.middleware if getattr(m, "worker", None) is not worker
        ]


def drain(broker: dramatiq.Broker, worker: dramatiq.Worker, queue: str = "email") -> None:
    """Wait until ``queue`` is empty and ``worker`` has finished what it took."""
    broker.join(queue, timeout=10_000)
    worker.join()


def waiting_jobs(broker: dramatiq.Broker, queue: str) -> int:
    """How many jobs wait on ``queue`` (not delayed), on a Redis or a RabbitMQ broker."""
    if isinstance(broker, RedisBroker):
        return broker.client.llen(f"{broker.namespace}:{queue}")
    ready, _delayed, _dead = broker.get_queue_message_counts(queue)
    return ready


def settled(message_id, *states) -> Callable[[], bool]:
    """A ``wait_until`` condition: the message has reached one of ``states``."""
    from tests.factories import message

    return lambda: message(message_id).state in states


@contextmanager
def counted_statements(database) -> Iterator[list[str]]:
    """The SQL statements ``database`` (the peewee database itself, not its proxy) runs inside
    the block, as a list of their texts: every query, and the transaction statements peewee
    issues, goes through its ``execute_sql``."""
    statements: list[str] = []
    original = database.execute_sql

    def counting(sql, *args, **kwargs):
        statements.append(sql)
        return original(sql, *args, **kwargs)

    database.execute_sql = counting
    try:
        yield statements
    finally:
        del database.execute_sql

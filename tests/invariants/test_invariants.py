"""The invariant test: Herald's public operations in random order, its promises checked after
every step (DESIGN.md Promises 1–4 and 8, and no API answer ever a 5xx).

A hypothesis stateful test (``machine.HeraldMachine``): two senders send direct emails,
in-app messages, IDNP recipients (registered or not), broadcasts, scheduled and templated
notifications; cancel, resend, import contacts (JSON and CSV, partial rows), edit templates;
time passes and the scheduler's jobs run; workers restart, a ``dramatiq tasks.worker`` process is
SIGKILLed mid-send; the broker goes down. After each step the database is checked with SQL:
every message final or due, nothing stuck once replay ran, at most one email per attempt,
nobody reading another's data, imports keeping unmentioned fields, retention leaving nothing of
the person and never touching what is not final. Real parts: the session's database (SQLite,
and PostgreSQL at TEST_DATABASE_URL), a Redis of its own as broker (RabbitMQ too at
TEST_RABBITMQ_URL), an aiosmtpd server, Dramatiq workers in process and as a subprocess. Only the
clock is moved by hand (see ``clock``).

The broker outage is real on Redis (its own server, stopped and started empty: queued jobs are
lost); RabbitMQ is shared and keeps durable queues across a restart, so there an outage is the
broker unreachable (enqueueing to a closed port) while the jobs already queued stay.

Run it (15 sequences of 20 steps, about a minute per broker × database on two cores)::

    pytest tests/invariants -p no:cacheprovider
    HERALD_INVARIANTS_PROFILE=long pytest tests/invariants   # 300 sequences of 40 steps

Runs are derandomized (the same sequences each time) except in the long profile. A failure
prints the shortest sequence of steps found that breaks a promise and a ``@reproduce_failure``
blob: ``HERALD_INVARIANTS_REPRODUCE=<the blob's text>`` replays exactly that sequence.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq.worker
import hypothesis
import pytest
from hypothesis import HealthCheck, reproduce_failure
from hypothesis import settings as hypothesis_settings
from hypothesis.stateful import run_state_machine_as_test

from channels import REGISTRY
from dev.embedded_redis import EmbeddedRedis, free_port
from dev.mailcatcher import start_mailcatcher
from settings import settings
from tasks.broker import create_broker, use_broker
from tests.invariants.clock import Clock
from tests.invariants.harness import Harness, JobErrors
from tests.invariants.machine import HeraldMachine
from tests.invariants.mail import AddressScriptedMailServer
from tests.invariants.system import ACTORS, BrokerUnderTest, WorkerUnderTest

hypothesis_settings.register_profile(
    "herald-invariants",
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
hypothesis_settings.register_profile(
    "herald-invariants-long",
    parent=hypothesis_settings.get_profile("herald-invariants"),
    max_examples=300,
    stateful_step_count=40,
    derandomize=False,
)
PROFILE = (
    "herald-invariants-long"
    if os.environ.get("HERALD_INVARIANTS_PROFILE") == "long"
    else ("herald-invariants")
)

#: Small limits, so that retries run out, retention passes and batches split within a run.
CHANNEL_SETTINGS = {
    "EMAIL": {"MAX_RETRIES": 2, "MIN_BACKOFF_MS": 50, "MAX_BACKOFF_MS": 200},
    "INAPP": {"MIN_BACKOFF_MS": 50, "MAX_BACKOFF_MS": 200},
}
SETTINGS = {
    "MESSAGE_RETENTION_DAYS": 2,
    "FANOUT_CHUNK_SIZE": 2,
    "REPLAY_BATCH_SIZE": 2,
    "SCHEDULE_BATCH_SIZE": 2,
    "PURGE_BATCH_SIZE": 2,
}


@contextmanager
def broker_under_test(any_broker, directory) -> Iterator[BrokerUnderTest]:
    """On Redis, a broker on a Redis of its own (the outage rule stops it); RabbitMQ as is."""
    if any_broker.kind != "redis":
        yield BrokerUnderTest(any_broker.kind, any_broker.url, any_broker.broker)
        return
    server = EmbeddedRedis(directory=str(directory)).start()
    own = create_broker(server.url)
    use_broker(own, ACTORS)
    try:
        yield BrokerUnderTest("redis", server.url, own, server)
    finally:
        own.close()
        server.stop()
        use_broker(any_broker.broker, ACTORS)


@pytest.fixture
def harness(any_broker, db, redis_url, tmp_path, monkeypatch):
    clock = Clock()
    clock.install(monkeypatch)
    for name, value in SETTINGS.items():
        monkeypatch.setattr(settings, name, value)
    for prefix, values in CHANNEL_SETTINGS.items():
        for name, value in values.items():
            monkeypatch.setattr(settings.channel(prefix), name, value)
    monkeypatch.setattr(dramatiq.worker, "CONSUMER_RESTART_DELAY_SECS", 0.1)
    smtp = AddressScriptedMailServer()
    port = free_port()
    controller = start_mailcatcher(smtp, "127.0.0.1", port)
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setattr(settings, "SMTP_PORT", port)
    env = {name: str(value) for name, value in SETTINGS.items()}
    for prefix, values in CHANNEL_SETTINGS.items():
        env.update({f"{prefix}_{name}": str(value) for name, value in values.items()})
    env.update(DATABASE_URL=db.herald_url, REDIS_URL=redis_url, SMTP_PORT=str(port))
    from api.app import create_app

    app = create_app()
    app.config["TESTING"] = True
    with broker_under_test(any_broker, tmp_path / "broker") as broker:
        worker = WorkerUnderTest(broker.broker)
        worker.start()
        harness = Harness(app, broker, worker, smtp, clock, env)
        errors = JobErrors(harness.job_errors)
        logging.getLogger("dramatiq").addHandler(errors)
        try:
            yield harness
        finally:
            logging.getLogger("dramatiq").removeHandler(errors)
            worker.stop()
            REGISTRY["email"].close()
            controller.stop()


@pytest.mark.e2e
# Workers draw retry jitter from `random` while hypothesis draws a step's arguments.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_promises_hold_whatever_happens(harness):
    machine = functools.partial(HeraldMachine, harness)
    if blob := os.environ.get("HERALD_INVARIANTS_REPRODUCE"):
        machine = reproduce_failure(hypothesis.__version__, blob.encode())(machine)
    run_state_machine_as_test(machine, settings=hypothesis_settings.get_profile(PROFILE))

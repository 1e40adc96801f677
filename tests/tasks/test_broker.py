"""Only a broker's errors mean "the broker is down": a programming error in an enqueue
propagates, and one in the breaker's ping is logged with its traceback. Before a process's entry
point binds a broker, Herald's actors wait on a placeholder that connects nowhere and refuses
every message: a process that forgot to bind fails loudly, it neither keeps messages in memory
nor lets Dramatiq build its default broker."""

import logging

import dramatiq
import pytest

from models.base import new_id
from settings import settings
from tasks import ACTORS, bind_broker
from tasks.broker import (
    PLACEHOLDER,
    BrokerNotBound,
    CircuitBreaker,
    breaker,
    broker_bound,
    use_broker,
)
from tasks.deliver import enqueue
from tasks.fanout import start_fanout
from tests.support import wait_until


def test_a_bug_in_an_enqueue_propagates_and_leaves_the_breaker_closed(queues, monkeypatch):
    breaker.reset()

    def enqueue_with_a_bug(message, delay=None):
        raise KeyError("options")

    monkeypatch.setattr(queues, "enqueue", enqueue_with_a_bug)

    with pytest.raises(KeyError):
        enqueue([("m-1", "email")], quiet=True)
    assert not breaker.is_open


def test_a_ping_that_cannot_run_is_logged_with_its_traceback_and_pings_go_on(monkeypatch, caplog):
    monkeypatch.setattr(settings, "BROKER_BREAKER_SECONDS", 0.01)
    pings = []

    def ping() -> None:
        pings.append(len(pings))
        if len(pings) == 1:
            raise KeyError("a bug in the ping")

    probed = CircuitBreaker(ping)
    probed.trip(ConnectionRefusedError())
    with caplog.at_level(logging.ERROR, logger="tasks.broker"):
        wait_until(lambda: not probed.skips())

    assert pings == [0, 1]
    (failed,) = [r for r in caplog.records if r.getMessage() == "broker ping failed"]
    assert isinstance(failed.exc_info[1], KeyError)


@pytest.fixture
def unbound(broker):
    """The actors back on the placeholder, as in a process whose entry point has not run."""
    use_broker(PLACEHOLDER, list(ACTORS.values()))
    yield
    use_broker(broker, list(ACTORS.values()))


def test_a_message_sent_before_binding_is_refused(unbound):
    assert not broker_bound()
    with pytest.raises(BrokerNotBound):
        enqueue([(new_id(), "email")], quiet=True)  # not a broker outage: it propagates
    with pytest.raises(BrokerNotBound):
        start_fanout(new_id())


def test_binding_moves_every_actor_onto_the_broker(unbound, redis_url):
    bound = bind_broker(redis_url)
    try:
        assert broker_bound() and dramatiq.get_broker() is bound
        assert {actor.broker for actor in ACTORS.values()} == {bound}
    finally:
        bound.close()

"""Only a broker's errors mean "the broker is down": a programming error in an enqueue
propagates, and one in the breaker's ping is logged with its traceback."""

import logging

import pytest

import settings
from tasks.broker import CircuitBreaker, breaker
from tasks.deliver import enqueue
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

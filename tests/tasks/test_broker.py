"""Before a process's entry point binds a broker, Herald's actors wait on a placeholder that
connects nowhere and refuses every message: a process that forgot to bind fails loudly, it
neither keeps messages in memory nor lets Dramatiq build its default broker."""

import dramatiq
import pytest

from models.base import new_id
from tasks import ACTORS, bind_broker
from tasks.broker import PLACEHOLDER, BrokerNotBound, broker_bound, use_broker
from tasks.deliver import enqueue
from tasks.fanout import start_fanout


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

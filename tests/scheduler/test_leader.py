"""The leader lock on a real Redis: one leader at a time, takeover after the TTL."""

import time

import pytest
import redis

from scheduler import as_leader
from scheduler.leader import LeaderLock


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.delete("herald:test:leader")
    yield client
    client.delete("herald:test:leader")


def test_only_one_process_leads(client):
    first = LeaderLock(client, ttl_seconds=5, key="herald:test:leader")
    second = LeaderLock(client, ttl_seconds=5, key="herald:test:leader")

    assert first.hold() is True
    assert second.hold() is False
    assert first.hold() is True  # renewal

    first.release()
    assert second.hold() is True
    assert first.hold() is False


def test_a_standby_takes_over_when_the_leader_stops_renewing(client):
    leader = LeaderLock(client, ttl_seconds=0.3, key="herald:test:leader")
    standby = LeaderLock(client, ttl_seconds=0.3, key="herald:test:leader")
    assert leader.hold()

    time.sleep(0.4)  # the leader died: no renewal

    assert standby.hold() is True
    assert leader.hold() is False


def test_jobs_run_only_on_the_leader(client):
    leader = LeaderLock(client, ttl_seconds=5, key="herald:test:leader")
    standby = LeaderLock(client, ttl_seconds=5, key="herald:test:leader")
    runs = []

    def job():
        runs.append(1)

    leader.hold()
    as_leader(standby, job)()
    as_leader(leader, job)()

    assert runs == [1]


def test_redis_down_means_standby():
    unreachable = redis.Redis(port=9, socket_connect_timeout=0.2)
    assert LeaderLock(unreachable, ttl_seconds=5).hold() is False

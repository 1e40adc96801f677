"""A Redis leader lock: of several scheduler processes, only the holder acts.

The lock is a key with a short TTL holding this process's token. The holder renews it before
every job and on a timer; if the holder dies, the key expires and a standby takes it over.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

import redis

from tasks import metrics

logger = logging.getLogger(__name__)

_ACQUIRE_OR_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(
        self, client: redis.Redis, ttl_seconds: float, key: str = "herald:scheduler:leader"
    ):
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        self.token = uuid.uuid4().hex
        self.is_leader = False
        self._acquire_or_renew = client.register_script(_ACQUIRE_OR_RENEW)
        self._release = client.register_script(_RELEASE)

    def hold(self) -> bool:
        """Take or renew the lock; True while this process is the leader."""
        try:
            held = bool(self._acquire_or_renew(keys=[self.key], args=[self.token, self.ttl_ms]))
        except redis.RedisError as error:
            logger.warning("leader lock: Redis unavailable (%r); standing by", error)
            held = False
        if held != self.is_leader:
            logger.info("scheduler %s: %s", self.token[:8], "leader" if held else "standby")
        self.is_leader = held
        metrics.leadership(held)
        return held

    def release(self) -> None:
        """Give the lock up (on shutdown) so a standby need not wait for the TTL."""
        with contextlib.suppress(redis.RedisError):
            self._release(keys=[self.key], args=[self.token])
        self.is_leader = False
        metrics.leadership(False)

"""Per-sender rate limits, counted in Redis so that every web process and worker shares them.

Requests per minute: a **fixed window** per sender, the key ``herald:rate:<sender>:<w>:<n>``
for the ``n``-th window of ``w`` seconds since the epoch, bumped by ``INCR`` and given an
``EXPIRE`` in one MULTI/EXEC pipeline: one round trip, atomic, one small key per active
sender. A fixed window was chosen over a sliding one because it costs one counter (a sliding
log costs a sorted-set entry per request, 3,000 a minute per busy sender), its reset time is
exact (the RateLimit header's ``t``), and its known weakness (up to twice the limit across a
window boundary) is bounded. Windows follow each process's clock, which NTP keeps within
milliseconds across hosts.

Messages per day: one counter per sender per UTC day (``herald:daily:<sender>:<date>``),
taken from by a Lua script that adds only what fits (:func:`take_messages`), so two requests
racing for the last messages of a day cannot both get them.

Redis unreachable (down, hung past RATE_LIMIT_TIMEOUT_SECONDS, not configured): every check
lets the request through and says so in the log, at most once a minute per process (the
outbox must not depend on the limiter). The client is built once per process, on first use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from models.sender import Sender
from settings import settings
from tasks.errors import TaskError

logger = logging.getLogger(__name__)

#: The per-minute window in seconds (tests shorten it).
MINUTE = 60
#: How often, at most, a process logs that the limiter cannot reach Redis.
LOG_EVERY_SECONDS = 60.0
#: After a failed call, how long the limiter skips Redis (a hung one would cost every request
#: the timeout).
SKIP_SECONDS = 1.0
DAY = 86400

#: KEYS[1] the day's counter; ARGV: wanted, limit, ttl, all-or-nothing (1/0). Adds what fits
#: (with all-or-nothing: all or none); returns {granted, used after}.
TAKE_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
local granted = math.max(0, math.min(wanted, tonumber(ARGV[2]) - used))
if ARGV[4] == '1' and granted < wanted then granted = 0 end
if granted > 0 then
  used = redis.call('INCRBY', KEYS[1], granted)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
end
return {granted, used}
"""


@dataclass(frozen=True)
class Window:
    """A sender's per-minute state after a request: ``limit`` requests per ``seconds``,
    ``used`` so far in this window (this request included), the window ending in ``reset``
    seconds."""

    limit: int
    seconds: int
    used: int
    reset: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit


def window_of(now: float, seconds: int) -> tuple[int, int]:
    """The fixed window ``now`` falls in: its number since the epoch, and the whole seconds
    until it ends (1 to ``seconds``; a reset of 0 would invite a retry inside this window)."""
    number = int(now // seconds)
    reset = math.ceil((number + 1) * seconds - now)
    return number, max(1, min(seconds, reset))


class _Redis:
    """The process's one client (rebuilt only if REDIS_URL changes), and its failure memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._url: str | None = None
        self._client: redis.Redis | None = None
        self._take: redis.commands.core.Script | None = None
        self._skip_until = 0.0
        self._logged_at = -LOG_EVERY_SECONDS

    def client(self) -> redis.Redis | None:
        url = settings.REDIS_URL or _redis_broker_url()
        if not url:
            self.unavailable("no Redis configured (REDIS_URL)")
            return None
        if time.monotonic() < self._skip_until:
            return None
        if url != self._url:
            with self._lock:
                if url != self._url:
                    timeout = settings.RATE_LIMIT_TIMEOUT_SECONDS
                    client = redis.Redis.from_url(
                        url, socket_connect_timeout=timeout, socket_timeout=timeout
                    )
                    self._take = client.register_script(TAKE_SCRIPT)
                    self._client, self._url = client, url
        return self._client

    def take_script(self):
        return self._take

    def failed(self, error: Exception) -> None:
        self._skip_until = time.monotonic() + SKIP_SECONDS
        self.unavailable(repr(error))

    def unavailable(self, why: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            logger.warning("rate limits not enforced: Redis unreachable (%s)", why)

    def forget(self) -> None:
        """Drop the client and the failure memory (tests that move Redis)."""
        with self._lock:
            self._url = self._client = self._take = None
            self._skip_until, self._logged_at = 0.0, -LOG_EVERY_SECONDS


_redis = _Redis()
forget_client = _redis.forget


def _redis_broker_url() -> str:
    url = settings.broker_url()
    return url if url.startswith(("redis:", "rediss:", "unix:")) else ""


def per_minute_limit(sender: Sender) -> int:
    override = sender.rate_limit_per_minute
    return settings.API_RATE_LIMIT_PER_MINUTE if override is None else override


def daily_limit(sender: Sender) -> int:
    override = sender.daily_message_limit
    return settings.DAILY_MESSAGE_LIMIT if override is None else override


def count_request(sender: Sender, now: float | None = None) -> Window | None:
    """Count one request of ``sender`` in its current window; None when it has no limit or
    Redis cannot be reached (the request goes through)."""
    limit = per_minute_limit(sender)
    client = _redis.client() if limit else None
    if client is None:
        return None
    seconds = MINUTE
    number, reset = window_of(time.time() if now is None else now, seconds)
    key = f"herald:rate:{sender.id}:{seconds}:{number}"
    try:
        pipe = client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, seconds + 1)
        used, _ = pipe.execute()
    except (redis.RedisError, OSError) as error:
        _redis.failed(error)
        return None
    return Window(limit, seconds, int(used), reset)


class DailyLimitExceeded(TaskError):
    """Taking ``wanted`` messages would pass the sender's ``limit`` for the UTC day."""

    def __init__(self, limit: int, wanted: int, remaining: int, reset: int):
        super().__init__(f"daily message limit {limit}: {wanted} wanted, {remaining} left")
        self.limit, self.wanted, self.remaining, self.reset = limit, wanted, remaining, reset


def _day_key(sender_id: int, now: datetime) -> str:
    return f"herald:daily:{sender_id}:{now.date().isoformat()}"


def seconds_to_midnight(now: datetime) -> int:
    return DAY - (now.hour * 3600 + now.minute * 60 + now.second)


@dataclass(frozen=True)
class Taken:
    """Messages granted from a sender's day: ``granted`` of those asked, under ``key`` (to
    give back what is not used); ``limit`` 0 means no limit was counted (no limit, or Redis
    unreachable: everything granted)."""

    granted: int
    limit: int = 0
    used: int = 0
    key: str = ""
    reset: int = 0


def take_messages(sender: Sender, wanted: int, *, all_or_nothing: bool = False) -> Taken:
    """Take up to ``wanted`` messages from the sender's daily allowance: all of them, or as
    many as are left (``all_or_nothing``: or none). Redis unreachable or no limit: all granted
    (logged)."""
    limit = daily_limit(sender)
    if not limit or wanted <= 0:
        return Taken(wanted)
    client = _redis.client()
    script = _redis.take_script()
    if client is None or script is None:
        return Taken(wanted)
    now = datetime.now(UTC)
    key, reset = _day_key(sender.id, now), seconds_to_midnight(now)
    try:
        granted, used = script(
            keys=[key], args=[wanted, limit, DAY + 3600, int(all_or_nothing)], client=client
        )
    except (redis.RedisError, OSError) as error:
        _redis.failed(error)
        return Taken(wanted)
    return Taken(int(granted), limit, int(used), key, reset)


def take_all_messages(sender: Sender, wanted: int) -> Taken:
    """Take ``wanted`` messages, or none (:class:`DailyLimitExceeded`) if they do not all fit."""
    taken = take_messages(sender, wanted, all_or_nothing=True)
    if taken.granted < wanted:
        raise DailyLimitExceeded(taken.limit, wanted, max(0, taken.limit - taken.used), taken.reset)
    return taken


def give_back(taken: Taken, count: int) -> None:
    """Return ``count`` messages of ``taken`` that were not created after all."""
    if not taken.key or count <= 0:
        return
    client = _redis.client()
    if client is None:
        return
    try:
        client.decrby(taken.key, count)
    except (redis.RedisError, OSError) as error:
        _redis.failed(error)

"""Channel rate limits, shared by all workers through Redis, honour fractional rates: 0.2/s is
one send per 5 s, 2.5/s five per 2 s. Dramatiq's window limiter reads the clock from its
module; a controlled clock there steps through a minute so no count depends on how fast this
machine runs. Redis, the limiter and ``rate_allows`` are the real ones."""

import dramatiq.rate_limits.window
import pytest

from channels import get_channel
from settings import SETTINGS, settings
from tasks.deliver import rate_allows

START = 1_900_000_000  # a whole second, so each simulated second is one window bucket
STEPS_PER_SECOND = 10


class Clock:
    """Stands in for the ``time`` module inside Dramatiq's window limiter."""

    def __init__(self) -> None:
        self.now = float(START)

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(dramatiq.rate_limits.window, "time", clock)
    return clock


def acquisitions(clock: Clock, seconds: int) -> list[float]:
    """Try to send ten times a second for ``seconds``; the simulated times of the sends let."""
    channel, allowed = get_channel("inapp"), []
    for step in range(seconds * STEPS_PER_SECOND):
        clock.now = START + step / STEPS_PER_SECOND
        if rate_allows(channel):
            allowed.append(clock.now - START)
    return allowed


@pytest.mark.parametrize(
    ("rate", "limit", "window", "per_minute"),
    [(0.2, 1, 5, 12), (2.5, 5, 2, 150), (5, 5, 1, 300), ("1/3", 1, 3, 20)],
)
def test_a_fractional_rate_is_honoured(queues, clock, monkeypatch, rate, limit, window, per_minute):
    value = SETTINGS["INAPP_RATE_LIMIT_PER_SECOND"].read(str(rate))
    monkeypatch.setattr(settings.INAPP, "RATE_LIMIT_PER_SECOND", value)

    allowed = acquisitions(clock, 60)

    assert len(allowed) == per_minute
    for start in range(60):
        in_window = [t for t in allowed if start <= t < start + window]
        assert len(in_window) <= limit, (start, in_window)


def test_no_rate_is_no_limit(queues, clock, monkeypatch):
    monkeypatch.setattr(settings.INAPP, "RATE_LIMIT_PER_SECOND", 0)
    assert len(acquisitions(clock, 2)) == 2 * STEPS_PER_SECOND

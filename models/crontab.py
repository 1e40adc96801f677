"""Crontab lines read as Vixie cron (and cronie) reads them, matched on a time zone's wall clock.

Five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec) and
weekday (0-7, 0 and 7 both Sunday, or sun-sat). Each field is ``*`` or a comma-separated list
of values and ranges ``a-b``; ``*`` and ranges take a step (``*/2``, ``8-18/2``), counted from
the field's first value. When neither day of month nor weekday starts with ``*``, a day matches
if either matches; otherwise both must (so ``*/2`` counts as unrestricted there, as in cron).

croniter finds the times: it is given the line with every field spelled as plain numbers (it
reads some spellings unlike cron, ``7-7`` as every day) and searches the wall clock (naive
times), which ``wall_instant`` then places in the time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from models.errors import ModelError

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_PART = re.compile(r"^(?:(\*)|(\w+)(?:-(\w+))?)(?:/(\d+))?$")
#: Matches of a line that a repeated hour (clocks going back) may hold, already past.
_MAX_REPEATED = 2 * 60


class CrontabError(ModelError, ValueError):
    """A line that is not a crontab line; the message names the field at fault."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    first_name: int = 0

    def value(self, text: str) -> int:
        if text.isdigit():
            number = int(text)
        elif text.lower() in self.names:
            number = self.names.index(text.lower()) + self.first_name
        else:
            raise CrontabError(f"{self.name}: {text!r} is not a number or a name it takes.")
        if not self.low <= number <= self.high:
            raise CrontabError(f"{self.name}: {number} is not within {self.low}-{self.high}.")
        return number

    def values(self, text: str) -> set[int]:
        """The values a field's text stands for."""
        found: set[int] = set()
        for part in text.split(","):
            match = _PART.match(part)
            if not match:
                raise CrontabError(f"{self.name}: {part!r} is not *, a value or a range a-b.")
            star, first, last, step = match.groups()
            if step is not None and not star and last is None:
                raise CrontabError(f"{self.name}: a step goes with * or a range ({part!r}).")
            start = self.low if star else self.value(first)
            end = self.high if star else self.value(last) if last else start
            if start > end:
                raise CrontabError(f"{self.name}: the range {part!r} goes backwards.")
            if step is not None and int(step) < 1:
                raise CrontabError(f"{self.name}: a step is at least 1 ({part!r}).")
            found.update(range(start, end + 1, int(step or 1)))
        return found


FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTHS, first_name=1),
    _Field("weekday", 0, 7, WEEKDAYS),
)


@dataclass(frozen=True)
class Crontab:
    """A parsed crontab line: the values each field allows (weekdays 0-6, Sunday 0) and
    whether a day matches on day of month OR weekday (``days_either``) or on both."""

    line: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_either: bool

    def next_after(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """The first time after ``moment`` (aware) at which the wall clock of ``zone`` shows a
        matching minute, in UTC; None when no date ever matches (31 February)."""
        wall = moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        times = croniter(self._plain(), wall, day_or=self.days_either)
        try:
            for _ in range(_MAX_REPEATED + 1):
                found = wall_instant(times.get_next(datetime), zone)
                if found > moment:
                    return found
        except CroniterBadDateError:
            return None
        return None

    def _plain(self) -> str:
        """The line with every field as a plain list of numbers, which croniter reads as cron
        does (day_or says how it combines the days)."""
        fields = (self.minutes, self.hours, self.days, self.months, self.weekdays)
        return " ".join(",".join(map(str, sorted(values))) for values in fields)


@lru_cache(maxsize=1024)
def parse_crontab(line: str) -> Crontab:
    """The crontab line ``line``; CrontabError naming the field when it is not one."""
    texts = line.split()
    if len(texts) != len(FIELDS):
        raise CrontabError("A crontab line has 5 fields: minute hour day-of-month month weekday.")
    minutes, hours, days, months, weekdays = (
        frozenset(field.values(text)) for field, text in zip(FIELDS, texts, strict=True)
    )
    weekdays = frozenset(day % 7 for day in weekdays)
    either = not (texts[2].startswith("*") or texts[4].startswith("*"))
    return Crontab(line, minutes, hours, days, months, weekdays, either)


def wall_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which the clock of ``zone`` shows the naive time ``wall``: the first
    of the two when clocks go back; when they skip it going forward, the instant they jump."""
    earlier = wall.replace(tzinfo=zone)
    instant = earlier.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    instant = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    while instant.astimezone(zone).replace(tzinfo=None) < wall:
        instant += timedelta(minutes=1)
    return instant

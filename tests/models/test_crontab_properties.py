"""Successive cron occurrences equal a brute-force crontab matcher's, for random lines, time
zones and starting points (many next to a DST transition).

Lines are drawn as fields of parts (``*``, ``*/n``, values, ranges, ``a-b/n``, names), so the
values each field allows are known without parsing the text. The matcher walks the days and
their minutes on the wall clock: a day matches on day of month OR weekday when neither field
starts with ``*``, otherwise on both; a wall time shown twice (clocks going back) counts the
first time, one skipped (clocks going forward) counts at the instant the clock jumps.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from models.crontab import MONTHS, WEEKDAYS
from models.reminder import next_occurrence

ZONES = ("UTC", "Europe/Chisinau", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu")
HORIZON = timedelta(days=400)
COUNT = 5
#: minute, hour, day of month, month, weekday: (first, last, names, value of the first name)
FIELDS = ((0, 59, (), 0), (0, 23, (), 0), (1, 31, (), 1), (1, 12, MONTHS, 1), (0, 7, WEEKDAYS, 0))


def transitions(zone: ZoneInfo) -> list[datetime]:
    """The instants in 2027 at which ``zone``'s UTC offset changes (to the half hour)."""
    found, moment = [], datetime(2027, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year == 2027:
        moment += timedelta(minutes=30)
        if moment.astimezone(zone).utcoffset() != offset:
            found.append(moment)
            offset = moment.astimezone(zone).utcoffset()
    return found


TRANSITIONS = {name: transitions(ZoneInfo(name)) for name in ZONES}


@st.composite
def parts(draw, first: int, last: int, names: tuple, first_name: int):
    """One part of a field: its text and the values it allows."""

    def spelled(value: int) -> str:
        index = value - first_name
        if names and 0 <= index < len(names) and draw(st.booleans()):
            return draw(st.sampled_from([str.lower, str.upper, str.title]))(names[index])
        return str(value)

    shape = draw(st.sampled_from(["*", "*/n", "a", "a", "a-b", "a-b/n"]))
    step = draw(st.integers(1, last - first + 1))
    if shape == "*":
        return "*", set(range(first, last + 1))
    if shape == "*/n":
        return f"*/{step}", set(range(first, last + 1, step))
    low = draw(st.integers(first, last))
    if shape == "a":
        return spelled(low), {low}
    high = draw(st.integers(low, last))
    if shape == "a-b":
        return f"{spelled(low)}-{spelled(high)}", set(range(low, high + 1))
    return f"{spelled(low)}-{spelled(high)}/{step}", set(range(low, high + 1, step))


@st.composite
def crontab_lines(draw):
    """A crontab line, the values of each of its fields, and whether its days are ORed. Half
    are daily (days, months and weekdays ``*``), to meet the hours around DST transitions."""
    texts, values = [], []
    daily = draw(st.booleans())
    for index, (first, last, names, first_name) in enumerate(FIELDS):
        if daily and index >= 2:
            texts.append("*")
            values.append(set(range(first, last + 1)))
            continue
        drawn = draw(st.lists(parts(first, last, names, first_name), min_size=1, max_size=3))
        texts.append(",".join(text for text, _ in drawn))
        values.append(set().union(*(allowed for _, allowed in drawn)))
    values[4] = {day % 7 for day in values[4]}
    either = not (texts[2].startswith("*") or texts[4].startswith("*"))
    return " ".join(texts), values, either


@st.composite
def starts(draw, zone: str):
    """Where to start: anywhere in 2026-2028, or in the 90 minutes before one of ``zone``'s
    transitions."""
    if TRANSITIONS[zone] and draw(st.booleans()):
        near = draw(st.sampled_from(TRANSITIONS[zone]))
        return near + timedelta(minutes=draw(st.integers(-90, 15)))
    minutes = draw(st.integers(0, 3 * 366 * 24 * 60))
    seconds = draw(st.sampled_from([0, 0, 30]))
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes, seconds=seconds)


def instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """When ``zone``'s clock shows ``wall``: the first time if twice; if never, when it jumps."""
    shown = [
        moment
        for fold in (0, 1)
        if (moment := wall.replace(tzinfo=zone, fold=fold).astimezone(UTC))
        .astimezone(zone)
        .replace(tzinfo=None)
        == wall
    ]
    if shown:
        return min(shown)
    moment = wall.replace(tzinfo=zone).astimezone(UTC) - timedelta(hours=3)
    while moment.astimezone(zone).replace(tzinfo=None) < wall:
        moment += timedelta(minutes=1)
    return moment


def brute_force(values, either, zone: ZoneInfo, after: datetime, end: datetime, count=COUNT):
    """The first ``count`` instants in (after, end] at which a matching wall minute shows."""
    minutes, hours, days, months, weekdays = values
    found: set[datetime] = set()
    day, last_day = after.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date()
    while day <= last_day and not (
        len(found) >= count and day > sorted(found)[count - 1].date() + timedelta(days=2)
    ):
        if day.month in months and day_matches(day, days, weekdays, either):
            for hour in hours:
                for minute in minutes:
                    moment = instant(datetime.combine(day, time(hour, minute)), zone)
                    if after < moment <= end:
                        found.add(moment)
        day += timedelta(days=1)
    return sorted(found)[:count]


def day_matches(day: date, days: set, weekdays: set, either: bool) -> bool:
    by_date, by_weekday = day.day in days, (day.weekday() + 1) % 7 in weekdays
    return (by_date or by_weekday) if either else (by_date and by_weekday)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data(), line=crontab_lines(), zone=st.sampled_from(ZONES))
def test_successive_occurrences_are_the_brute_force_matchers(data, line, zone):
    text, values, either = line
    note(text)
    after = data.draw(starts(zone))
    end = after + HORIZON
    schedule = {"cron": text, "timezone": zone, "endAt": end.isoformat()}

    assert occurrences(schedule, after) == brute_force(values, either, ZoneInfo(zone), after, end)


@st.composite
def daily_lines_across(draw, zone: ZoneInfo, transition: datetime):
    """A daily line whose hours include both wall hours next to ``transition``."""
    hours = {(transition + timedelta(minutes=shift)).astimezone(zone).hour for shift in (-1, 0)}
    minutes = draw(st.lists(parts(0, 59, (), 0), min_size=1, max_size=3))
    more_hours = draw(st.lists(parts(0, 23, (), 0), max_size=2))
    texts = [text for text, _ in more_hours] + [str(hour) for hour in sorted(hours)]
    values = [
        set().union(*(allowed for _, allowed in minutes)),
        hours.union(*(allowed for _, allowed in more_hours)),
        *(set(range(first, last + 1)) for first, last, _, _ in FIELDS[2:4]),
        set(range(7)),
    ]
    line = f"{','.join(text for text, _ in minutes)} {','.join(texts)} * * *"
    return line, values


@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data(), zone=st.sampled_from([z for z in ZONES if TRANSITIONS[z]]))
def test_occurrences_around_dst_transitions_are_the_brute_force_matchers(data, zone):
    transition = data.draw(st.sampled_from(TRANSITIONS[zone]))
    line, values = data.draw(daily_lines_across(ZoneInfo(zone), transition))
    after = transition + timedelta(minutes=data.draw(st.integers(-150, 0)))
    end = after + timedelta(hours=4)
    schedule = {"cron": line, "timezone": zone, "endAt": end.isoformat()}

    expected = brute_force(values, False, ZoneInfo(zone), after, end, count=24 * 60)
    assert occurrences(schedule, after, count=24 * 60) == expected


def occurrences(schedule: dict, after: datetime, count: int = COUNT) -> list[datetime]:
    """The schedule's first ``count`` occurrences after ``after``, one next_occurrence at a time."""
    found, moment = [], None
    while len(found) < count and (moment := next_occurrence(schedule, moment, after)):
        found.append(moment)
    return found

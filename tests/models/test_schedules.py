"""Reminder occurrences (fixed times, offsets before an event, cron in a time zone) and quiet
hours (across midnight, in the contact's time zone), computed for an injected "now"."""

from datetime import UTC, datetime, timedelta

import pytest

from models.contact import quiet_until
from models.reminder import count_occurrences, cron_trigger, next_occurrence, parse_offset

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday


def test_offsets_parse_and_bad_ones_do_not():
    assert parse_offset("24h") == timedelta(hours=24)
    assert parse_offset("30m") == timedelta(minutes=30)
    assert parse_offset("2d") == timedelta(days=2)
    for bad in ("24", "h", "1w", "-1h", "1.5h", ""):
        with pytest.raises(ValueError):
            parse_offset(bad)


def test_offsets_before_an_event_occur_in_order():
    schedule = {"eventAt": "2026-11-30T09:00:00+00:00", "before": ["1h", "24h"]}
    first = next_occurrence(schedule, None, NOW)
    second = next_occurrence(schedule, first, NOW)
    assert (first, second) == (
        datetime(2026, 11, 29, 9, tzinfo=UTC),
        datetime(2026, 11, 30, 8, tzinfo=UTC),
    )
    assert next_occurrence(schedule, second, NOW) is None


def test_cron_weekdays_are_crontab_numbers_and_follow_the_time_zone():
    schedule = {"cron": "0 9 1-7 * 1", "timezone": "Europe/Chisinau"}  # first Monday, 09:00
    first = next_occurrence(schedule, None, NOW)
    assert first == datetime(2026, 12, 7, 7, tzinfo=UTC)  # 09:00 EET
    assert next_occurrence(schedule, first, NOW) == datetime(2027, 1, 4, 7, tzinfo=UTC)
    summer = next_occurrence(schedule, datetime(2027, 5, 1, tzinfo=UTC), NOW)
    assert summer == datetime(2027, 5, 3, 6, tzinfo=UTC)  # 09:00 EEST


def test_cron_stops_at_its_end_and_counts_its_occurrences():
    schedule = {"cron": "0 12 * * *", "timezone": "UTC", "endAt": "2026-11-26T12:00:00+00:00"}
    assert count_occurrences(schedule, NOW, 100) == 4
    assert count_occurrences(schedule, NOW, 2) == 3  # stops counting past the limit
    last = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert next_occurrence(schedule, last, NOW) is None


def test_cron_that_does_not_parse_is_refused():
    for bad in ("* * *", "61 * * * *", "0 9 * * funday", "a b c d e"):
        with pytest.raises(ValueError):
            cron_trigger(bad, "UTC")


NIGHT = {"start": "22:00", "end": "08:00", "timezone": "Europe/Chisinau"}


@pytest.mark.parametrize(
    ("utc", "until"),
    [
        (datetime(2026, 11, 23, 19, 59, tzinfo=UTC), None),  # 21:59 local
        (datetime(2026, 11, 23, 20, 0, tzinfo=UTC), datetime(2026, 11, 24, 6, tzinfo=UTC)),
        (datetime(2026, 11, 23, 23, 30, tzinfo=UTC), datetime(2026, 11, 24, 6, tzinfo=UTC)),
        (datetime(2026, 11, 24, 5, 59, tzinfo=UTC), datetime(2026, 11, 24, 6, tzinfo=UTC)),
        (datetime(2026, 11, 24, 6, 0, tzinfo=UTC), None),  # 08:00 local: over
        (datetime(2026, 7, 1, 21, 30, tzinfo=UTC), datetime(2026, 7, 2, 5, tzinfo=UTC)),  # EEST
    ],
)
def test_quiet_hours_span_midnight_in_the_contacts_time_zone(utc, until):
    assert quiet_until(NIGHT, utc) == until


def test_quiet_hours_within_a_day_and_none():
    lunch = {"start": "12:00", "end": "13:00", "timezone": "America/New_York"}
    noon_ny = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    assert quiet_until(lunch, noon_ny) == datetime(2026, 11, 23, 18, tzinfo=UTC)
    assert quiet_until(lunch, noon_ny + timedelta(hours=1)) is None
    assert quiet_until(None, noon_ny) is None

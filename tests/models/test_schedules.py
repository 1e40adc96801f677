"""Reminder occurrences (fixed times, offsets before an event, cron in a time zone) and quiet
hours (across midnight, in the contact's time zone), computed for an injected "now"."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.contact import quiet_until
from models.crontab import CrontabError, parse_crontab
from models.reminder import count_occurrences, next_occurrence, parse_offset

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


CHISINAU = ZoneInfo("Europe/Chisinau")


def occurrences(line: str, after: datetime, count: int, zone: str = "UTC") -> list[datetime]:
    """The next ``count`` occurrences of a cron schedule after ``after``, in UTC."""
    schedule, found = {"cron": line, "timezone": zone}, []
    for _ in range(count):
        after = next_occurrence(schedule, after, NOW)
        found.append(after)
    return found


def days(moments: list[datetime], zone=UTC) -> list[str]:
    return [moment.astimezone(zone).strftime("%a %d") for moment in moments]


def test_cron_weekdays_are_0_to_7_or_names_with_sunday_both_0_and_7():
    every_day = occurrences("0 9 * * 0-6", NOW, 7)
    assert days(every_day) == ["Tue 24", "Wed 25", "Thu 26", "Fri 27", "Sat 28", "Sun 29", "Mon 30"]
    assert occurrences("0 9 * * 1-7", NOW, 7) == every_day
    assert occurrences("0 9 * * sun-sat", NOW, 7) == every_day
    sundays = occurrences("0 9 * * 0", NOW, 3)
    assert days(sundays) == ["Sun 29", "Sun 06", "Sun 13"]
    assert occurrences("0 9 * * 7", NOW, 3) == occurrences("0 9 * * SUN", NOW, 3) == sundays
    assert occurrences("0 9 * * 7-7", NOW, 3) == sundays
    assert days(occurrences("0 9 * * mon,fri-sat", NOW, 4)) == [
        "Fri 27",
        "Sat 28",
        "Mon 30",
        "Fri 04",
    ]


def test_a_step_counts_from_the_fields_first_value():
    assert days(occurrences("0 9 * * */2", NOW, 4)) == ["Tue 24", "Thu 26", "Sat 28", "Sun 29"]
    minutes = occurrences("*/25 10 * * *", NOW, 3)
    assert [m.minute for m in minutes] == [25, 50, 0]
    assert [m.day for m in occurrences("0 0 */10 * *", NOW, 4)] == [1, 11, 21, 31]
    assert [m.month for m in occurrences("0 0 1 */5 *", NOW, 3)] == [1, 6, 11]
    assert [m.hour for m in occurrences("0 8-18/4 * * *", NOW, 3)] == [12, 16, 8]


def test_a_day_matches_on_day_of_month_or_weekday_when_both_are_restricted():
    either = occurrences("0 9 1-7 * mon", NOW, 9)
    assert days(either) == [
        "Mon 30",
        "Tue 01",
        "Wed 02",
        "Thu 03",
        "Fri 04",
        "Sat 05",
        "Sun 06",
        "Mon 07",
        "Mon 14",
    ]
    # A field starting with * leaves the days to the other one: both must match.
    assert days(occurrences("0 9 */2 * mon", NOW, 3)) == ["Mon 07", "Mon 21", "Mon 11"]
    assert days(occurrences("0 9 13 * *", NOW, 2)) == ["Sun 13", "Wed 13"]
    assert days(occurrences("0 9 * * fri", NOW, 2)) == ["Fri 27", "Fri 04"]


def test_nine_oclock_stays_nine_oclock_local_across_both_dst_transitions():
    spring = occurrences("0 9 * * *", datetime(2027, 3, 26, tzinfo=UTC), 4, "Europe/Chisinau")
    assert [m.hour for m in spring] == [7, 7, 6, 6]  # 09:00 EET, then 09:00 EEST from 28 March
    autumn = occurrences("0 9 * * *", datetime(2027, 10, 29, tzinfo=UTC), 4, "Europe/Chisinau")
    assert [m.hour for m in autumn] == [6, 6, 7, 7]  # back to EET on 31 October
    for moment in spring + autumn:
        assert moment.astimezone(CHISINAU).strftime("%H:%M") == "09:00"


def test_a_skipped_time_fires_when_clocks_jump_and_a_repeated_one_fires_once():
    # 28 March 2027 in Chisinau: 02:00 EET becomes 03:00 EEST (00:00 UTC); 02:30 never shows.
    spring = occurrences("30 2 * * *", datetime(2027, 3, 27, 12, tzinfo=UTC), 2, "Europe/Chisinau")
    assert spring == [
        datetime(2027, 3, 28, 0, 0, tzinfo=UTC),
        datetime(2027, 3, 28, 23, 30, tzinfo=UTC),
    ]
    # 31 October 2027: 03:00 EEST becomes 02:00 EET (00:00 UTC); 02:30 shows twice, fires once.
    autumn = occurrences("30 2 * * *", datetime(2027, 10, 30, 12, tzinfo=UTC), 2, "Europe/Chisinau")
    assert autumn == [
        datetime(2027, 10, 30, 23, 30, tzinfo=UTC),
        datetime(2027, 11, 1, 0, 30, tzinfo=UTC),
    ]
    hourly = occurrences("15 * * * *", datetime(2027, 10, 30, 22, tzinfo=UTC), 4, "Europe/Chisinau")
    local = [m.astimezone(CHISINAU).strftime("%H:%M%z") for m in hourly]
    assert local == ["01:15+0300", "02:15+0300", "03:15+0200", "04:15+0200"]


def test_cron_stops_at_its_end_and_counts_its_occurrences():
    schedule = {"cron": "0 12 * * *", "timezone": "UTC", "endAt": "2026-11-26T12:00:00+00:00"}
    assert count_occurrences(schedule, NOW, 100) == 4
    assert count_occurrences(schedule, NOW, 2) == 3  # stops counting past the limit
    last = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert next_occurrence(schedule, last, NOW) is None
    assert count_occurrences({"cron": "0 12 * * *", "timezone": "UTC"}, NOW, 5) == 6


def test_a_line_that_matches_no_date_has_no_occurrence():
    assert next_occurrence({"cron": "0 9 30 2 *", "timezone": "UTC"}, None, NOW) is None
    leap_day = next_occurrence({"cron": "0 9 29 2 *", "timezone": "UTC"}, None, NOW)
    assert leap_day == datetime(2028, 2, 29, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("* * *", "A crontab line has 5 fields"),
        ("0 0 9 * * *", "A crontab line has 5 fields"),
        ("61 * * * *", "minute: 61 is not within 0-59."),
        ("0 24 * * *", "hour: 24 is not within 0-23."),
        ("0 9 0 * *", "day of month: 0 is not within 1-31."),
        ("0 9 * 13 *", "month: 13 is not within 1-12."),
        ("0 9 * * 8", "weekday: 8 is not within 0-7."),
        ("0 9 * * funday", "weekday: 'funday' is not a number or a name it takes."),
        ("0 9 * mon *", "month: 'mon' is not a number or a name it takes."),
        ("a b c d e", "minute: 'a' is not a number or a name it takes."),
        ("0 9 * * fri-mon", "weekday: the range 'fri-mon' goes backwards."),
        ("*/0 * * * *", "minute: a step is at least 1"),
        ("0 9 5/10 * *", "day of month: a step goes with * or a range"),
        ("0 9 L * *", "day of month: 'L' is not a number"),
        ("0 9 ? * *", "day of month: '?' is not *, a value or a range"),
        ("0 9 * * mon#1", "weekday: 'mon#1' is not *, a value or a range"),
        ("0 9 1,,2 * *", "day of month: '' is not *"),
    ],
)
def test_what_is_not_a_crontab_line_is_refused_naming_the_field(line, message):
    with pytest.raises(CrontabError) as refused:
        parse_crontab(line)
    assert str(refused.value).startswith(message)


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

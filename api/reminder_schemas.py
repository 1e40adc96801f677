"""Wire formats of reminders: a notification request plus a schedule of occurrences."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from models.base import EARLIEST, utcnow
from models.crontab import CrontabError, parse_crontab
from models.reminder import count_occurrences, fixed_times, next_occurrence, parse_offset
from settings import settings
from tasks.requests import CamelSchema, Instant, NotificationCreateSchema

#: The request keys that describe the schedule (the rest is the notification to send).
SCHEDULE_KEYS = ("at", "cron", "timezone", "endAt", "eventAt", "before")
_KINDS = ("at", "cron", "event_at")


def check_timezone(name: str) -> None:
    """An IANA time zone name (``Europe/Chisinau``). A name that is a folder of the zone
    database (``America``) or too long for a file name is unknown too, not an OSError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError("Unknown time zone.") from None


def check_crontab(line: str) -> None:
    try:
        parse_crontab(line)
    except CrontabError as error:
        raise ValidationError(str(error)) from None


def check_offset(text: str) -> None:
    try:
        parse_offset(text)
    except ValueError as error:
        raise ValidationError(str(error)) from None


class ReminderCreateSchema(NotificationCreateSchema):
    """``POST /v1/reminders``: what ``POST /v1/notifications`` takes (without ``sendAt``,
    ``validTill`` and ``critical``: a grant is checked when a request is made, and a reminder
    sends long after), and one schedule: ``at``; ``cron`` + ``timezone`` + ``endAt``; or
    ``eventAt`` + ``before``."""

    class Meta(NotificationCreateSchema.Meta):
        exclude = ("send_at", "valid_till", "critical")

    at = fields.List(
        Instant(),
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "Send at each of these times"},
    )
    cron = fields.String(
        validate=[validate.Length(min=1, max=100), check_crontab],
        metadata={
            "description": "A crontab line: minute hour day-of-month month weekday (0-7 or "
            "sun-sat); with both days restricted, a day matches if either matches",
            "example": "0 9 * * mon-fri",
        },
    )
    timezone = fields.String(
        validate=[validate.Length(min=1, max=64), check_timezone],
        metadata={"description": "The time zone whose wall clock the cron line reads (UTC)"},
    )
    end_at = Instant(metadata={"description": "No cron occurrence after this (required with cron)"})
    event_at = Instant(metadata={"description": "The event to remind about"})
    before = fields.List(
        fields.String(validate=[validate.Length(min=1, max=10), check_offset]),
        validate=validate.Length(min=1, max=1000),
        metadata={"description": 'Offsets before eventAt: "24h", "30m", "2d"'},
    )

    @validates_schema(skip_on_field_errors=True)
    def one_schedule(self, data: dict, **kwargs) -> None:
        given = [kind for kind in _KINDS if kind in data]
        if len(given) != 1:
            raise ValidationError("Give one schedule: at, cron or eventAt.", "at")
        if ("before" in data) != ("event_at" in data):
            raise ValidationError("eventAt and before go together.", "before")
        for key, name in (("timezone", "timezone"), ("end_at", "endAt")):
            if key in data and "cron" not in data:
                raise ValidationError("Only for a cron schedule.", name)
        if "cron" in data and "end_at" not in data:
            limit = settings.MAX_REMINDER_OCCURRENCES
            raise ValidationError(
                f"A cron schedule needs endAt (at most {limit} occurrences).", "endAt"
            )

    @post_load
    def to_schedule(self, data: dict, **kwargs) -> dict:
        """Set ``data["schedule"]``, the schedule in its stored form, once it is checked."""
        schedule = wire_schedule(data)
        now = utcnow()
        field = {"at": "at", "cron": "endAt", "eventAt": "before"}[
            next(key for key in ("at", "cron", "eventAt") if key in schedule)
        ]
        if "event_at" in data and _earliest_offset(data) > data["event_at"] - EARLIEST:
            raise ValidationError("Every occurrence must be in the future.", field)
        times = fixed_times(schedule)
        if times is not None and times[0] <= now:
            raise ValidationError("Every occurrence must be in the future.", field)
        limit = settings.MAX_REMINDER_OCCURRENCES
        count = count_occurrences(schedule, now, limit)
        if count > limit:
            raise ValidationError(f"At most {limit} occurrences.", field)
        if count == 0 and "cron" in schedule and not next_occurrence(_endless(schedule), None, now):
            raise ValidationError("The line matches no date (such as 31 February).", "cron")
        if count == 0:
            raise ValidationError("The schedule has no occurrence.", field)
        data["schedule"] = schedule
        return data


def _earliest_offset(data: dict) -> timedelta:
    return max(parse_offset(offset) for offset in data["before"])


def _endless(schedule: dict) -> dict:
    return {key: value for key, value in schedule.items() if key != "endAt"}


def wire_schedule(data: dict) -> dict:
    """The schedule as stored (camelCase keys, ISO 8601 times in UTC)."""
    if "at" in data:
        return {"at": [moment.astimezone(UTC).isoformat() for moment in data["at"]]}
    if "cron" in data:
        schedule = {"cron": data["cron"], "timezone": data.get("timezone", "UTC")}
        if "end_at" in data:
            schedule["endAt"] = data["end_at"].astimezone(UTC).isoformat()
        return schedule
    return {"eventAt": data["event_at"].astimezone(UTC).isoformat(), "before": data["before"]}


class ReminderSchema(CamelSchema):
    id = fields.UUID()
    state = fields.String(metadata={"description": "active, cancelled or done"})
    schedule = fields.Dict()
    next_at = fields.AwareDateTime(allow_none=True)
    fired = fields.Integer(metadata={"description": "Occurrences fired so far"})
    request = fields.Dict(metadata={"description": "The notification each occurrence sends"})
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()

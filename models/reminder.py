"""Reminders: a stored notification request and a schedule of occurrences, each of which fires
one notification, at most once ever (a unique key on the notification's reminder and
occurrence time)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from peewee import CharField, ForeignKeyField, IntegerField, UUIDField

from models.base import BaseModel, JSONField, UTCDateTimeField, new_id, utcnow
from models.crontab import parse_crontab
from models.sender import Sender, visible_to
from models.template import Template

ACTIVE, CANCELLED, DONE = "active", "cancelled", "done"

_OFFSET = re.compile(r"^(\d{1,5})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class Reminder(BaseModel):
    """A reminder campaign: ``request`` is a ``POST /v1/notifications`` body (as sent) and
    ``schedule`` its occurrences, in the wire form (``at``; ``cron``, ``timezone``, ``endAt``;
    or ``eventAt`` and ``before``). ``next_at`` is the next occurrence still to fire."""

    id = UUIDField(primary_key=True, default=new_id)
    sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
    template = ForeignKeyField(Template, null=True, on_delete="SET NULL")
    request = JSONField()
    schedule = JSONField()
    state = CharField(max_length=10, default=ACTIVE, help_text="active, cancelled or done")
    next_at = UTCDateTimeField(null=True)
    fired = IntegerField(default=0, help_text="occurrences fired so far")
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    purged_at = UTCDateTimeField(null=True, help_text="request redacted (retention)")

    class Meta:
        indexes = (
            (("state", "next_at"), False),
            (("sender", "created_at"), False),
            (("state", "purged_at", "updated_at"), False),
        )


def parse_offset(text: str) -> timedelta:
    """``"24h"``, ``"30m"``, ``"2d"`` as a duration; ValueError otherwise."""
    match = _OFFSET.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an offset like 30m, 24h or 2d.")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def fixed_times(schedule: dict) -> list[datetime] | None:
    """The occurrences of an ``at`` or ``eventAt``/``before`` schedule, sorted; None for cron."""
    if "at" in schedule:
        return sorted({_moment(t) for t in schedule["at"]})
    if "eventAt" in schedule:
        event = _moment(schedule["eventAt"])
        return sorted({event - parse_offset(b) for b in schedule["before"]})
    return None


def next_occurrence(schedule: dict, after: datetime | None, now: datetime) -> datetime | None:
    """The first occurrence later than ``after`` (than ``now`` when None), or None when the
    schedule is over. A cron line is matched on the wall clock of the schedule's time zone
    (``models.crontab``), up to its ``endAt``."""
    times = fixed_times(schedule)
    if times is not None:
        return next((t for t in times if after is None or t > after), None)
    line = parse_crontab(schedule["cron"])
    found = line.next_after(after or now, ZoneInfo(schedule["timezone"]))
    end_at = schedule.get("endAt")
    if found is None or (end_at and found > _moment(end_at)):
        return None
    return found


def count_occurrences(schedule: dict, now: datetime, limit: int) -> int:
    """How many occurrences the schedule has after ``now``, counting no further than
    ``limit + 1`` (a cron line without ``endAt`` has more than any limit)."""
    times = fixed_times(schedule)
    if times is not None:
        return len(times)
    count, moment = 0, None
    while count <= limit and (moment := next_occurrence(schedule, moment, now)) is not None:
        count += 1
    return count


def reminder_for(sender: Sender, reminder_id) -> Reminder | None:
    """The reminder with this id if ``sender`` may see it."""
    query = Reminder.select().where(Reminder.id == reminder_id)
    return visible_to(sender, query, Reminder).first()


def reminders_of(sender: Sender):
    """The reminders ``sender`` may see, newest first (a query, for paginating)."""
    return visible_to(sender, Reminder.select(), Reminder).order_by(Reminder.created_at.desc())


def create_reminder(sender: Sender, request: dict, schedule: dict, template_id, now: datetime):
    """Store a reminder whose first occurrence is the schedule's first after ``now``."""
    return Reminder.create(
        sender=sender,
        template=template_id,
        request=request,
        schedule=schedule,
        next_at=next_occurrence(schedule, None, now),
        created_at=now,
        updated_at=now,
    )


def cancel_reminder(reminder: Reminder) -> bool:
    """Stop a reminder's future occurrences; False when it had none left (all fired)."""
    if reminder.state == CANCELLED:
        return True
    cancelled = (
        Reminder.update(state=CANCELLED, next_at=None, updated_at=utcnow())
        .where((Reminder.id == reminder.id) & (Reminder.state == ACTIVE))
        .execute()
    )
    if cancelled:
        reminder.state = CANCELLED
    return bool(cancelled) or Reminder.get_by_id(reminder.id).state == CANCELLED


def due_reminders(now: datetime, limit: int) -> list[Reminder]:
    """Active reminders whose next occurrence is due, earliest first."""
    return list(
        Reminder.select()
        .where((Reminder.state == ACTIVE) & (Reminder.next_at <= now))
        .order_by(Reminder.next_at)
        .limit(limit)
    )


def advance(reminder: Reminder, fired_at: datetime, now: datetime, fired: bool = True) -> bool:
    """Move past the occurrence ``fired_at`` (compare-and-set on it), counting it when this
    process ``fired`` it; the reminder is done when no occurrence is left."""
    following = next_occurrence(reminder.schedule, fired_at, now)
    return bool(
        Reminder.update(
            next_at=following,
            state=ACTIVE if following else DONE,
            fired=Reminder.fired + (1 if fired else 0),
            updated_at=now,
        )
        .where(
            (Reminder.id == reminder.id)
            & (Reminder.state == ACTIVE)
            & (Reminder.next_at == fired_at)
        )
        .execute()
    )


def purge_finished_requests(cutoff: datetime, now: datetime, limit: int) -> int:
    """Blank the requests (recipients, attributes, content) of up to ``limit`` reminders that
    ended, done or cancelled, before ``cutoff`` (their ``updated_at``: the moment they ended)
    and mark them purged at ``now``; how many. An active reminder keeps its request, whatever
    its age; state, schedule and counts stay."""
    ended = (
        Reminder.state.in_((DONE, CANCELLED))
        & Reminder.purged_at.is_null()
        & (Reminder.updated_at < cutoff)
    )
    batch = Reminder.select(Reminder.id).where(ended).limit(limit)
    return (
        Reminder.update(request={}, purged_at=now).where(Reminder.id.in_(batch) & ended).execute()
    )

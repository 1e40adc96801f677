"""Shared model pieces: the base class, UTC timestamps, JSON columns, time-ordered ids."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime

from peewee import DateTimeField, Model, TextField

from models.db import database


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


#: The instants Herald takes in: datetime's range less a day at each end, so that the wall
#: clock of any time zone, and the day before or after, can be computed for every one of them.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
OUT_OF_CALENDAR = "Out of range: must be from 0001-01-02 to 9999-12-30 in UTC."


def in_calendar(moment: datetime) -> bool:
    """Whether the aware ``moment`` lies within EARLIEST..LATEST (comparing never overflows,
    unlike converting it to UTC)."""
    return EARLIEST <= moment <= LATEST


_clock = threading.Lock()
_last = [0, 0]  # milliseconds, counter


def new_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): time-ordered, so new rows append to the primary-key index, and
    monotonic within a process (a 12-bit counter orders ids made in the same millisecond)."""
    with _clock:
        millis = max(time.time_ns() // 1_000_000, _last[0])
        counter = _last[1] + 1 if millis == _last[0] else 0
        if counter > 0xFFF:
            millis, counter = millis + 1, 0
        _last[:] = [millis, counter]
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def new_ids(count: int) -> list[str]:
    """``count`` ids as :func:`new_id` makes them, as 32 hex digits (what a UUID column
    stores), made together: one clock read, lock and random draw for all of them."""
    with _clock:
        millis = max(time.time_ns() // 1_000_000, _last[0])
        counter = _last[1] + 1 if millis == _last[0] else 0
        first = (millis << 12) + counter  # milliseconds and counter, as one number
        last = first + count - 1
        _last[:] = [last >> 12, last & 0xFFF]
    noise = os.urandom(8 * count)
    version = 0x7 << 76
    variant = 0b10 << 62
    mask = (1 << 62) - 1
    ids = []
    for n in range(count):
        stamp = first + n
        value = ((stamp >> 12) & ((1 << 48) - 1)) << 80 | version | (stamp & 0xFFF) << 64
        value |= variant | int.from_bytes(noise[8 * n : 8 * n + 8], "big") & mask
        ids.append(f"{value:032x}")
    return ids


def dashed(hex_id: str) -> str:
    """A UUID's 32 hex digits in its usual form, ``8-4-4-4-12``."""
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


class UTCDateTimeField(DateTimeField):
    """Stores naive UTC in the database and gives back timezone-aware UTC datetimes."""

    def db_value(self, value):
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class JSONField(TextField):
    """A JSON document stored as text (portable between SQLite and PostgreSQL)."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False

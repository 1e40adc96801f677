"""Time-ordered ids and UTC timestamps."""

from datetime import UTC, datetime, timedelta, timezone

from models.base import UTCDateTimeField, new_id


def test_ids_are_uuid7_and_ordered_as_made():
    ids = [new_id() for _ in range(10_000)]
    assert all(value.version == 7 and value.variant == "specified in RFC 4122" for value in ids)
    assert len(set(ids)) == 10_000
    assert ids == sorted(ids)  # even thousands within one millisecond


def test_timestamps_are_stored_as_utc_and_read_back_aware():
    field = UTCDateTimeField()
    chisinau = timezone(timedelta(hours=2))
    stored = field.db_value(datetime(2026, 11, 23, 11, 0, tzinfo=chisinau))
    assert stored == datetime(2026, 11, 23, 9, 0)
    assert field.python_value(stored) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

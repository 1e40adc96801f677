"""``/v1/reminders``: create, list, read and cancel reminder campaigns; bad schedules are 400
naming the field; templates in use by a live reminder cannot be deleted; quiet hours on
contacts."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.base import utcnow
from models.notification import Notification
from models.reminder import Reminder
from scheduler.jobs import send_scheduled
from settings import settings
from tests.factories import contact_body, email_notification, visit_reminder


def iso(moment) -> str:
    return moment.isoformat()


def reminder_body(**schedule) -> dict:
    return email_notification("ion@example.md", **schedule)


def post(client, sender, body):
    return client.post("/v1/reminders", json=body, headers=sender.headers)


def created(client, sender, **schedule) -> dict:
    response = post(client, sender, reminder_body(**schedule))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_reminder_with_times_is_stored_with_its_first_occurrence(client, sender):
    first, second = utcnow() + timedelta(hours=1), utcnow() + timedelta(hours=2)
    reminder = created(client, sender, at=[iso(second), iso(first)])
    assert reminder["state"] == "active"
    assert reminder["fired"] == 0
    assert reminder["nextAt"][:19] == first.isoformat()[:19]
    assert reminder["request"]["recipients"] == [{"type": "email", "value": "ion@example.md"}]
    assert "at" not in reminder["request"]


def test_offsets_before_an_event_and_cron_schedules(client, sender):
    visit = utcnow() + timedelta(days=3)
    by_event = created(client, sender, eventAt=iso(visit), before=["24h", "1h"])
    assert by_event["nextAt"][:19] == (visit - timedelta(hours=24)).isoformat()[:19]
    end = iso(utcnow() + timedelta(days=60))
    weekly = created(client, sender, cron="0 9 * * mon", timezone="Europe/Chisinau", endAt=end)
    assert weekly["schedule"]["cron"] == "0 9 * * mon"
    assert weekly["schedule"]["timezone"] == "Europe/Chisinau"
    assert datetime.fromisoformat(weekly["schedule"]["endAt"]) == datetime.fromisoformat(end)
    assert weekly["nextAt"] is not None


def test_reminders_are_listed_and_read_by_their_sender_only(client, sender, other_sender):
    reminder = created(client, sender, at=[iso(utcnow() + timedelta(hours=1))])
    listed = client.get("/v1/reminders", headers=sender.headers)
    assert [r["id"] for r in listed.get_json()] == [reminder["id"]]
    assert client.get("/v1/reminders", headers=other_sender.headers).get_json() == []
    url = f"/v1/reminders/{reminder['id']}"
    assert client.get(url, headers=sender.headers).get_json()["id"] == reminder["id"]
    assert client.get(url, headers=other_sender.headers).status_code == 404
    assert client.delete(url, headers=other_sender.headers).status_code == 404


def test_cancelling_stops_it_and_a_finished_one_cannot_be_cancelled(client, sender):
    reminder = created(client, sender, at=[iso(utcnow() + timedelta(hours=1))])
    url = f"/v1/reminders/{reminder['id']}"
    assert client.delete(url, headers=sender.headers).status_code == 204
    assert client.get(url, headers=sender.headers).get_json()["state"] == "cancelled"
    assert client.delete(url, headers=sender.headers).status_code == 204
    Reminder.update(state="done").where(Reminder.id == reminder["id"]).execute()
    response = client.delete(url, headers=sender.headers)
    assert response.status_code == 409
    assert response.get_json()["code"] == 409


LATER = utcnow() + timedelta(days=1)


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"cron": "0 25 * * *", "endAt": iso(LATER)}, "cron"),
        ({"cron": "every monday", "endAt": iso(LATER)}, "cron"),
        ({"cron": "0 0 9 * * *", "endAt": iso(LATER)}, "cron"),  # seconds: not crontab
        ({"cron": "0 9 * * mon#1", "endAt": iso(LATER)}, "cron"),
        ({"cron": "0 9 * * fri-mon", "endAt": iso(LATER)}, "cron"),
        ({"cron": "0 9 30 2 *", "endAt": iso(LATER + timedelta(days=800))}, "cron"),
        ({"cron": "0 9 * * *"}, "endAt"),  # uncapped
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus", "endAt": iso(LATER)}, "timezone"),
        ({"at": ["2020-01-01T09:00:00+00:00"]}, "at"),
        ({"at": ["2030-01-01T09:00:00"]}, "at"),  # no offset
        ({"eventAt": iso(LATER), "before": ["1 hour"]}, "before"),
        ({"eventAt": iso(LATER), "before": ["48h"]}, "before"),  # in the past
        ({"eventAt": iso(LATER)}, "before"),
        ({}, "at"),
        ({"at": [iso(LATER)], "cron": "0 9 * * *"}, "at"),
        ({"at": [iso(LATER)], "timezone": "UTC"}, "timezone"),
        ({"at": [iso(LATER)], "sendAt": iso(LATER)}, "sendAt"),
        ({"cron": "0 9 * * *", "endAt": "2020-01-01T00:00:00+00:00"}, "endAt"),
    ],
)
def test_bad_schedules_are_400_naming_the_field(client, sender, schedule, field):
    response = post(client, sender, reminder_body(**schedule))
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert Reminder.select().count() == 0


def test_a_cron_reminder_without_an_end_is_refused_naming_endAt(client, sender):
    response = post(client, sender, reminder_body(cron="0 9 * * *"))
    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "endAt": ["A cron schedule needs endAt (at most 100 occurrences)."]
    }


def fired_at(reminder: dict, zone: str = "UTC") -> list[datetime]:
    """Fire every occurrence of a reminder up to its end (the scheduler's job, given the time);
    the occurrences' local times."""
    send_scheduled(datetime.fromisoformat(reminder["schedule"]["endAt"]) + timedelta(minutes=1))
    query = Notification.select().where(Notification.reminder == reminder["id"])
    moments = [n.occurrence_at for n in query.order_by(Notification.occurrence_at)]
    assert Reminder.get_by_id(reminder["id"]).state == "done"
    return [moment.astimezone(ZoneInfo(zone)) for moment in moments]


def next_monday() -> datetime:
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=7 - today.weekday())


def test_cron_weekdays_run_0_to_7_and_steps_count_from_sunday(client, sender, queues):
    start = next_monday()
    window = {"endAt": iso(start + timedelta(days=7))}
    every_day = created(client, sender, cron="0 9 * * 0-6", **window)
    assert every_day["nextAt"] is not None
    assert len({moment.date() for moment in fired_at(every_day)}) >= 7
    other = created(client, sender, cron="0 9 * * */2", **window)
    assert {moment.strftime("%a") for moment in fired_at(other)} == {"Sun", "Tue", "Thu", "Sat"}


def test_day_of_month_and_weekday_together_match_either(client, sender, queues):
    end = next_monday() + timedelta(days=62)
    reminder = created(client, sender, cron="0 9 1-7 * mon", endAt=iso(end))
    moments = fired_at(reminder)
    assert moments and all(m.day <= 7 or m.strftime("%a") == "Mon" for m in moments)
    assert any(m.day > 7 for m in moments) and any(m.strftime("%a") != "Mon" for m in moments)
    assert {(m.hour, m.minute) for m in moments} == {(9, 0)}


def test_a_local_nine_oclock_stays_nine_oclock_across_both_dst_transitions(client, sender, queues):
    # Sundays of March and October next year: Chisinau changes its clocks on the last of each.
    year = utcnow().year + 1
    end = datetime(year, 11, 1, tzinfo=UTC)
    reminder = created(
        client, sender, cron="0 9 * 3,10 sun", timezone="Europe/Chisinau", endAt=iso(end)
    )
    local = fired_at(reminder, "Europe/Chisinau")
    assert {(m.hour, m.minute) for m in local} == {(9, 0)}
    assert {m.strftime("%a") for m in local} == {"Sun"}
    by_day = {m.date(): m.utcoffset() for m in local if m.year == year}
    last_in_march = max(day for day in by_day if day.month == 3)
    last_in_october = max(day for day in by_day if day.month == 10)
    assert by_day[last_in_march] == timedelta(hours=3)  # EEST from the last Sunday of March
    assert by_day[last_in_march - timedelta(days=7)] == timedelta(hours=2)
    assert by_day[last_in_october] == timedelta(hours=2)  # EET again from the last of October
    assert by_day[last_in_october - timedelta(days=7)] == timedelta(hours=3)


def test_too_many_occurrences_are_refused(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "MAX_REMINDER_OCCURRENCES", 3)
    times = [iso(LATER + timedelta(hours=n)) for n in range(4)]
    assert "at" in post(client, sender, reminder_body(at=times)).get_json()["errors"]
    every_minute = {"cron": "* * * * *", "endAt": iso(utcnow() + timedelta(hours=1))}
    assert "endAt" in post(client, sender, reminder_body(**every_minute)).get_json()["errors"]
    assert post(client, sender, reminder_body(at=times[:3])).status_code == 201


def test_a_template_in_use_by_a_live_reminder_cannot_be_deleted(client, sender):
    template = client.post("/v1/templates", json=visit_reminder(), headers=sender.headers)
    assert template.status_code == 201, template.get_json()
    body = {
        "recipients": [{"type": "email", "value": "ion@example.md"}],
        "template": "visit-reminder",
        "attributes": {"visitDate": "2026-12-01T09:00:00+02:00"},
        "at": [iso(LATER)],
    }
    reminder = post(client, sender, body)
    assert reminder.status_code == 201, reminder.get_json()
    assert client.delete("/v1/templates/visit-reminder", headers=sender.headers).status_code == 409
    client.delete(f"/v1/reminders/{reminder.get_json()['id']}", headers=sender.headers)
    assert client.delete("/v1/templates/visit-reminder", headers=sender.headers).status_code == 204


def test_a_reminder_naming_an_unknown_template_is_refused(client, sender):
    body = {
        "recipients": [{"type": "email", "value": "ion@example.md"}],
        "template": "nope",
        "at": [iso(LATER)],
    }
    response = post(client, sender, body)
    assert response.status_code == 400
    assert "template" in response.get_json()["errors"]


def test_contacts_take_quiet_hours_and_bad_ones_are_400(client, admin):
    quiet = {"start": "22:00", "end": "08:00", "timezone": "Europe/Chisinau"}
    response = client.post(
        "/v1/contacts", json=contact_body(1, quietHours=quiet), headers=admin.headers
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["quietHours"] == quiet
    for bad in (
        {**quiet, "timezone": "Nowhere/City"},
        {**quiet, "start": "25:00"},
        {"start": "22:00"},
    ):
        response = client.post(
            "/v1/contacts", json=contact_body(2, quietHours=bad), headers=admin.headers
        )
        assert response.status_code == 400
        assert "quietHours" in response.get_json()["errors"]
    idnp = contact_body(1)["idnp"]
    patched = client.patch(f"/v1/contacts/{idnp}", json={"quietHours": None}, headers=admin.headers)
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["quietHours"] is None

"""Sending to people by IDNP and to a service's subscribers: resolution in chunked fan-out jobs,
channel selection and policy, the cabinet copy, dead addresses switched off."""

from datetime import timedelta

import pytest

from models.base import utcnow
from models.contact import ContactChannel, Subscription, upsert_contacts
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from scheduler.jobs import replay
from settings import settings
from tasks.fanout import fanout
from tests.factories import idnp, visit_reminder
from tests.support import running_worker, wait_until


def person(serial, *channels, language="ro", name=None):
    """A registered contact with (type, address[, priority]) channels."""
    upsert_contacts(
        [
            {
                "idnp": idnp(serial),
                "name": name or f"Persoana {serial}",
                "preferred_language": language,
                "attributes": {"flat": serial},
                "channels": [
                    {"type": c[0], "address": c[1], "priority": c[2] if len(c) > 2 else 100}
                    for c in channels
                ],
            }
        ]
    )
    return idnp(serial)


def send(client, sender, **body):
    if "template" not in body:
        body.setdefault("message", {"subject": "Anunț", "body": "Apa se oprește mâine."})
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def messages_of(notification_id) -> dict:
    rows = Message.select().where(Message.notification == notification_id)
    return {(m.recipient_key, m.channel, m.destination): m for m in rows}


def fanned_out(notification_id):
    return lambda: Notification.get_by_id(notification_id).fanout_state == "done"


def test_a_person_by_idnp_gets_every_channel_and_a_cabinet_copy(client, sender, smtp, worker):
    ion = person(1, ("email", "ion@example.md"), language="ru")
    posted = send(client, sender, recipients=[{"type": "idnp", "value": ion}])

    wait_until(fanned_out(posted["id"]))
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["ion@example.md"]
    wait_until(
        lambda: all(m.state in ("sent", "unread") for m in messages_of(posted["id"]).values())
    )
    messages = messages_of(posted["id"])
    assert set(messages) == {(ion, "email", "ion@example.md"), (ion, "inapp", ion)}
    assert {m.language for m in messages.values()} == {"ru"}
    assert all(m.contact_id is not None for m in messages.values())


def test_unknown_people_and_people_without_channels_fail_with_no_active_channel(
    client, sender, worker
):
    lonely = person(2)
    stranger = idnp(3)
    posted = send(
        client,
        sender,
        recipients=[{"type": "idnp", "value": lonely}, {"type": "idnp", "value": stranger}],
    )

    wait_until(fanned_out(posted["id"]))
    messages = messages_of(posted["id"])
    for key in (lonely, stranger):
        failed = messages[(key, "none", "")]
        assert failed.state == MessageState.FAILED and failed.failure_reason == "NO_ACTIVE_CHANNEL"
        wait_until(
            lambda k=key: (
                Message.get_by_id(messages[(k, "inapp", k)].id).state == MessageState.UNREAD
            )
        )


def test_the_channels_list_selects_channels_and_can_exclude_the_cabinet(
    client, sender, smtp, telegram, worker
):
    ion = person(4, ("email", "ion@example.md"), ("telegram", "444444444"))
    posted = send(
        client, sender, recipients=[{"type": "idnp", "value": ion}], channels=["telegram"]
    )

    wait_until(fanned_out(posted["id"]))
    assert set(messages_of(posted["id"])) == {(ion, "telegram", "444444444")}
    wait_until(lambda: len(telegram.requests) == 1)
    assert smtp.received == []


def test_fallback_tries_channels_in_priority_order_until_one_works(client, sender, smtp, worker):
    smtp.rcpt_replies["gone@example.md"] = "550 5.1.1 No such user"
    ion = person(
        5,
        ("email", "backup@example.md", 20),
        ("email", "gone@example.md", 10),
        ("email", "third@example.md", 30),
    )
    posted = send(
        client,
        sender,
        recipients=[{"type": "idnp", "value": ion}],
        channelPolicy="fallback",
        channels=["email"],
    )

    wait_until(fanned_out(posted["id"]))
    messages = messages_of(posted["id"])
    backup = messages[(ion, "email", "backup@example.md")]
    wait_until(lambda: Message.get_by_id(backup.id).state == MessageState.SENT)

    states = {dest: Message.get_by_id(m.id).state for (_, _, dest), m in messages.items()}
    assert states == {
        "gone@example.md": "failed",
        "backup@example.md": "sent",
        "third@example.md": "cancelled",
    }
    assert [mail.rcpt_tos for mail in smtp.received] == [["backup@example.md"]]
    chain = client.get(f"/v1/notifications/{posted['id']}", headers=sender.headers).get_json()[
        "messages"
    ]
    assert [m["state"] for m in chain] == ["failed", "sent", "cancelled"]  # visible, in order


def test_a_dead_address_is_switched_off_in_the_registry(client, sender, telegram, worker):
    ion = person(6, ("telegram", "666666666"))
    telegram.blocked_chats.add("666666666")
    posted = send(
        client, sender, recipients=[{"type": "idnp", "value": ion}], channels=["telegram"]
    )

    wait_until(fanned_out(posted["id"]))
    (message,) = messages_of(posted["id"]).values()
    wait_until(lambda: Message.get_by_id(message.id).state == MessageState.FAILED)

    channel = ContactChannel.get(ContactChannel.address == "666666666")
    assert channel.active is False
    assert "blocked" in channel.deactivated_reason
    again = send(client, sender, recipients=[{"type": "idnp", "value": ion}], channels=["telegram"])
    wait_until(fanned_out(again["id"]))
    (failed,) = messages_of(again["id"]).values()
    assert failed.failure_reason == "NO_ACTIVE_CHANNEL"
    reach = client.get(f"/v1/contacts/{ion}/reachability", headers=sender.headers)
    assert reach.status_code == 403  # a sender without contacts:read


def test_a_broadcast_reaches_every_subscriber_and_no_one_else(client, sender, smtp, worker):
    subscribed = [person(10 + n, ("email", f"s{n}@example.md")) for n in range(3)]
    person(20, ("email", "not-subscribed@example.md"))
    for key in subscribed:
        Subscription.create(
            contact=ContactChannel.get(
                ContactChannel.address.contains(f"s{subscribed.index(key)}@")
            ).contact,
            service_name="water",
        )

    posted = send(client, sender, isBroadcast=True, serviceName="water")

    wait_until(fanned_out(posted["id"]))
    smtp.wait_for(3)
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == [
        "s0@example.md",
        "s1@example.md",
        "s2@example.md",
    ]
    assert all(channel != "inapp" for (_, channel, _) in messages_of(posted["id"]))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipients": [{"type": "idnp", "value": "2001234567890"}]}, "recipients"),
        ({"isBroadcast": True}, "serviceName"),
        (
            {
                "isBroadcast": True,
                "serviceName": "water",
                "recipients": [{"type": "user", "value": "u"}],
            },
            "recipients",
        ),
        (
            {"recipients": [{"type": "idnp", "value": "2001234567891"}], "channelPolicy": "random"},
            "channelPolicy",
        ),
        (
            {"recipients": [{"type": "idnp", "value": "2001234567891"}], "channels": ["pigeon"]},
            "channels",
        ),
    ],
)
def test_bad_people_requests_are_400(client, sender, body, field):
    body["message"] = {"subject": "s", "body": "b"}
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert Notification.select().count() == 0


def test_templates_see_the_contact_and_render_in_their_language(client, sender, smtp, worker):
    body = visit_reminder()
    body["contents"][1]["body"] = (
        "{{ contact.name }}, квартира {{ contact.attributes.flat }}: {{ visitDate | date }}"
    )
    assert client.post("/v1/templates", json=body, headers=sender.headers).status_code == 201
    ivan = person(30, ("email", "ivan@example.md"), language="ru", name="Иван")

    send(
        client,
        sender,
        template="visit-reminder",
        attributes={"visitDate": "2026-12-01"},
        recipients=[{"type": "idnp", "value": ivan}],
        channels=["email"],
    )

    (mail,) = smtp.wait_for(1)
    assert mail.email.get_content().strip() == "Иван, квартира 30: 1 декабря 2026\u202fг."


def test_ten_thousand_people_resolve_in_a_constant_number_of_queries(
    client, sender, queues, db, monkeypatch
):
    """Chunked bulk queries: the SQL statement count per chunk does not grow with its size."""
    monkeypatch.setattr(settings, "FANOUT_CHUNK_SIZE", 1000)
    rows = [
        {"idnp": idnp(1000 + n), "channels": [{"type": "email", "address": f"p{n}@example.md"}]}
        for n in range(10_000)
    ]
    for start in range(0, len(rows), 1000):
        upsert_contacts(rows[start : start + 1000])
    recipients = [{"type": "idnp", "value": row["idnp"]} for row in rows]
    posted = send(client, sender, recipients=recipients)
    queues.flush_all()

    statements = []
    original = db.execute_sql
    monkeypatch.setattr(
        db, "execute_sql", lambda sql, *a, **k: statements.append(sql) or original(sql, *a, **k)
    )
    for _ in range(10):
        fanout(posted["id"])

    assert Notification.get_by_id(posted["id"]).fanout_state == "done"
    assert Message.select().where(Message.notification == posted["id"]).count() == 20_000
    # Per chunk: load, chunks left, claim and read back, contacts, channels, opt-outs, the
    # sender, done mark (and on PostgreSQL its commit mode), one insert, done check → ~12.
    assert len(statements) <= 10 * 12
    assert queues.client.llen("dramatiq:email") == 10_000


def test_a_fanout_lost_with_the_broker_is_restarted_by_replay(
    client, sender, smtp, broker_outage, monkeypatch
):
    server, own_broker = broker_outage
    ion = person(40, ("email", "ion@example.md"))
    server.stop()
    posted = send(client, sender, recipients=[{"type": "idnp", "value": ion}], channels=["email"])
    assert Notification.get_by_id(posted["id"]).fanout_state == "pending"

    server.start()
    overdue = utcnow() - timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1)
    Notification.update(fanout_updated_at=overdue).execute()
    assert replay(utcnow()) == 1
    with running_worker(own_broker):
        (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["ion@example.md"]


def test_history_by_idnp_lists_what_this_sender_sent_to_the_person(
    client, sender, other_sender, worker
):
    from api.auth import forget_checked_keys
    from tests.factories import make_sender

    ion = person(50, ("email", "ion@example.md"))
    first = send(client, sender, recipients=[{"type": "idnp", "value": ion}], channels=["inapp"])
    second = send(client, sender, recipients=[{"type": "idnp", "value": ion}], channels=["inapp"])
    third = send(
        client, other_sender, recipients=[{"type": "idnp", "value": ion}], channels=["inapp"]
    )
    elsewhere = send(
        client, sender, recipients=[{"type": "idnp", "value": idnp(51)}], channels=["inapp"]
    )
    for posted in (first, second, third, elsewhere):
        wait_until(fanned_out(posted["id"]))

    sender.sender.permissions = ["contacts:read"]
    sender.sender.save()
    forget_checked_keys()  # as a web process does after AUTH_CACHE_SECONDS
    response = client.get(f"/v1/contacts/{ion}/notifications", headers=sender.headers)

    assert response.status_code == 200
    assert [n["id"] for n in response.get_json()] == [second["id"], first["id"]]
    auditor = make_sender("auditor", admin=True)
    everything = client.get(f"/v1/contacts/{ion}/notifications", headers=auditor.headers).get_json()
    assert len(everything) == 3


def test_a_notification_is_pending_until_its_fanout_has_run(client, sender, queues):
    """No worker runs here: the fan-out jobs wait in the queue until the test runs them."""
    stranger = send(
        client, sender, recipients=[{"type": "idnp", "value": idnp(60)}], channels=["email"]
    )
    broadcast = send(client, sender, isBroadcast=True, serviceName="nobody-subscribes")

    def state_of(posted):
        url = f"/v1/notifications/{posted['id']}"
        return client.get(url, headers=sender.headers).get_json()["state"]

    assert (stranger["state"], stranger["messages"]) == ("pending", [])
    assert (broadcast["state"], broadcast["messages"]) == ("pending", [])
    assert (state_of(stranger), state_of(broadcast)) == ("pending", "pending")
    fanout(stranger["id"])
    fanout(broadcast["id"])
    assert (state_of(stranger), state_of(broadcast)) == ("failed", "completed")

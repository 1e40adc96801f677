"""Opt-outs at fan-out as a property: for random preference documents and a random chunk of
people, no message is queued (in the database or on the broker) on a channel its person opted
out of, unless the notification is critical; and every opted-out channel the person has is a
failed UNSUBSCRIBED message (or, critical, a message marked ``opt_out_bypassed``).

Fan-out runs in-process (``fanout`` called directly) and nothing is delivered: the property is
about what fan-out makes and enqueues; the delivery paths are in test_fanout_preferences.py."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from models.message import Message
from models.notification import Notification
from models.preference import Preference, set_preferences
from models.states import FailureReason, MessageState
from tasks.fanout import fanout
from tests.tasks.test_fanout import person

CHANNELS = ("email", "sms", "telegram", "inapp")
SERVICES = ("permits", "taxes")
PEOPLE = 6
PENDING = {MessageState.QUEUED, MessageState.HELD, MessageState.SCHEDULED}

switches = st.dictionaries(st.sampled_from(CHANNELS), st.booleans(), max_size=len(CHANNELS))
documents = st.fixed_dictionaries(
    {"channels": switches, "services": st.dictionaries(st.sampled_from(SERVICES), switches)}
)
requests = st.fixed_dictionaries(
    {
        "people": st.lists(st.integers(0, PEOPLE - 1), min_size=1, max_size=PEOPLE, unique=True),
        "documents": st.lists(documents, min_size=PEOPLE, max_size=PEOPLE),
        "service": st.sampled_from((None, *SERVICES)),
        "policy": st.sampled_from(("all", "fallback")),
        "critical": st.booleans(),
    }
)


def off_for(document: dict, service: str | None) -> set[str]:
    """What the document turns off for ``service``: off everywhere, or off for it."""
    scoped = document["services"].get(service, {}) if service else {}
    return {c for c, on in document["channels"].items() if not on} | {
        c for c, on in scoped.items() if not on
    }


def enqueued(queues) -> set[str]:
    """The message ids of every deliver job on the broker."""
    ids = set()
    for channel in CHANNELS:
        for raw in queues.client.hvals(f"dramatiq:{channel}.msgs"):
            ids.add(json.loads(raw)["args"][0])
    return ids


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests)
def test_no_message_is_queued_on_a_channel_its_person_opted_out_of(
    client, admin, smtp, telegram, twilio, queues, request
):
    people = [
        person(
            100 + n,
            ("email", f"p{n}@example.md", 30 - n),
            ("phone", f"+37369{n:06d}", 20),
            ("telegram", str(500 + n), 10 + n),
        )
        for n in range(PEOPLE)
    ]
    Preference.delete().execute()
    for key, document in zip(people, request["documents"], strict=True):
        set_preferences(key, document)
    chunk = [people[n] for n in request["people"]]
    body = {
        "recipients": [{"type": "idnp", "value": key} for key in chunk],
        "message": {"subject": "Anunț", "body": "Apa se oprește mâine."},
        "channelPolicy": request["policy"],
        "critical": request["critical"],
    }
    if request["service"]:
        body["serviceName"] = request["service"]
    response = client.post("/v1/notifications", json=body, headers=admin.headers)
    assert response.status_code == 202, response.get_json()
    notification_id = response.get_json()["id"]
    fanout(notification_id)
    note(f"request: {request}")

    rows = list(Message.select().where(Message.notification == notification_id))
    on_broker = enqueued(queues)
    for key, n in zip(chunk, request["people"], strict=True):
        off = off_for(request["documents"][n], request["service"])
        mine = [m for m in rows if m.recipient_key == key]
        assert {m.channel for m in mine} == set(CHANNELS), mine  # one row per channel
        for message in mine:
            opted_out = message.channel in off
            unsubscribed = message.failure_reason == FailureReason.UNSUBSCRIBED
            if request["critical"]:
                assert not unsubscribed
                assert message.opt_out_bypassed is (True if opted_out else None)
            else:
                assert unsubscribed is opted_out, (message.channel, off)
                assert (message.state in PENDING) is not opted_out
                assert (str(message.id) in on_broker) is (message.state == MessageState.QUEUED)
                assert message.opt_out_bypassed is None
        if request["policy"] == "fallback":
            chain = sorted(
                (m for m in mine if m.fallback_rank is not None), key=lambda m: m.fallback_rank
            )
            assert [m.fallback_rank for m in chain] == list(range(len(chain)))
            assert [m.state for m in chain[:1]] == [MessageState.QUEUED] * min(1, len(chain))
    Message.delete().execute()
    Notification.delete().execute()
    queues.client.flushdb()

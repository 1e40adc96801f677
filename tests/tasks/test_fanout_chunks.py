"""Fan-out in parallel chunks: a broadcast is cut into chunks once, each a job any worker may
run; a redelivered job, a worker killed mid-chunk, a worker whose lease ran out, or a cancel
while chunks are in flight leave every subscriber with one message, or none after a cancel."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

import tasks.fanout as fanout_module
from models.base import utcnow
from models.contact import Contact, Subscription, upsert_contacts
from models.fanout_chunk import FanoutChunk, claim_chunk
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from scheduler.jobs import replay
from settings import settings
from tasks.fanout import fanout, fanout_chunk, run_chunk
from tests.factories import idnp
from tests.support import running_worker, wait_until
from tests.tasks.test_fanout import fanned_out, send

SUBSCRIBERS = 35
CHUNK = 10  # four chunks: 10, 10, 10, 5


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(settings, "FANOUT_CHUNK_SIZE", CHUNK)


def subscribe(count: int, service: str = "water", first: int = 0) -> list[str]:
    """``count`` registry contacts with an email address, subscribed to ``service``."""
    rows = [
        {"idnp": idnp(500 + n), "channels": [{"type": "email", "address": f"p{n}@example.md"}]}
        for n in range(first, first + count)
    ]
    upsert_contacts(rows)
    people = [row["idnp"] for row in rows]
    contacts = Contact.select(Contact.id).where(Contact.idnp.in_(people))
    Subscription.insert_many(
        [{"contact": c.id, "service_name": service} for c in contacts]
    ).execute()
    return people


def broadcast(client, sender, service="water") -> str:
    return send(client, sender, isBroadcast=True, serviceName=service)["id"]


def made(notification_id) -> Counter:
    """How many messages each (recipient, channel) has."""
    rows = Message.select(Message.recipient_key, Message.channel).where(
        Message.notification == notification_id
    )
    return Counter((m.recipient_key, m.channel) for m in rows)


def exactly_once(notification_id, people) -> bool:
    return made(notification_id) == Counter({(p, "email"): 1 for p in people})


def progress(client, sender, notification_id) -> dict:
    response = client.get(f"/v1/notifications/{notification_id}", headers=sender.headers)
    return response.get_json()["fanout"]


def chunk_jobs(queues) -> list[int]:
    """The chunk numbers of the fan-out chunk jobs waiting on the broker."""
    import json

    raws = queues.client.hvals("dramatiq:fanout.msgs")
    jobs = [json.loads(raw) for raw in raws]
    return sorted(job["args"][1] for job in jobs if job["actor_name"] == "fanout_chunk")


def expire_leases(notification_id) -> None:
    """What time does to a dead worker's claim: its lease and its last move are past."""
    past = utcnow() - timedelta(seconds=settings.REPLAY_AFTER_SECONDS + 1)
    FanoutChunk.update(lease_until=past, updated_at=past).where(
        FanoutChunk.notification == notification_id
    ).execute()
    Notification.update(fanout_updated_at=past).where(Notification.id == notification_id).execute()


def test_the_first_job_cuts_the_broadcast_into_chunks_each_a_job_of_its_own(
    client, sender, queues, small_chunks
):
    people = subscribe(SUBSCRIBERS)
    notification_id = broadcast(client, sender)
    queues.flush_all()

    fanout(notification_id)

    assert chunk_jobs(queues) == [1, 2, 3]  # for any worker to take, while this one ran chunk 0
    assert progress(client, sender, notification_id) == {
        "chunks": 4,
        "chunksDone": 1,
        "people": 10,
        "messages": 10,
    }
    for number in (3, 1, 2):  # in any order
        fanout_chunk(notification_id, number)
    assert exactly_once(notification_id, people)
    assert Notification.get_by_id(notification_id).fanout_state == "done"
    assert progress(client, sender, notification_id)["chunksDone"] == 4
    assert queues.client.llen("dramatiq:email") == SUBSCRIBERS


def test_workers_run_the_chunks_and_every_subscriber_gets_one_message(
    client, sender, queues, db, small_chunks
):
    people = subscribe(SUBSCRIBERS)
    with running_worker(queues, threads=4):
        notification_id = broadcast(client, sender)
        wait_until(fanned_out(notification_id), timeout=30)
    assert exactly_once(notification_id, people)
    assert progress(client, sender, notification_id) == {
        "chunks": 4,
        "chunksDone": 4,
        "people": SUBSCRIBERS,
        "messages": SUBSCRIBERS,
    }


def test_redelivered_chunk_jobs_and_replays_store_nothing_twice(
    client, sender, queues, small_chunks
):
    people = subscribe(SUBSCRIBERS)
    notification_id = broadcast(client, sender)
    queues.flush_all()
    fanout(notification_id)
    fanout(notification_id)  # the first job, delivered twice
    for _ in range(2):
        for number in range(4):
            fanout_chunk(notification_id, number)
    expire_leases(notification_id)
    replay(utcnow())
    fanout(notification_id)

    assert exactly_once(notification_id, people)


def test_a_chunk_whose_worker_was_killed_is_run_again_after_its_lease(
    client, sender, queues, db, small_chunks
):
    people = subscribe(SUBSCRIBERS)
    notification_id = broadcast(client, sender)
    queues.flush_all()
    fanout(notification_id)
    # A worker claimed chunk 2 and was SIGKILLed: its claim is committed, nothing else is.
    assert claim_chunk(notification_id, 2, lease_seconds=300) is not None
    for number in range(4):
        fanout_chunk(notification_id, number)
    assert Notification.get_by_id(notification_id).fanout_state == "pending"
    assert sum(made(notification_id).values()) == 25
    assert replay(utcnow()) == 0  # the lease holds: nobody else takes the chunk yet

    expire_leases(notification_id)
    queues.flush_all()
    assert replay(utcnow()) == 1
    with running_worker(queues):
        wait_until(fanned_out(notification_id), timeout=30)
    assert exactly_once(notification_id, people)


def test_a_worker_whose_lease_ran_out_mid_chunk_stores_nothing(
    client, sender, queues, small_chunks, monkeypatch
):
    """Worker A is slow on chunk 0; its lease runs out and worker B runs the chunk; A's
    messages must not be stored on top of B's."""
    people = subscribe(SUBSCRIBERS)
    notification_id = broadcast(client, sender)
    queues.flush_all()
    original = fanout_module.resolve
    overtaken = []

    def slow_resolve(notification, chunk_people):
        if not overtaken:
            overtaken.append(True)
            expire_leases(notification_id)
            run_chunk(Notification.get_by_id(notification_id), 0)  # worker B
        return original(notification, chunk_people)

    monkeypatch.setattr(fanout_module, "resolve", slow_resolve)
    assert run_chunk(Notification.get_by_id(notification_id), 0) == 0  # worker A, overtaken

    monkeypatch.setattr(fanout_module, "resolve", original)
    for _ in range(2):
        fanout(notification_id)
        for number in range(4):
            fanout_chunk(notification_id, number)
    assert exactly_once(notification_id, people)


def test_a_cancel_while_chunks_are_in_flight_stops_the_fanout(
    client, sender, queues, small_chunks, monkeypatch
):
    subscribe(SUBSCRIBERS)
    notification_id = broadcast(client, sender)
    queues.flush_all()
    fanout(notification_id)
    original = fanout_module.resolve

    def cancelled_meanwhile(notification, chunk_people):
        response = client.delete(f"/v1/notifications/{notification_id}", headers=sender.headers)
        assert response.status_code == 204
        return original(notification, chunk_people)

    monkeypatch.setattr(fanout_module, "resolve", cancelled_meanwhile)
    assert run_chunk(Notification.get_by_id(notification_id), 1) == 0
    monkeypatch.setattr(fanout_module, "resolve", original)
    for number in range(4):  # the jobs still on the broker, and redelivered ones
        fanout_chunk(notification_id, number)
    expire_leases(notification_id)
    replay(utcnow())
    fanout(notification_id)

    assert sum(made(notification_id).values()) == 10  # chunk 0's, made before the cancel
    states = {m.state for m in Message.select().where(Message.notification == notification_id)}
    assert states == {MessageState.CANCELLED}
    chunks = FanoutChunk.select().where(FanoutChunk.notification == notification_id)
    assert sorted(c.state for c in chunks) == ["done"] + ["stopped"] * 3


def test_a_cancel_racing_a_chunk_commit_cancels_what_the_chunk_stored(
    client, sender, queues, small_chunks, monkeypatch
):
    """The cancel runs on another thread while a chunk is between its inserts and its commit;
    whichever commits first, no message of the chunk is left to send."""
    subscribe(SUBSCRIBERS)
    notification_id = broadcast(client, sender)
    queues.flush_all()
    original_insert = fanout_module.bulk_insert
    cancel_done = threading.Event()

    def insert_then_cancel(model, rows, *args, **kwargs):
        original_insert(model, rows, *args, **kwargs)
        thread = threading.Thread(target=_cancel, args=(notification_id, cancel_done))
        thread.start()
        thread.join(timeout=0.5)  # on either database the cancel waits for this commit

    monkeypatch.setattr(fanout_module, "bulk_insert", insert_then_cancel)
    fanout(notification_id)  # plans the chunks and runs chunk 0
    assert cancel_done.wait(30)
    monkeypatch.setattr(fanout_module, "bulk_insert", original_insert)
    for number in range(4):
        fanout_chunk(notification_id, number)

    rows = list(Message.select().where(Message.notification == notification_id))
    assert len(rows) == 10
    assert {m.state for m in rows} == {MessageState.CANCELLED}


def _cancel(notification_id, done: threading.Event) -> None:
    from models.db import database
    from models.lifecycle import soft_delete

    with database.connection_context():
        soft_delete(notification_id)
    done.set()


def test_two_senders_broadcasting_to_one_service_each_get_their_own(
    client, sender, other_sender, queues, db, small_chunks
):
    people = subscribe(SUBSCRIBERS)
    with running_worker(queues, threads=4):
        mine = broadcast(client, sender)
        theirs = broadcast(client, other_sender)
        wait_until(fanned_out(mine), timeout=30)
        wait_until(fanned_out(theirs), timeout=30)
    assert exactly_once(mine, people) and exactly_once(theirs, people)
    for notification_id, owner in ((mine, sender), (theirs, other_sender)):
        senders = {
            m.sender_id for m in Message.select().where(Message.notification == notification_id)
        }
        assert senders == {owner.sender.id}
    response = client.get(f"/v1/notifications/{theirs}", headers=sender.headers)
    assert response.status_code == 404


def test_a_recipient_s_attributes_are_stored_as_given_whatever_characters_they_hold(
    client, sender, queues
):
    """Rows are written as the columns store them (PostgreSQL: COPY's text format, which
    escapes tabs, newlines and backslashes)."""
    odd = {"note": "tab\there\nline\\back\r\u0103\u20ac", "n": 3}
    recipients = [{"type": "idnp", "value": idnp(900), "attributes": odd}]
    posted = send(client, sender, recipients=recipients, channels=["email"])
    queues.flush_all()
    fanout(posted["id"])

    (message,) = Message.select().where(Message.notification == posted["id"])
    assert message.attributes == odd
    assert message.recipient_key == idnp(900)


@pytest.mark.parametrize("policy", ["all", "fallback"])
def test_a_broadcast_resolves_its_subscribers_as_a_list_of_their_idnps_would(
    client, sender, queues, telegram, policy
):
    """Broadcast chunks read channels and opt-outs in plain SQL; an IDNP list through the
    registry's queries: the same people get the same messages either way."""
    from models.contact import ContactChannel
    from models.preference import set_preferences
    from tests.tasks.test_fanout import person

    people = [
        person(801, ("email", "a@example.md", 1), ("telegram", "1001", 2)),
        person(802, ("email", "dead@example.md", 1), ("telegram", "1002", 2)),
        person(803, ("email", "gone@example.md")),
        person(804, ("email", "d@example.md", 2), ("telegram", "1004", 1)),
        person(805, ("telegram", "1005")),
        person(806, ("email", "f@example.md")),
    ]
    ContactChannel.update(active=False).where(
        ContactChannel.address.in_(["dead@example.md", "gone@example.md"])
    ).execute()
    set_preferences(people[3], {"channels": {"telegram": False}})
    set_preferences(people[4], {"services": {"water": {"telegram": False}}})
    set_preferences(people[5], {"services": {"gas": {"email": False}}})
    contacts = Contact.select(Contact.id).where(Contact.idnp.in_(people))
    Subscription.insert_many(
        [{"contact": c.id, "service_name": "water"} for c in contacts]
    ).execute()
    common = {"serviceName": "water", "channelPolicy": policy, "channels": ["email", "telegram"]}
    by_broadcast = send(client, sender, isBroadcast=True, **common)["id"]
    by_list = send(
        client, sender, recipients=[{"type": "idnp", "value": p} for p in people], **common
    )["id"]
    queues.flush_all()
    fanout(by_broadcast)
    fanout(by_list)

    def outcome(notification_id):
        rows = Message.select().where(Message.notification == notification_id)
        return sorted(
            (m.recipient_key, m.channel, m.destination, m.state, m.failure_reason, m.fallback_rank)
            for m in rows
        )

    assert outcome(by_broadcast) == outcome(by_list)
    assert len({row[0] for row in outcome(by_broadcast)}) == len(people)
    assert ("failed", "NO_ACTIVE_CHANNEL") in {row[3:5] for row in outcome(by_broadcast)}
    assert ("failed", "UNSUBSCRIBED") in {row[3:5] for row in outcome(by_broadcast)}


def test_a_worker_process_sigkilled_during_a_broadcast_loses_and_duplicates_nothing(
    client, sender, queues, db, redis_url, tmp_path, monkeypatch
):
    """A real ``dramatiq tasks.worker`` runs the chunks and is SIGKILLed once some are done;
    after the leases run out, replay and another worker finish the broadcast. Wherever the
    kill lands, each subscriber has one message."""
    import os
    import signal
    import sys
    from pathlib import Path

    from tests.support import started_with_output

    monkeypatch.setattr(settings, "FANOUT_CHUNK_SIZE", 50)
    people = subscribe(1500)
    env = dict(
        os.environ,
        DATABASE_URL=db.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL="",
        VAR_DIR=str(tmp_path),
        FANOUT_CHUNK_SIZE="50",
    )
    command = [sys.executable, "-m", "dramatiq", "tasks.worker", "--processes", "1"]
    root = Path(__file__).resolve().parents[2]
    process, _output, _reader = started_with_output(command + ["--threads", "2"], cwd=root, env=env)
    try:
        notification_id = broadcast(client, sender)

        def some_chunks_done():
            done = FanoutChunk.select().where(
                (FanoutChunk.notification == notification_id) & (FanoutChunk.state == "done")
            )
            return done.count() >= 3

        wait_until(some_chunks_done, timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    assert max(made(notification_id).values()) == 1

    expire_leases(notification_id)
    queues.flush_all()  # what the dead worker had taken is gone with it
    replay(utcnow())
    with running_worker(queues, threads=2):
        wait_until(fanned_out(notification_id), timeout=60)
    assert exactly_once(notification_id, people)

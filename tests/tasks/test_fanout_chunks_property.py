"""Whatever happens to a broadcast's chunk jobs — run in any order, redelivered, their worker
killed mid-chunk (its claim left behind), leases running out, the first job delivered again,
the broadcast cancelled at any point — each subscriber ends with exactly one message, or,
once cancelled, nothing more is made and everything made is cancelled."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.fanout_chunk import claim_chunk
from models.lifecycle import soft_delete
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from tasks.fanout import fanout, fanout_chunk
from tests.tasks.test_fanout_chunks import (
    SUBSCRIBERS,
    broadcast,
    expire_leases,
    made,
    small_chunks,  # noqa: F401  (a fixture)
    subscribe,
)

CHUNKS = 4
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["run", "kill"]), st.integers(0, CHUNKS - 1)),
        st.tuples(st.sampled_from(["first", "expire", "cancel"])),
    ),
    max_size=14,
)


@pytest.mark.usefixtures("small_chunks")
def test_every_subscriber_gets_one_message_whatever_happens_to_the_chunk_jobs(
    client, sender, queues
):
    people = subscribe(SUBSCRIBERS)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(history=steps)
    def check(history):
        notification_id = broadcast(client, sender)
        fanout(notification_id)  # the first job: plans the chunks, runs one
        made_at_cancel = None
        for step in history:
            if step[0] == "run":
                fanout_chunk(notification_id, step[1])
            elif step[0] == "kill":  # a worker claimed it, then died
                claim_chunk(notification_id, step[1], lease_seconds=300)
            elif step[0] == "first":
                fanout(notification_id)
            elif step[0] == "expire":
                expire_leases(notification_id)
            elif made_at_cancel is None:
                soft_delete(notification_id)
                made_at_cancel = sum(made(notification_id).values())
            assert max(made(notification_id).values(), default=0) == 1
        for _ in range(CHUNKS + 1):  # time passes, replay restarts what is left
            expire_leases(notification_id)
            fanout(notification_id)
            for number in range(CHUNKS):
                fanout_chunk(notification_id, number)

        counts = made(notification_id)
        assert max(counts.values(), default=0) == 1
        if made_at_cancel is None:
            assert set(counts) == {(p, "email") for p in people}
            assert Notification.get_by_id(notification_id).fanout_state == "done"
        else:
            assert sum(counts.values()) == made_at_cancel
            states = Message.select(Message.state).where(Message.notification == notification_id)
            assert {m.state for m in states} <= {MessageState.CANCELLED}

    check()

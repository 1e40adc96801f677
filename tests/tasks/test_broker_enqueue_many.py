"""Batched enqueues (``enqueue_many``): the jobs on Redis are what Dramatiq's own enqueue
writes, byte for byte, whether encoded from a template or not; a worker runs each once; a
middleware with enqueue hooks still sees every message."""

from __future__ import annotations

import json

import dramatiq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.broker import _Encoder, enqueue_many
from tests.support import running_worker, wait_until

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


def stored_jobs(broker, queue: str) -> dict[str, bytes]:
    """The jobs waiting on ``queue``, by Redis message id, in queue order."""
    order = [i.decode() for i in broker.client.lrange(f"dramatiq:{queue}", 0, -1)]
    stored = broker.client.hgetall(f"dramatiq:{queue}.msgs")
    return {i: stored[i.encode()] for i in order}


@settings(max_examples=200, deadline=None)
@given(args=st.lists(st.one_of(texts, st.integers(), st.booleans(), st.none()), max_size=4))
def test_the_template_writes_what_dramatiq_s_encoder_writes(args):
    message = dramatiq.Message("email", "deliver_email", tuple(args), {}, {})
    copy = message.copy(options={"redis_message_id": "r-1"})
    assert _Encoder().encode(message, "r-1") == copy.encode()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(names=st.lists(texts, min_size=1, max_size=50))
def test_every_job_is_stored_once_as_dramatiq_encodes_it(queues, names):
    queues.client.flushdb()
    messages = [
        dramatiq.Message("bench", "noop", (name, n), {}, {}) for n, name in enumerate(names)
    ]

    enqueue_many(queues, messages)

    jobs = stored_jobs(queues, "bench")
    assert len(jobs) == len(messages) == len(set(jobs))
    for (redis_id, data), message in zip(jobs.items(), messages, strict=True):
        assert data == message.copy(options={"redis_message_id": redis_id}).encode()


def test_a_worker_runs_each_batched_job_once(queues):
    seen: list[int] = []

    @dramatiq.actor(queue_name="batched", broker=queues, actor_name="batched_noop")
    def batched_noop(number):
        seen.append(number)

    enqueue_many(queues, [batched_noop.message(n) for n in range(500)])
    with running_worker(queues, threads=4):
        wait_until(lambda: len(seen) >= 500)
        queues.join("batched", timeout=30_000)
    assert sorted(seen) == list(range(500))


def test_a_middleware_with_enqueue_hooks_sees_every_message(queues):
    class Counting(dramatiq.Middleware):
        def __init__(self):
            self.before, self.after = [], []

        def before_enqueue(self, broker, message, delay):
            self.before.append(message.options["redis_message_id"])

        def after_enqueue(self, broker, message, delay):
            self.after.append(message.message_id)

    counting = Counting()
    queues.add_middleware(counting)
    try:
        messages = [dramatiq.Message("hooked", "noop", (n,), {}, {}) for n in range(20)]
        enqueue_many(queues, messages)
    finally:
        queues.middleware.remove(counting)

    assert counting.before == list(stored_jobs(queues, "hooked"))
    assert counting.after == [m.message_id for m in messages]
    decoded = [json.loads(data) for data in stored_jobs(queues, "hooked").values()]
    assert [d["args"] for d in decoded] == [[n] for n in range(20)]

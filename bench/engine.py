"""Engine efficiency: Herald end to end for channels that call no slow provider — in-app (stored
as ``unread``) and webhook (POSTed to a local HTTP sink, ``sent``) — against a no-op Dramatiq
actor (bench/noop.py) on the same broker, with the same worker processes and threads, in the
same run. Each rate runs from the first enqueue (POST) until the last message is done, with the
workers already up; the table also shows when the last POST (or the enqueue) was answered, which
tells the API's share of the time from the workers'.

    python -m bench.engine --messages 5000
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import Stack, request, save, wait_for
from bench.targets import INAPP, WEBHOOK

SUBJECT, BODY = "Factura a fost emisă", "Factura nr. 1042 pentru luna noiembrie: 312,40 lei."


def bind_to(stack: Stack) -> None:
    """Point this process's settings at the stack's Redis and database, as the stack's
    processes have them, before ``settings`` is first imported."""
    os.environ.update({k: stack.env[k] for k in ("REDIS_URL", "DATABASE_URL", "VAR_DIR")})


def start_workers(stack: Stack, module: str, name: str) -> None:
    """Start ``dramatiq MODULE`` and return once every worker process has fetched from Redis
    (each process's broker writes a heartbeat on its first fetch), so no timing pays for
    start-up."""
    from dramatiq.common import current_millis

    from tasks.broker import redis_client

    client, since = redis_client(stack.redis.url), current_millis()
    stack.start_workers(module, name=name)
    wait_for(
        lambda: client.zcount("dramatiq:__heartbeats__", since, "+inf") >= stack.worker_processes,
        timeout=60, what=f"{name} workers up",
    )  # fmt: skip


def noop_baseline(stack: Stack, count: int) -> tuple[float, float]:
    """Messages per second through the no-op actor, enqueued in one pipeline (as Herald
    enqueues a request's messages) until the last one has incremented its counter, and the
    seconds the enqueueing took."""
    from bench import noop
    from tasks.broker import create_broker, enqueue_many

    stack.stop("worker")  # Herald's workers would share the cores
    start_workers(stack, "bench.noop:setup", name="noop")
    broker = create_broker(stack.redis.url)
    actor = noop.declare(broker)
    jobs = [actor.message(number) for number in range(count)]
    broker.client.delete(noop.DONE_KEY)
    started = time.perf_counter()
    enqueue_many(broker, jobs)
    enqueued = time.perf_counter() - started
    wait_for(
        lambda: int(broker.client.get(noop.DONE_KEY) or 0) >= count,
        timeout=600, interval=0.02, what="no-op messages done",
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    stack.stop("noop")
    start_workers(stack, "tasks.worker", name="worker")
    return count / elapsed, enqueued


def herald(stack: Stack, count: int, recipient, channel: str, state: str) -> tuple[float, float]:
    """Messages per second from the first POST (100 recipients each, ``recipient(n)``) until
    every message of ``channel`` is in ``state``, and the seconds until every POST was
    answered (accepted: stored and enqueued)."""
    per_request = 100
    bodies = [
        {
            "recipients": [recipient(start + n) for n in range(per_request)],
            "message": {"subject": SUBJECT, "body": BODY},
        }
        for start in range(0, count, per_request)
    ]
    total = len(bodies) * per_request
    done = f"SELECT count(*) FROM message WHERE channel = '{channel}' AND state = '{state}'"
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        statuses = set(
            pool.map(
                lambda b: request(stack.base_url, "POST", "/v1/notifications", b, stack.key)[0],
                bodies,
            )
        )
    assert statuses == {202}, statuses
    accepted = time.perf_counter() - started
    wait_for(lambda: stack.sql(done) >= total, timeout=600, interval=0.1, what=f"{channel} done")
    return total / (time.perf_counter() - started), accepted


def start_http_sink(stack: Stack) -> tuple[str, Path]:
    """The webhook receiver: its URL and the log it writes one line per request to."""
    from dev.embedded_redis import free_port

    port, log = free_port(), Path(stack.dir) / "http-sink.log"
    log.touch()
    stack.start("http-sink", [sys.executable, "-m", "bench.http_sink", str(port), str(log)])
    wait_for(lambda: _accepts(port), 30, what="HTTP sink")
    return f"http://127.0.0.1:{port}/hook", log  # one path per recipient: /hook/<n>


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description="In-app and webhook throughput vs a no-op actor")
    parser.add_argument("--messages", type=int, default=5000, help="per run (rounded to 100)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes, every run")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    args = parser.parse_args()
    count = args.messages // 100 * 100
    with Stack(worker_processes=args.processes, worker_threads=args.threads) as stack:
        bind_to(stack)
        baseline = noop_baseline(stack, count)
        inapp = herald(stack, count, lambda n: {"type": "user", "value": f"user-{n}"},
                       "inapp", "unread")  # fmt: skip
        url, sink_log = start_http_sink(stack)
        webhook = herald(stack, count, lambda n: {"type": "webhook", "value": f"{url}/{n}"},
                         "webhook", "sent")  # fmt: skip
        requests_seen = len(sink_log.read_text().split())
    runs = {"noop": baseline, "inapp": inapp, "webhook": webhook}
    print_table(count, f"{args.processes} worker processes × {args.threads} threads", runs)
    print(f"in-app: {INAPP.verdict(inapp[0] / baseline[0])}")
    print(f"webhook: {WEBHOOK.verdict(webhook[0] / baseline[0])}")
    print(f"webhook sink saw {requests_seen:,} requests for {count:,}")
    figures = {"messages": count, "processes": args.processes, "threads": args.threads}
    for name, (per_s, accepted) in runs.items():
        figures[f"{name}_per_s"], figures[f"{name}_accepted_s"] = per_s, accepted
        if name != "noop":
            figures[f"{name}_ratio"] = per_s / baseline[0]
    save("engine", {**figures, "backend": stack.backend, "webhook_requests": requests_seen})


def print_table(count: int, workers: str, runs: dict[str, tuple[float, float]]) -> None:
    print(f"\nEngine efficiency, {count:,} messages per run, {workers} in every run")
    print(f"{'run':<26}{'accepted s':>11}{'done s':>8}{'msg/s':>8}{'ratio':>7}")
    names = {
        "noop": "no-op Dramatiq actor",
        "inapp": "Herald in-app (unread)",
        "webhook": "Herald webhook (sent)",
    }
    for name, (per_s, accepted) in runs.items():
        ratio = per_s / runs["noop"][0]
        print(f"{names[name]:<26}{accepted:>11.2f}{count / per_s:>8.2f}{per_s:>8,.0f}{ratio:>7.2f}")


if __name__ == "__main__":
    main()

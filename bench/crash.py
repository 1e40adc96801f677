"""Crash safety: a 10,000-email run during which the worker processes are SIGKILLed every few
seconds and restarted. Prints messages lost (must be 0) and duplicates at the SMTP sink (must
be at most the messages in flight at the kills).

    python -m bench.crash --messages 10000 --kills 5
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Stack, request, save, wait_for
from bench.targets import CRASH_LOST


def main() -> None:
    parser = argparse.ArgumentParser(description="Crash safety under SIGKILLed workers")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between kills")
    args = parser.parse_args()
    with Stack(worker_processes=2, worker_threads=8) as stack:
        # Short leases and a fast replay, so killed work comes back within the run.
        stack.env.update(
            DELIVERY_LEASE_SECONDS="5", REPLAY_INTERVAL_SECONDS="1", REPLAY_AFTER_SECONDS="10"
        )
        stack.stop("worker")
        stack.start_workers()
        stack.start("scheduler", [sys.executable, "-m", "scheduler"])
        post_all(stack, args.messages)
        in_flight = []
        for _ in range(args.kills):
            time.sleep(args.every)
            stack.stop("worker", signal.SIGKILL)
            # Counted once the workers are dead: what they were sending stays ``sending`` (its
            # lease holds it), and nothing can leave that state before the count.
            in_flight.append(stack.sql("SELECT count(*) FROM message WHERE state = 'sending'"))
            stack.start_workers()
        started = time.monotonic()
        wait_for(
            lambda: stack.sql("SELECT count(*) FROM message WHERE state = 'sent'") >= args.messages,
            timeout=600, interval=0.5, what="every message sent",
        )  # fmt: skip
        recovery = time.monotonic() - started
        sent = stack.sql("SELECT count(*) FROM message WHERE state = 'sent'")
        seen = Counter(stack.sink_lines())
    lost = args.messages - sent
    duplicates = sum(count - 1 for count in seen.values() if count > 1)
    print(f"\nCrash safety, {args.messages:,} emails, worker processes SIGKILLed {args.kills}×")
    print(f"in flight at each kill: {in_flight} (total {sum(in_flight)})")
    print(f"lost: {lost} ({CRASH_LOST.verdict(lost)})")
    print(f"duplicates at the sink: {duplicates} (must be ≤ {sum(in_flight)})")
    print(f"all sent {recovery:.1f} s after the last kill")
    save("crash", {"messages": args.messages, "kills": args.kills, "worker_processes": 2,
                   "backend": stack.backend, "in_flight": in_flight, "lost": lost,
                   "duplicates": duplicates})  # fmt: skip


def post_all(stack: Stack, count: int, per_request: int = 100) -> None:
    bodies = [
        {
            "recipients": [
                {"type": "email", "value": f"p{s + n}@example.md"} for n in range(per_request)
            ],
            "message": {"subject": "Crash test", "body": "One of ten thousand."},
        }
        for s in range(0, count, per_request)
    ]
    with ThreadPoolExecutor(4) as pool:
        statuses = set(
            pool.map(
                lambda b: request(stack.base_url, "POST", "/v1/notifications", b, stack.key)[0],
                bodies,
            )
        )
    assert statuses == {202}, statuses


if __name__ == "__main__":
    main()

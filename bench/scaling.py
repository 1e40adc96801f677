"""The scaling curve on this machine: in-app end to end (API → worker → stored ``unread``)
with 1, 2 and 4 worker processes, each against the no-op Dramatiq actor (bench/noop.py) with the
same processes and threads, in the same run and on the same fresh stack (bench/engine.py's
measurements). Each ratio is Herald over the no-op at that process count; the last column is
Herald's rate over its rate with one process (what adding processes buys on these cores).
Herald's CPU µs per message (web and workers, /proc) is shown too: it should not grow much with
the process count.

    python -m bench.scaling --messages 3000
"""

from __future__ import annotations

import argparse

from bench.cputime import herald_cpu_seconds
from bench.engine import bind_to, herald, noop_baseline
from bench.harness import Stack, save
from bench.targets import INAPP

PROCESSES = (1, 2, 4)


def measure(processes: int, threads: int, count: int) -> dict[str, float]:
    """The no-op's and Herald in-app's messages per second with ``processes`` workers."""
    with Stack(worker_processes=processes, worker_threads=threads) as stack:
        bind_to(stack)
        noop, _ = noop_baseline(stack, count)  # leaves Herald's workers started and fetching
        cpu = herald_cpu_seconds(stack)
        inapp, _ = herald(stack, count, lambda n: {"type": "user", "value": f"user-{n}"},
                          "inapp", "unread")  # fmt: skip
        cpu = herald_cpu_seconds(stack) - cpu
    return {
        "noop_per_s": noop,
        "herald_per_s": inapp,
        "ratio": inapp / noop,
        "cpu_us_per_message": cpu / count * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="In-app throughput with 1, 2 and 4 processes")
    parser.add_argument("--messages", type=int, default=3000, help="per run (rounded to 100)")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument("--processes", type=int, nargs="+", default=list(PROCESSES))
    args = parser.parse_args()
    count = args.messages // 100 * 100
    runs = {str(n): measure(n, args.threads, count) for n in args.processes}
    first = runs[str(args.processes[0])]["herald_per_s"]
    print(f"\nScaling, in-app, {count:,} messages per run, {args.threads} threads per process")
    print(f"{'processes':<11}{'no-op msg/s':>12}{'in-app msg/s':>13}{'ratio':>7}"
          f"{'vs first':>9}{'CPU µs/msg':>12}")  # fmt: skip
    for processes, run in runs.items():
        print(f"{processes:<11}{run['noop_per_s']:>12,.0f}{run['herald_per_s']:>13,.0f}"
              f"{run['ratio']:>7.2f}{run['herald_per_s'] / first:>9.2f}"
              f"{run['cpu_us_per_message']:>12,.0f}")  # fmt: skip
    worst = min(run["ratio"] for run in runs.values())
    print(f"lowest ratio {worst:.2f}: {INAPP.verdict(worst)}")
    save("scaling", {"channel": "inapp", "messages": count, "threads": args.threads, "runs": runs})


if __name__ == "__main__":
    main()

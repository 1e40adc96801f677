"""The cost of metrics and of delivery receipts per message: SMS end to end (API → worker → a
Twilio-shaped gateway on 127.0.0.1, bench/twilio_sink.py), in three configurations, each on a
fresh stack with the same worker processes and threads, in the same run:

- plain: ``METRICS=false``, no receipts (no PUBLIC_BASE_URL, so no StatusCallback): done when
  every message is ``sent``;
- metrics: the same with ``METRICS=true`` (Prometheus counters and histograms in every process);
- receipts: ``METRICS=false`` and PUBLIC_BASE_URL set, so each send names its StatusCallback and
  the gateway posts a signed "delivered" callback to Herald's receipt endpoint: done when every
  message is ``delivered``.

Each configuration's throughput is a ratio to plain's, and its cost is the CPU its Herald
processes (web and workers, not the gateway) spent per message beyond plain's: CPU time holds
better than wall time on a shared machine. Medians of ``--rounds`` rounds.

    python -m bench.receipts --messages 2000
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from bench.cputime import herald_cpu_seconds
from bench.engine import bind_to, herald, start_workers
from bench.harness import Stack, request, save, wait_for

ACCOUNT_SID, AUTH_TOKEN = "AC" + "5" * 32, "bench-twilio-token"
#: configuration: (METRICS, receipts asked for, the state that means done)
CONFIGURATIONS = {
    "plain": ("false", False, "sent"),
    "metrics": ("true", False, "sent"),
    "receipts": ("false", True, "delivered"),
}


def phone(number: int) -> dict:
    return {"type": "phone", "value": f"+3736{number % 10_000_000:07d}"}


def measure(name: str, count: int, processes: int, threads: int) -> dict[str, float]:
    """Messages per second and Herald's CPU µs per message for one configuration."""
    from dev.embedded_redis import free_port

    metrics, with_receipts, state = CONFIGURATIONS[name]
    gateway = free_port()
    env = {
        "METRICS": metrics, "SMS_PROVIDER": "twilio", "SMS_API_URL": f"http://127.0.0.1:{gateway}",
        "SMS_ACCOUNT_SID": ACCOUNT_SID, "SMS_AUTH_TOKEN": AUTH_TOKEN, "SMS_FROM": "Herald",
    }  # fmt: skip
    with Stack(worker_processes=processes, worker_threads=threads, env=env) as stack:
        bind_to(stack)
        log = Path(stack.dir) / "callbacks.log"
        log.touch()
        sink = [sys.executable, "-m", "bench.twilio_sink", str(gateway), AUTH_TOKEN, str(log)]
        stack.start("twilio", sink)
        if with_receipts:  # the callback URL is the web's, known once the stack has its port
            stack.env["PUBLIC_BASE_URL"] = stack.base_url
            stack.stop("web")
            stack.start_web()
            wait_for(lambda: _healthy(stack), 60, what="healthz")
        # Every configuration's workers restarted and seen fetching: no timing pays start-up.
        stack.stop("worker")
        start_workers(stack, "tasks.worker", "worker")
        cpu = herald_cpu_seconds(stack)
        per_s, _ = herald(stack, count, phone, "sms", state)
        cpu = herald_cpu_seconds(stack) - cpu
        if with_receipts:
            assert len(log.read_text().split()) >= count, "fewer receipts than messages"
    return {"per_s": per_s, "cpu_us_per_message": cpu / count * 1e6}


def _healthy(stack: Stack) -> bool:
    try:
        return request(stack.base_url, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description="Cost of metrics and receipts per message")
    parser.add_argument("--messages", type=int, default=2000, help="per run (rounded to 100)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    count = args.messages // 100 * 100
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(args.rounds):
        for name in CONFIGURATIONS:
            samples[name].append(measure(name, count, args.processes, args.threads))
    runs = {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    plain = runs["plain"]
    for run in runs.values():
        run["ratio"] = run["per_s"] / plain["per_s"]
    print(f"\nSMS end to end, {count:,} messages per run, {args.processes} worker processes × "
          f"{args.threads} threads, median of {args.rounds}")  # fmt: skip
    print(f"{'configuration':<34}{'msg/s':>8}{'ratio':>7}{'CPU µs/msg':>12}{'extra µs':>10}")
    labels = {"plain": "METRICS off, no receipts", "metrics": "METRICS on",
              "receipts": "delivery receipts (Twilio callbacks)"}  # fmt: skip
    for name, run in runs.items():
        extra = run["cpu_us_per_message"] - plain["cpu_us_per_message"]
        print(f"{labels[name]:<34}{run['per_s']:>8,.0f}{run['ratio']:>7.2f}"
              f"{run['cpu_us_per_message']:>12,.0f}{extra:>+10,.0f}")  # fmt: skip
    setup = {"processes": args.processes, "threads": args.threads, "rounds": args.rounds}
    save("receipts", {"channel": "sms", "messages": count, **setup, "runs": runs})


if __name__ == "__main__":
    main()

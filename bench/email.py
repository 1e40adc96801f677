"""Email throughput: Herald end to end (API accepted → delivered to an SMTP sink) against raw
``smtplib`` sending to the same sink over the same number of connections, in the same run.

    python -m bench.email --messages 5000
    python -m bench.email --messages 3000 --metrics-cost   # metrics off vs on, same run
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

from bench.harness import Stack, request, save, wait_for
from bench.targets import EMAIL

SUBJECT, BODY = "Programare confirmată", "Vă așteptăm luni la ora 9:00, biroul 12."


def raw_smtplib(port: int, connections: int, count: int) -> float:
    """Messages per second sent by ``connections`` threads, one SMTP connection each."""

    def sender(share: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            for number in range(share):
                email = EmailMessage()
                email["From"], email["To"] = "Herald <herald@localhost>", f"p{number}@example.md"
                email["Subject"] = SUBJECT
                email.set_content(BODY)
                smtp.send_message(email)

    threads = [
        threading.Thread(target=sender, args=(count // connections,)) for _ in range(connections)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (count // connections) * connections / (time.perf_counter() - started)


def session_cpu_seconds(stack: Stack, *names: str) -> float:
    """User + system CPU seconds so far of the stack's processes ``names`` and their children
    (each was started in a session of its own), from /proc."""
    sessions = {stack.processes[name].pid for name in names}
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as file:
                fields = file.read().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) in sessions:  # after the name: state ppid pgrp session … utime stime
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_per_message(stack: Stack, run, count: int, client: bool) -> tuple[float, dict[str, float]]:
    """``run()``'s result, and the CPU milliseconds per message it took of the stack's
    processes (web, worker, sink) and, with ``client``, of this process (the smtplib senders;
    Herald's load generator is not counted)."""
    names = [name for name in ("web", "worker", "sink") if name in stack.processes]
    before = {name: session_cpu_seconds(stack, name) for name in names}
    own = time.process_time()
    result = run()
    used = {name: session_cpu_seconds(stack, name) - before[name] for name in names}
    if client:
        used["client"] = time.process_time() - own
    return result, {name: seconds * 1000 / count for name, seconds in used.items() if seconds}


def herald(stack: Stack, count: int, per_request: int = 100) -> float:
    """Messages per second from the first POST until the last message is ``sent``."""
    bodies = [
        {
            "recipients": [
                {"type": "email", "value": f"p{start + n}@example.md"} for n in range(per_request)
            ],
            "message": {"subject": SUBJECT, "body": BODY},
        }
        for start in range(0, count, per_request)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(
                lambda b: request(stack.base_url, "POST", "/v1/notifications", b, stack.key)[0],
                bodies,
            )
        )
    assert set(statuses) == {202}, statuses
    total = count // per_request * per_request
    wait_for(
        lambda: stack.sql("SELECT count(*) FROM message WHERE state = 'sent'") >= total,
        timeout=600,
        interval=0.1,
        what="all sent",
    )
    return total / (time.perf_counter() - started)


def metrics_cost(messages: int, threads: int, rounds: int) -> None:
    """Herald end to end with ``METRICS=false`` and ``METRICS=true`` in turn (``rounds``
    pairs, each on a fresh stack): the throughput ratio and the metrics' cost per message."""
    runs: dict[str, list[float]] = {"false": [], "true": []}
    for _ in range(rounds):
        for metrics in runs:
            env = {"METRICS": metrics}
            with Stack(worker_processes=2, worker_threads=threads // 2, env=env) as stack:
                runs[metrics].append(herald(stack, messages))
    off, on = statistics.median(runs["false"]), statistics.median(runs["true"])
    cost_us = (1 / on - 1 / off) * 1e6
    print(f"\nEmail, {messages:,} messages, metrics off vs on, {rounds} pairs (median)")
    print(
        f"{'metrics off':<26}{off:>10,.0f} msg/s   {', '.join(f'{r:,.0f}' for r in runs['false'])}"
    )
    print(f"{'metrics on':<26}{on:>10,.0f} msg/s   {', '.join(f'{r:,.0f}' for r in runs['true'])}")
    print(f"ratio on/off {on / off:.3f}; cost {cost_us:+.1f} µs of wall time per message")
    save(
        "email_metrics",
        {
            "messages": messages,
            "pairs": rounds,
            "off_per_s": off,
            "on_per_s": on,
            "ratio": on / off,
            "cost_us_per_message": cost_us,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Email throughput vs raw smtplib")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8, help="worker threads = SMTP connections")
    parser.add_argument(
        "--metrics-cost", action="store_true", help="instead: Herald with metrics off vs on"
    )
    parser.add_argument("--pairs", type=int, default=2, help="off/on pairs for --metrics-cost")
    args = parser.parse_args()
    if args.metrics_cost:
        metrics_cost(args.messages, args.threads, args.pairs)
        return
    # Both cores, and as many SMTP connections in all as the baseline has.
    with Stack(worker_processes=2, worker_threads=args.threads // 2) as stack:
        baseline, baseline_cpu = cpu_per_message(
            stack,
            lambda: raw_smtplib(stack.smtp_port, args.threads, args.messages),
            args.messages,
            True,
        )
        end_to_end, herald_cpu = cpu_per_message(
            stack, lambda: herald(stack, args.messages), args.messages, False
        )
    ratio = end_to_end / baseline
    cpu_ratio = sum(baseline_cpu.values()) / sum(herald_cpu.values())
    print(f"\nEmail, {args.messages:,} messages, {args.threads} SMTP connections in both runs")
    print(f"{'raw smtplib':<26}{baseline:>10,.0f} msg/s   CPU ms/message {_parts(baseline_cpu)}")
    print(
        f"{'Herald end to end':<26}{end_to_end:>10,.0f} msg/s   CPU ms/message {_parts(herald_cpu)}"
    )
    print(f"ratio {ratio:.2f} ({EMAIL.verdict(ratio)}); CPU per message smtplib/Herald", end=" ")
    print(f"{cpu_ratio:.2f}")
    save(
        "email",
        {
            "messages": args.messages,
            "connections": args.threads,
            "worker_processes": 2,
            "backend": stack.backend,
            "smtplib_per_s": baseline,
            "herald_per_s": end_to_end,
            "ratio": ratio,
            "smtplib_cpu_ms_per_message": baseline_cpu,
            "herald_cpu_ms_per_message": herald_cpu,
            "cpu_ratio": cpu_ratio,
        },
    )


def _parts(cpu: dict[str, float]) -> str:
    return f"{sum(cpu.values()):.2f} (" + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()) + ")"


if __name__ == "__main__":
    main()

"""Email throughput: Herald end to end (API accepted → delivered to an SMTP sink) against raw
``smtplib`` sending to the same sink over the same number of connections, in the same run.

    python -m bench.email --messages 5000
    python -m bench.email --messages 3000 --metrics-cost   # metrics off vs on, same run
"""

from __future__ import annotations

import argparse
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
        baseline = raw_smtplib(stack.smtp_port, args.threads, args.messages)
        end_to_end = herald(stack, args.messages)
    ratio = end_to_end / baseline
    print(f"\nEmail, {args.messages:,} messages, {args.threads} SMTP connections in both runs")
    print(f"{'raw smtplib':<26}{baseline:>10,.0f} msg/s")
    print(f"{'Herald end to end':<26}{end_to_end:>10,.0f} msg/s")
    print(f"ratio {ratio:.2f} ({EMAIL.verdict(ratio)})")
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
        },
    )


if __name__ == "__main__":
    main()

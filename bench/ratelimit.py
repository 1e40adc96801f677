"""The per-minute rate limit across web processes: two gunicorn servers (one worker each, two
ports) on one Redis and one database, and N POSTs from one key, alternating between them, in
one minute window. Accepted must be exactly the limit, whatever the split.

    python -m bench.ratelimit --limit 100 --requests 300 --clients 8
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bench.api import BODY
from bench.harness import Stack, wait_for


def post(port: int, key: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            "/v1/notifications",
            body=BODY,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        response = connection.getresponse()
        response.read()
        return response.status, response.headers.get("RateLimit", "")
    finally:
        connection.close()


def healthy(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description="rate limit across two web processes")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    env = {"API_RATE_LIMIT_PER_MINUTE": str(args.limit)}
    with Stack(web_workers=1, env=env) as stack:
        stack.stop("worker")  # accepting only
        from dev.embedded_redis import free_port

        second = free_port()
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        stack.start(
            "web2",
            [gunicorn, "--bind", f"127.0.0.1:{second}", "--workers", "1", "api.app:create_app()"],
        )
        wait_for(lambda: healthy(second), 60, what="second web process")
        ports = [stack.port, second]
        left = 60 - time.time() % 60
        if left < 20:  # start in a fresh window, so that one window holds the whole run
            time.sleep(left + 0.5)
        results: Counter = Counter()
        lock = threading.Lock()
        numbers = iter(range(args.requests))

        def client() -> None:
            for n in numbers:
                port = ports[n % 2]
                status, _ = post(port, stack.key)
                with lock:
                    results[(port, status)] += 1

        started = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    accepted = sum(n for (_, status), n in results.items() if status == 202)
    refused = sum(n for (_, status), n in results.items() if status == 429)
    other = args.requests - accepted - refused
    print(
        f"limit {args.limit}/min, {args.requests} POSTs from one key, {args.clients} clients, "
        f"2 gunicorn processes, {elapsed:.1f} s"
    )
    for port in ports:
        print(f"  process on :{port}: {results[(port, 202)]} x 202, {results[(port, 429)]} x 429")
    print(f"  total: {accepted} x 202, {refused} x 429, {other} other")
    print(json.dumps({"limit": args.limit, "accepted": accepted, "refused": refused}))
    if accepted != args.limit or other:
        sys.exit(1)


if __name__ == "__main__":
    main()

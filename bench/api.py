"""API accept: single-recipient ``POST /v1/notifications`` against a hello-world endpoint served
with the same gunicorn settings, under the same closed-loop load, in the same run.

    python -m bench.api --seconds 10 --clients 8

The sender's per-minute limit is raised out of reach (``API_RATE_LIMIT_PER_MINUTE``, still
counted in Redis on every request): at the default 3,000 a run past ~300 req/s measured 429s.
"""

from __future__ import annotations

import argparse
import json

from bench.harness import Stack, load, save, wait_for
from bench.targets import API_P99_MS, API_RATIO

#: Counted, never reached: the run measures accepting, not refusing.
UNREACHED_RATE_LIMIT = {"API_RATE_LIMIT_PER_MINUTE": str(10**9)}

BODY = json.dumps(
    {
        "recipients": [{"type": "email", "value": "ion@example.md"}],
        "message": {"subject": "Programare confirmată", "body": "Vă așteptăm luni la ora 9:00."},
    }
)


def poster(path: str, key: str | None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"

    def post(connection) -> bool:
        connection.request("POST", path, body=BODY, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status == 202

    return post


def main() -> None:
    parser = argparse.ArgumentParser(description="API accept vs hello world")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    with Stack(web_workers=args.web_workers, env=UNREACHED_RATE_LIMIT) as stack:
        stack.stop("worker")  # accepting only: nothing delivers during the run
        herald = load(
            stack.base_url, poster("/v1/notifications", stack.key), args.clients, args.seconds
        )
        stack.stop("web")
        stack.start_web("bench.hello:create_app()", name="hello")
        wait_for(lambda: _up(stack), 30, what="hello world")
        hello = load(stack.base_url, poster("/hello", None), args.clients, args.seconds)
    ratio = herald["requests_per_second"] / hello["requests_per_second"]
    setup = (
        f"{args.clients} clients, gunicorn {args.web_workers} workers (gunicorn.conf.py), "
        f"{args.seconds:.0f} s"
    )
    print(f"\nAPI accept, {setup} each")
    print(f"{'endpoint':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, figures in (("hello world", hello), ("POST /v1/notifications", herald)):
        print(
            f"{name:<28}{figures['requests_per_second']:>9,.0f}{figures['p50_ms']:>9.1f}"
            f"{figures['p99_ms']:>9.1f}{figures['errors']:>8}"
        )
    p99 = herald["p99_ms"]
    print(f"ratio {ratio:.2f} ({API_RATIO.verdict(ratio)})")
    print(f"Herald p99 {p99:.1f} ms ({API_P99_MS.verdict(p99)})")
    save(
        "api",
        {
            "clients": args.clients,
            "web_workers": args.web_workers,
            "seconds": args.seconds,
            "backend": stack.backend,
            "hello": hello,
            "herald": herald,
            "ratio": ratio,
        },
    )


def _up(stack: Stack) -> bool:
    import http.client

    try:
        connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=2)
        connection.request(
            "POST", "/hello", body="{}", headers={"Content-Type": "application/json"}
        )
        return connection.getresponse().status == 202
    except OSError:
        return False


if __name__ == "__main__":
    main()

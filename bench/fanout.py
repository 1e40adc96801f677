"""Broadcast fan-out: N contacts subscribed to one service, one broadcast to them.

Prints how long resolving, inserting and enqueueing took, as contacts per second, against the
DESIGN.md target (bench/targets.py: 100,000 on SQLite, 1,000,000 on PostgreSQL, each in a
bounded time). Starts its own Redis; uses a fresh SQLite file, or
the PostgreSQL database in BENCH_DATABASE_URL (its Herald tables are dropped and recreated).

    python -m bench.fanout --contacts 100000
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", ""))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="herald-bench-")
    url = args.database or f"sqlite:///{workdir}/bench.db"

    from dev.embedded_redis import EmbeddedRedis
    from settings import settings

    redis_server = EmbeddedRedis(directory=workdir).start()
    settings.REDIS_URL = redis_server.url
    try:
        figures = run(url, redis_server.url, args.contacts)
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(url, args.contacts, figures)
    from bench.harness import save

    name = "fanout" if url.startswith("sqlite") else "fanout_postgresql"  # as bench/chart.py reads
    save(name, {"contacts": args.contacts, "backend": url.split(":", 1)[0], **figures})


def run(url: str, redis_url: str, count: int) -> dict[str, float]:
    import tasks.fanout as fanout_module
    from models import upgrade
    from models.db import open_database
    from tasks import bind_broker

    db = open_database(url)
    reset(db)
    upgrade(db)
    broker = bind_broker(redis_url)
    sender = seed(count)

    timings = {"resolve": 0.0, "insert+cursor": 0.0, "enqueue": 0.0}
    fanout_module.resolve = timed(fanout_module.resolve, timings, "resolve")
    fanout_module.enqueue = timed(fanout_module.enqueue, timings, "enqueue")

    from models.notification import Notification
    from tasks.requests import NotificationCreateSchema
    from tasks.submit import submit_notification

    # Loaded as the API loads a request body, so every field has its default.
    request = NotificationCreateSchema().load(
        {
            "isBroadcast": True,
            "serviceName": "water",
            "channelPolicy": "all",
            "message": {"subject": "Apă", "body": "Apa se oprește mâine între 9 și 12."},
        }
    )
    started = time.perf_counter()
    notification, _ = submit_notification(sender, request)
    broker.client.delete("dramatiq:fanout")  # this process plays the worker
    while Notification.get_by_id(notification.id).fanout_state != "done":
        fanout_module.fanout(str(notification.id))
    total = time.perf_counter() - started
    queued = broker.client.llen("dramatiq:email")
    assert queued == count, f"{queued} messages queued for {count} contacts"
    timings["insert+cursor"] = total - timings["resolve"] - timings["enqueue"]
    return {"total": total, **timings}


def timed(function, timings: dict, name: str):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timings[name] += time.perf_counter() - started

    return wrapper


def reset(db) -> None:
    from models import ALL_MODELS, MIGRATIONS_TABLE

    cascade = "" if db.__class__.__name__.startswith("Sqlite") else " CASCADE"
    for table in [m._meta.table_name for m in reversed(ALL_MODELS)] + [MIGRATIONS_TABLE]:
        db.execute_sql(f"DROP TABLE IF EXISTS {table}{cascade}")


def seed(count: int):
    """N contacts, each with an email channel and a subscription to "water" (not timed)."""
    from models.base import utcnow
    from models.contact import Contact, ContactChannel, Subscription
    from models.db import database
    from models.sender import create_sender

    now = utcnow()
    with database.atomic():
        for start in range(0, count, 5000):
            serials = range(start, min(start + 5000, count))
            Contact.insert_many(
                [
                    {"idnp": fake_idnp(n), "attributes": "{}", "created_at": now, "updated_at": now}
                    for n in serials
                ]
            ).execute()
        ids = [c.id for c in Contact.select(Contact.id).order_by(Contact.id)]
        for start in range(0, count, 5000):
            chunk = ids[start : start + 5000]
            ContactChannel.insert_many(
                [
                    {
                        "contact": i,
                        "type": "email",
                        "address": f"p{i}@example.md",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in chunk
                ]
            ).execute()
            Subscription.insert_many(
                [{"contact": i, "service_name": "water", "created_at": now} for i in chunk]
            ).execute()
    if not database.obj.__class__.__name__.startswith("Sqlite"):
        database.execute_sql("ANALYZE")  # as autovacuum would have, for a registry in use
    return create_sender("bench")[0]


def fake_idnp(serial: int) -> str:
    digits = f"2{serial:011d}"
    check = sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(digits)) % 10
    return f"{digits}{check}"


def print_table(url: str, count: int, figures: dict[str, float]) -> None:
    backend = url.split(":", 1)[0]
    total = figures["total"]
    print(f"\nBroadcast fan-out, {count:,} subscribed contacts, {backend}, one process")
    print(f"{'phase':<16}{'seconds':>10}{'contacts/s':>14}")
    for name in ("resolve", "insert+cursor", "enqueue", "total"):
        seconds = figures[name]
        print(f"{name:<16}{seconds:>10.2f}{count / seconds if seconds else 0:>14,.0f}")
    from bench.targets import fanout_budget

    target = fanout_budget(count, backend)
    verdict = "meets" if total <= target else "misses"
    print(f"target: {count:,} in ≤ {target:.1f} s → {verdict} ({total / target:.2f}× the budget)")


if __name__ == "__main__":
    main()
